"""Chapter code that later work imports: written once in the notebook, generated into ``utils/models/``.

A chapter develops model code in front of the reader (a padding mask, an
encoder-decoder, attention, beam search). Labs, later chapters and the project
need the same code as an import, and two hand-kept copies would drift apart.
So the notebook is the single source, and the module is generated, like the
student labs are generated from ``solutions/``:

- tag a code cell of a chapter ``export:NAME``: its code goes, in notebook
  order, into ``utils/models/NAME.py``;
- the module starts with the chapter's import lines that the exported code uses
  (taken from the notebook's own code, so they are the same imports the reader saw),
  never one from the module itself; a chapter may export several modules
  (``export:seq2seq``, ``export:decoding``), and a module imports what it uses from
  the others (``from utils.models.seq2seq import EOS, ...``);
- ``make modules`` writes every module; ``tests/chapters/test_modules_in_sync.py``
  fails when a module differs from what its notebook generates (a hand edit, or a
  notebook changed without ``make modules``), and runs the chapter's equality tests
  against the module too.

An exported cell holds definitions only (functions, classes, constants):
nothing that runs a model or prints, so importing the module is instant.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import nbformat

from utils.env import ROOT

TAG = "export:"
NOTEBOOKS_DIR = ROOT / "notebooks"
MODULES_DIR = ROOT / "utils" / "models"


class ModuleSourceError(ValueError):
    """An exported cell cannot become module code; the message names notebook and cell."""


def exported_cells(nb) -> dict[str, list[tuple[int, str]]]:
    """``{module name: [(cell index, source), ...]}`` for the cells tagged ``export:NAME``."""
    found: dict[str, list[tuple[int, str]]] = {}
    for i, cell in enumerate(nb.cells):
        for tag in cell.metadata.get("tags", []):
            if cell.cell_type == "code" and tag.startswith(TAG):
                found.setdefault(tag[len(TAG) :], []).append((i, cell.source))
    return found


def _imports_used(nb, code: str) -> list[str]:
    """The notebook's top-level import statements that bind a name ``code`` uses."""
    used = {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}
    used |= {
        n.value.id
        for n in ast.walk(ast.parse(code))
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }
    lines: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(
            ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))
        )
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = {(a.asname or a.name).split(".")[0] for a in node.names}
                text = ast.get_source_segment(source, node)
                if names & used and text not in lines:
                    lines.append(text)
    return lines


def _defined(code: str) -> set[str]:
    """The top-level names ``code`` defines (functions, classes, assigned constants)."""
    names = set()
    for node in ast.parse(code).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                elts = target.elts if isinstance(target, ast.Tuple) else [target]
                names |= {e.id for e in elts if isinstance(e, ast.Name)}
    return names


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's order of imported names: CONSTANTS, then Classes, then the rest."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def _sibling_imports(nb, name: str, code: str) -> list[str]:
    """``from utils.models.OTHER import ...`` for the names ``code`` uses that the same notebook's
    other exported modules define (a chapter may export its code as several modules)."""
    used = {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)} - _defined(code)
    lines = []
    for other, cells in sorted(exported_cells(nb).items()):
        names = used & _defined("\n\n".join(source for _, source in cells))
        if other == name or not names:
            continue
        listed = ", ".join(sorted(names, key=_isort_key))
        line = f"from utils.models.{other} import {listed}"
        if len(line) > 100:
            body = "".join(f"    {n},\n" for n in sorted(names, key=_isort_key))
            line = f"from utils.models.{other} import (\n{body})"
        lines.append(line)
    return lines


def module_text(notebook: Path, name: str) -> str:
    """The text of ``utils/models/NAME.py`` as the notebook's ``export:NAME`` cells give it."""
    nb = nbformat.read(notebook, as_version=4)
    cells = exported_cells(nb).get(name)
    if not cells:
        raise ModuleSourceError(f"{notebook.name}: no cell is tagged {TAG}{name}")
    for i, source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError as e:
            raise ModuleSourceError(f"{notebook.name}, cell {i}: {e}") from None
        for node in tree.body:
            definition = (ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.Expr)
            if not isinstance(node, definition) or (
                isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant)
            ):
                raise ModuleSourceError(
                    f"{notebook.name}, cell {i} (tagged {TAG}{name}), line {node.lineno}: "
                    "an exported cell holds definitions only (def, class, constants)"
                )
    code = "\n\n\n".join(source.strip() for _, source in cells)
    rel = f"notebooks/{notebook.name}"
    doc = (
        f'"""Generated from {rel} (cells tagged {TAG}{name}) by `make modules`.\n\n'
        "Do not edit: change the notebook, then run `make modules`.\n"
        '"""'
    )
    imports = [  # never the module itself
        ln for ln in _imports_used(nb, code) if ln.split()[1] != f"utils.models.{name}"
    ] + _sibling_imports(nb, name, code)
    stdlib = [ln for ln in imports if ln.split()[1].split(".")[0] in sys.stdlib_module_names]
    third = [ln for ln in imports if ln not in stdlib and not ln.split()[1].startswith("utils")]
    own = sorted(
        (ln for ln in imports if ln.split()[1].startswith("utils")), key=lambda ln: ln.split()[1]
    )
    blocks = ["from __future__ import annotations"] + [
        "\n".join(group) for group in (stdlib, third, own) if group
    ]
    return doc + "\n\n" + "\n\n".join(blocks) + "\n\n\n" + code + "\n"


def sources(notebooks_dir: Path = NOTEBOOKS_DIR) -> dict[str, Path]:
    """``{module name: notebook}`` over every chapter; a name exported twice is an error."""
    found: dict[str, Path] = {}
    for path in sorted(notebooks_dir.glob("*.ipynb")):
        for name in exported_cells(nbformat.read(path, as_version=4)):
            if name in found:
                raise ModuleSourceError(
                    f"{TAG}{name} is used by {found[name].name} and {path.name}"
                )
            found[name] = path
    return found


def write_modules(notebooks_dir: Path = NOTEBOOKS_DIR, out: Path = MODULES_DIR) -> list[Path]:
    """Write every module; remove generated modules whose cells are gone."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    wanted = sources(notebooks_dir)
    for name, notebook in wanted.items():
        path = out / f"{name}.py"
        path.write_text(module_text(notebook, name), encoding="utf-8")
        written.append(path)
    for stale in out.glob("*.py"):
        if stale.name != "__init__.py" and stale.stem not in wanted:
            if stale.read_text(encoding="utf-8").startswith('"""Generated from'):
                stale.unlink()
    return written


def diff_modules(notebooks_dir: Path = NOTEBOOKS_DIR, out: Path = MODULES_DIR) -> list[str]:
    """What differs from the generator's output (empty when in sync)."""
    problems = []
    wanted = sources(notebooks_dir)
    for name, notebook in wanted.items():
        path = out / f"{name}.py"
        if not path.exists():
            problems.append(f"{path}: missing (run `make modules`)")
        elif path.read_text(encoding="utf-8") != module_text(notebook, name):
            problems.append(
                f"{path}: differs from {notebook.name} (run `make modules`; never edit it by hand)"
            )
    for extra in sorted(out.glob("*.py")):
        if extra.name != "__init__.py" and extra.stem not in wanted:
            problems.append(f"{extra}: no notebook cell is tagged {TAG}{extra.stem}")
    return problems
