"""Generate the student labs in ``labs/`` from the instructor sources in ``solutions/``.

A solution notebook marks exercise code and hidden tests with single-hash
fences (the spelling nbgrader and otter-grader both accept)::

    def rnn_step_forward(x_t, h_prev, W_xh, W_hh, b_h):      # cell metadata:
        # BEGIN SOLUTION                                      # nbgrader.solution = true
        ...                                                   # nbgrader.grade_id = "..."
        # END SOLUTION

    check_rnn_step_forward(rnn_step_forward)                  # nbgrader.grade = true
    # BEGIN HIDDEN TESTS                                      # nbgrader.points = 2
    ...
    # END HIDDEN TESTS

The generator replaces each solution fence by ``# YOUR CODE HERE`` and
``raise NotImplementedError()`` (indented like the fence), replaces markdown
answers by ``YOUR ANSWER HERE``, removes hidden tests and outputs, then runs the
starter lab once (FAST mode) and tags every cell that raises because an exercise
is unfinished with ``raises-exception``, so the starter lab runs top to bottom
under nbval and "Run All" in JupyterLab. Anything malformed stops it with an
error naming the notebook and the cell.
"""

from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from utils.env import ROOT
from utils.instructor.notebook import (
    ANSWER_STUB,
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    HIDDEN,
    MARKERS,
    RAISES,
    SOLUTION,
    STUB,
    FenceError,
    clean_metadata,
    marker_like_lines,
    nbgrader_meta,
    strip_fence,
)

# Errors a starter lab may raise: an unfinished exercise, or a name it would have defined.
EXPECTED_ERRORS = {"NotImplementedError", "NameError"}

SOLUTIONS_DIR = ROOT / "solutions"
LABS_DIR = ROOT / "labs"


class LabSourceError(ValueError):
    """A solution notebook is malformed; the message names the notebook and the cell."""


@dataclass
class CellRef:
    path: Path
    index: int
    grade_id: str | None

    def __str__(self) -> str:
        gid = f" (grade_id {self.grade_id!r})" if self.grade_id else ""
        return f"{self.path.name}, cell {self.index}{gid}"


def _strip(source: str, ref: CellRef, fence: tuple[str, str], *, stub=None) -> str:
    try:
        return strip_fence(source, fence, stub=stub)
    except FenceError as e:
        raise LabSourceError(f"{ref}: {e}") from None


def _validate_cell(cell, ref: CellRef) -> None:
    meta = nbgrader_meta(cell)
    lines = cell.source.splitlines()
    for n, line in marker_like_lines(cell.source):
        raise LabSourceError(
            f"{ref}: line {n}: {line!r} looks like a marker but is not one of {', '.join(MARKERS)}"
        )
    has_solution = any(line.strip() in SOLUTION for line in lines)
    has_hidden = any(line.strip() in HIDDEN for line in lines)
    if has_solution and not meta.get("solution"):
        raise LabSourceError(
            f"{ref}: {BEGIN_SOLUTION!r} in a cell without nbgrader solution metadata"
        )
    if has_hidden and not meta.get("grade"):
        raise LabSourceError(f"{ref}: {BEGIN_HIDDEN!r} in a cell without nbgrader grade metadata")
    if cell.cell_type == "code" and meta.get("solution") and not has_solution:
        raise LabSourceError(f"{ref}: a solution cell needs a {BEGIN_SOLUTION!r} fence")
    if meta.get("solution") or meta.get("grade"):
        if not meta.get("grade_id"):
            raise LabSourceError(f"{ref}: a solution or grade cell needs a grade_id")
    if cell.cell_type == "code":  # fences balanced and not nested
        _strip(cell.source, ref, HIDDEN)
        _strip(cell.source, ref, SOLUTION)
    if meta.get("grade"):
        points = meta.get("points")
        if not isinstance(points, (int, float)) or points < 0:
            raise LabSourceError(f"{ref}: a grade cell needs non-negative points, got {points!r}")


def validate(nb, path: Path) -> None:
    """Check a solution notebook's markers and nbgrader metadata; raise LabSourceError."""
    seen: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        ref = CellRef(path, i, meta.get("grade_id"))
        _validate_cell(cell, ref)
        gid = meta.get("grade_id")
        if gid and (meta.get("solution") or meta.get("grade")):
            if gid in seen:
                raise LabSourceError(f"{ref}: grade_id {gid!r} is also used by cell {seen[gid]}")
            seen[gid] = i
    if not seen:
        raise LabSourceError(f"{path.name}: no exercise (no cell with nbgrader metadata)")


