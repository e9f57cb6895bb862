"""Check the solutions' cell metadata against nbgrader's format, without nbgrader.

nbgrader (an optional extra: ``pip install -e .[nbgrader]``) reads the same
metadata. Its cell metadata format version 3 is the JSON schema below plus the
rules of nbgrader's ``MetadataValidatorV3``: a solution, grade or locked cell
has a non-empty ``grade_id``; a grade cell has ``points``; a markdown cell is
either both grade and solution (a written answer graded by hand) or neither;
``grade_id`` values are unique. On top, this workbook's convention (see
CONTRIBUTING.md): solution cells are not locked and grade cells are locked.

    python -m utils.instructor.nbgrader_schema solutions/*.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import jsonschema
import nbformat

SCHEMA_V3 = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "title": "nbgrader cell metadata schema",
    "type": "object",
    "properties": {
        "schema_version": {"type": "integer", "minimum": 3, "maximum": 3},
        "grade": {"type": "boolean"},
        "locked": {"type": "boolean"},
        "solution": {"type": "boolean"},
        "task": {"type": "boolean"},
        "grade_id": {"type": "string", "pattern": "^[a-zA-Z0-9_\\-]*$"},
        "points": {"type": "number", "minimum": 0},
        "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
        "cell_type": {"type": "string", "enum": ["raw", "code", "markdown"]},
    },
    "required": ["schema_version", "grade", "locked", "solution"],
    "additionalProperties": False,
}


def cell_problems(cell) -> list[str]:
    """What is wrong with one cell's ``nbgrader`` metadata (empty when valid)."""
    meta = cell.get("metadata", {}).get("nbgrader")
    if meta is None:
        return []
    validator = jsonschema.Draft4Validator(SCHEMA_V3)
    problems = [
        f"{'.'.join(map(str, e.absolute_path)) or 'nbgrader'}: {e.message}"
        for e in sorted(validator.iter_errors(meta), key=str)
    ]
    if problems:
        return problems
    grade, solution, locked = meta["grade"], meta["solution"], meta["locked"]
    task = meta.get("task", False)
    if (grade or solution or locked) and not meta.get("grade_id"):
        problems.append("a grade, solution or locked cell needs a non-empty grade_id")
    if grade and "points" not in meta:
        problems.append(f"grade cell {meta.get('grade_id')!r} has no points")
    if not task and cell["cell_type"] == "markdown" and grade != solution:
        problems.append("a markdown cell must be both grade and solution, or neither")
    if task and cell["cell_type"] != "markdown":
        problems.append("a task cell must be markdown")
    if cell["cell_type"] == "code" and solution and locked:
        problems.append("a solution cell must not be locked (students edit it)")
    if cell["cell_type"] == "code" and grade and not solution and not locked:
        problems.append("a grade (test) cell must be locked")
    return problems


def notebook_problems(nb) -> list[str]:
    """Every problem of a notebook's nbgrader metadata, each naming the cell."""
    problems, seen = [], {}
    for i, cell in enumerate(nb["cells"]):
        for p in cell_problems(cell):
            problems.append(f"cell {i}: {p}")
        meta = cell.get("metadata", {}).get("nbgrader") or {}
        if meta.get("grade") or meta.get("solution") or meta.get("locked"):
            gid = meta.get("grade_id")
            if gid in seen:
                problems.append(f"cell {i}: duplicate grade_id {gid!r} (also cell {seen[gid]})")
            seen.setdefault(gid, i)
    return problems


def main(paths: list[str]) -> int:
    bad = 0
    for name in paths:
        problems = notebook_problems(nbformat.read(name, as_version=4))
        for p in problems:
            print(f"{name}: {p}", file=sys.stderr)
        bad += bool(problems)
        if not problems:
            print(f"{name}: nbgrader metadata valid (format version 3)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or [str(p) for p in sorted(Path("solutions").glob("*.ipynb"))]))
