"""The exports a finished lab writes, built from ``solutions/`` without running it.

A later lab loads an earlier lab's export (``load_export("rnn_scratch")``). To
run that later lab on its own (the tests, ``make labs``, ``make bench``, the
browser test) the earlier export must exist, written from the *solution*: this
module finds each ``export_functions("NAME", [f, g, ...], header=..., docstring=...)``
call in a solution notebook, takes the definitions of ``f``, ``g``, ... from its
cells (fences removed) and writes ``NAME.py`` exactly as the lab would, with
:func:`utils.export.write_module`.

    python -m utils.instructor exports --out DIR     # then WORKBOOK_EXPORTS=DIR
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat

from utils.export import write_module
from utils.instructor import labgen
from utils.instructor.notebook import without_markers


class ExportSourceError(ValueError):
    """A solution's export call cannot be rebuilt; the message names notebook and cell."""


def _code(nb) -> list[str]:
    """Each code cell of ``nb`` with fences and IPython magics removed."""
    out = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            src = without_markers(cell.source)
            out.append(
                "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
            )
    return out


def _constant(node, names: dict[str, ast.AST], where: str):
    """A literal, or a name bound to a list of names earlier (``functions = [f, g]``)."""
    if isinstance(node, ast.Name) and node.id in names:
        node = names[node.id]
    try:
        return ast.literal_eval(node)
    except ValueError:
        if isinstance(node, ast.List | ast.Tuple) and all(
            isinstance(e, ast.Name) for e in node.elts
        ):
            return [e.id for e in node.elts]
        raise ExportSourceError(f"{where}: export_functions needs literal arguments") from None


def export_calls(path: Path) -> list[dict]:
    """Every ``export_functions`` call of the notebook: name, functions, header, docstring."""
    nb = nbformat.read(path, as_version=4)
    calls, assigned = [], {}
    for i, source in enumerate(_code(nb)):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                if isinstance(node.targets[0], ast.Name):
                    assigned[node.targets[0].id] = node.value
            if not (
                isinstance(node, ast.Call) and getattr(node.func, "id", "") == "export_functions"
            ):
                continue
            where = f"{path.name}, cell {i}"
            name = _constant(node.args[0], assigned, where)
            functions = _constant(node.args[1], assigned, where)
            kw = {k.arg: _constant(k.value, assigned, where) for k in node.keywords}
            calls.append({"name": name, "functions": functions, **kw, "where": where})
    return calls


def _definitions(path: Path) -> dict[str, str]:
    """``{function name: source}`` of every top-level ``def`` of the notebook (last wins)."""
    found = {}
    for source in _code(nbformat.read(path, as_version=4)):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                found[node.name] = ast.get_source_segment(source, node)
    return found


def write_reference_exports(out: Path, solutions_dir: Path = labgen.SOLUTIONS_DIR) -> list[Path]:
    """Write every solution's exports into ``out``; returns the files."""
    written = []
    for path in labgen.solution_paths(solutions_dir):
        definitions = _definitions(path)
        for call in export_calls(path):
            missing = [f for f in call["functions"] if f not in definitions]
            if missing:
                raise ExportSourceError(f"{call['where']}: no `def` for {missing} in the notebook")
            target = out / f"{Path(call['name']).stem}.py"
            blocks = [definitions[f] for f in call["functions"]]
            write_module(target, call["functions"], blocks, header=call.get("header", ""),
                         docstring=call.get("docstring"))  # fmt: skip
            written.append(target)
    return written
