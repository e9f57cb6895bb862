"""What many tests need, in one place: the repository root, free ports, nbgrader
cells and notebooks, and code loaded from a notebook without a kernel.

``notebook_namespace(path)`` executes the code cells tagged ``defs`` (the
definitions a chapter writes from scratch) in a fresh namespace and returns it,
so tests can assert the same equalities the chapter shows.
"""

from __future__ import annotations

import socket
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
"""The repository's top folder."""

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
SOLUTION_META = {"solution": True, "grade": False, "locked": False, "schema_version": 3}
GRADE_META = {"solution": False, "grade": True, "locked": True, "schema_version": 3}


def free_port() -> int:
    """A local TCP port that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def solution_cell(source: str, grade_id: str = "extra"):
    """An nbgrader exercise cell (solution = true)."""
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {**SOLUTION_META, "grade_id": grade_id}
    return cell


def grade_cell(source: str, grade_id: str = "test_extra", points: float = 2):
    """An nbgrader test cell (grade = true, locked) worth ``points``."""
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {**GRADE_META, "grade_id": grade_id, "points": points}
    return cell


def nbgrader_cell(kind: str = "code", source: str = "x = 1", **meta):
    """A cell with arbitrary nbgrader metadata (defaults: not graded, not a solution)."""
    base = {"schema_version": 3, "grade": False, "locked": False, "solution": False}
    make = new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return make(source, metadata={"nbgrader": {**base, **meta}})


def write_notebook(path: Path, cells) -> Path:
    """Write ``cells`` as a notebook with a Python kernelspec to ``path``; return it."""
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def tagged_source(path: Path | str, tag: str = "defs") -> str:
    """The code of the cells of ``path`` tagged ``tag``, IPython magics removed."""
    nb = nbformat.read(ROOT / path, as_version=4)
    cells = [
        c.source for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])
    ]
    if not cells:
        raise LookupError(f"{path}: no code cell is tagged {tag!r}")
    # IPython magics and shell escapes are not Python
    lines = [
        ln for src in cells for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))
    ]
    return "\n".join(lines)


def notebook_namespace(path: Path | str, tag: str = "defs") -> dict:
    """Execute the cells of ``path`` tagged ``tag`` in a fresh namespace and return it."""
    ns: dict = {"__name__": f"notebook:{Path(path).stem}"}
    exec(compile(tagged_source(path, tag), str(path), "exec"), ns)
    return ns


def mutated_namespace(path: Path | str, old: str, new: str, tag: str = "defs") -> dict:
    """The notebook's tagged cells with ``old`` (found exactly once) replaced by ``new``,
    executed: a deliberately broken copy of a chapter's code for mutation tests."""
    source = tagged_source(path, tag)
    assert source.count(old) == 1, f"the {tag} cells no longer contain {old!r}: update the mutation"
    ns: dict = {"__name__": "notebook:mutant"}
    exec(compile(source.replace(old, new), str(path), "exec"), ns)
    return ns


def nbval_text(outputs) -> str:
    """What nbval compares of a cell tagged ``nbval-check-output``: its printed text, with
    the substitutions of tests/nbval_sanitize.cfg (addresses, paths, timings)."""
    import configparser
    import re

    text = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tests" / "nbval_sanitize.cfg")
    for section in config.sections():
        text = re.sub(config[section]["regex"], config[section]["replace"], text)
    return text