def strip_solutions(nb, path: Path):
    """Return the starter version of solution notebook ``nb`` (not yet tagged)."""
    validate(nb, path)
    lab = copy.deepcopy(nb)
    for i, cell in enumerate(lab.cells):
        meta = nbgrader_meta(cell)
        ref = CellRef(path, i, meta.get("grade_id"))
        if cell.cell_type == "code":
            src = _strip(cell.source, ref, HIDDEN)
            src = _strip(src, ref, SOLUTION, stub=STUB)
            cell.source = src.rstrip("\n")
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown" and meta.get("solution"):
            cell.source = ANSWER_STUB
        tags = [t for t in cell.metadata.get("tags", []) if t != RAISES]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
    return clean_metadata(lab)


def tag_raising_cells(lab, path: Path, *, timeout: int = 300):
    """Run the starter lab (FAST mode, in a scratch folder) and tag cells that raise.

    Only an unfinished exercise may make a cell fail (NotImplementedError, or a
    NameError for what it would have defined); any other error is a bug in the
    solution notebook and stops generation.
    """
    from utils.instructor.execute import run_notebook
    from utils.instructor.exports import write_reference_exports

    run = copy.deepcopy(lab)
    with tempfile.TemporaryDirectory(prefix="labgen-") as tmp:
        # earlier labs' exports, as their solutions write them: a later lab loads them
        exports = Path(tmp) / "exports"
        write_reference_exports(exports, path.parent)
        run_notebook(
            run, Path(tmp), fast=True, allow_errors=True, timeout=timeout, exports=exports,
            widgets=False,  # only which cells raise matters here
        )  # fmt: skip
    any_stub_raised = False
    for i, (cell, ran) in enumerate(zip(lab.cells, run.cells)):
        if cell.cell_type != "code":
            continue
        errors = [o for o in ran.get("outputs", []) if o.get("output_type") == "error"]
        if not errors:
            continue
        ename = errors[0].get("ename", "")
        ref = CellRef(path, i, nbgrader_meta(cell).get("grade_id"))
        if ename not in EXPECTED_ERRORS or (ename == "NameError" and not any_stub_raised):
            raise LabSourceError(
                f"{ref}: the starter lab raises {ename}: {errors[0].get('evalue', '')}. "
                "Only unfinished exercises may raise (NotImplementedError)."
            )
        any_stub_raised = any_stub_raised or ename == "NotImplementedError"
        cell.metadata.setdefault("tags", [])
        if RAISES not in cell.metadata["tags"]:
            cell.metadata["tags"].append(RAISES)
    return lab


def generate(path: Path, *, execute: bool = True):
    """The lab notebook (a NotebookNode) for solution notebook ``path``."""
    nb = nbformat.read(path, as_version=4)
    lab = strip_solutions(nb, path)
    if execute:
        lab = tag_raising_cells(lab, path)
    return lab


def serialize(nb) -> str:
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def solution_paths(solutions_dir: Path = SOLUTIONS_DIR) -> list[Path]:
    return sorted(p for p in solutions_dir.glob("*.ipynb") if not p.name.startswith("."))


def write_labs(solutions_dir: Path = SOLUTIONS_DIR, labs_dir: Path = LABS_DIR) -> list[Path]:
    """Regenerate every lab; remove labs whose solution is gone. Returns written paths."""
    labs_dir.mkdir(parents=True, exist_ok=True)
    written = []
    sources = solution_paths(solutions_dir)
    for src in sources:
        target = labs_dir / src.name
        text = serialize(generate(src))
        tmp = target.with_suffix(".ipynb.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        written.append(target)
    for stale in labs_dir.glob("*.ipynb"):
        if stale.name not in {s.name for s in sources}:
            stale.unlink()
    return written


def diff_labs(solutions_dir: Path = SOLUTIONS_DIR, labs_dir: Path = LABS_DIR) -> list[str]:
    """Names of labs that differ from what the generator writes (empty when in sync)."""
    problems = []
    sources = solution_paths(solutions_dir)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "labs"
        staged.mkdir()
        for src in sources:
            (staged / src.name).write_text(serialize(generate(src)), encoding="utf-8")
        for src in sources:
            have = labs_dir / src.name
            if not have.exists():
                problems.append(f"{have}: missing (run `make labs`)")
            elif json.loads(have.read_text()) != json.loads((staged / src.name).read_text()):
                problems.append(
                    f"{have}: differs from its solution (run `make labs`; never edit labs/ by hand)"
                )
    for extra in sorted(labs_dir.glob("*.ipynb")):
        if extra.name not in {s.name for s in sources}:
            problems.append(f"{extra}: has no source in {solutions_dir.name}/")
    return problems
