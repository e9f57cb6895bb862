"""Load code from notebooks into tests without a kernel.

``notebook_namespace(path)`` executes the code cells tagged ``defs`` (the
definitions a chapter writes from scratch) in a fresh namespace and returns it,
so tests can assert the same equalities the chapter shows.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def tagged_source(path: Path | str, tag: str = "defs") -> str:
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
    ns: dict = {"__name__": f"notebook:{Path(path).stem}"}
    exec(compile(tagged_source(path, tag), str(path), "exec"), ns)
    return ns
