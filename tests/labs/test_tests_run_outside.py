"""Every lab's test cells can run in the grader's process (not in the student's kernel).

There a test sees the setup cell's imports and the exercises' functions, nothing
else of the notebook (a helper the notebook defines could be redefined by a
student to lie). Random inputs go through ``seeded`` so the grader can draw them
afresh, and each lab states its rules.
"""

from __future__ import annotations

import builtins
import contextlib
import io

import nbformat
import pytest

from tests.factories import ROOT, nbval_text
from utils.checks.core import fresh_inputs
from utils.instructor.assemble import load_lab
from utils.instructor.notebook import nbgrader_meta
from utils.instructor.sandbox.functions import python_of
from utils.instructor.sandbox.remote import free_names, is_definitions, setup_imports

SOLUTIONS = sorted((ROOT / "solutions").glob("lab*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_test_cells_use_only_the_setup_imports_and_the_exercises(path):
    lab = load_lab(path)
    ns: dict = {}
    exec(setup_imports(lab.setup_source), ns)  # noqa: S102
    allowed = set(ns) | set(lab.exercises) | set(dir(builtins))
    for cell in lab.template.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code" and meta.get("grade"):
            extra = free_names(cell.source) - allowed
            assert not extra, f"{path.name} {meta['grade_id']} reads {sorted(extra)}"
            assert "default_rng(" not in cell.source, (
                f"{meta['grade_id']}: draw random inputs with seeded(seed) from utils.checks"
            )


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_every_lab_states_its_rules(path):
    nb = nbformat.read(path, as_version=4)
    forbid = nb.metadata.get("workbook", {}).get("forbid")
    assert isinstance(forbid, list), f"{path.name}: add metadata workbook.forbid (e.g. ['torch'])"
    assert "utils.checks" in load_lab(path).forbid()


# salts that once drew inputs on which a correct solution failed a hidden test
# (Lab 1's finite-difference check on an entry near zero), and a few others
SALTS = [952158461, 555122063, 0, 1, 2**31 - 1]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_the_solution_passes_every_test_cell_for_any_salt(path):
    """The grader draws fresh inputs per run (``fresh_inputs``): a correct submission
    must pass on all of them, not on most. Without a salt, a test cell prints what the
    stored notebook shows."""
    lab = load_lab(path)
    ns: dict = {"__name__": "__solution__"}
    exec(setup_imports(lab.setup_source), ns)  # noqa: S102
    stored_outputs = {}
    for cell in nbformat.read(path, as_version=4).cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code" and meta.get("grade"):
            stored_outputs[meta["grade_id"]] = cell.outputs
        if cell.cell_type == "code" and (
            meta.get("solution") or (not meta.get("grade") and is_definitions(cell.source))
        ):
            exec(python_of(cell.source), ns)  # noqa: S102
    tests = [  # those of a trained model need the notebook's run (tests/instructor grades one)
        c
        for c in lab.template.cells
        if c.cell_type == "code"
        and nbgrader_meta(c).get("grade")
        and not free_names(c.source) & set(lab.kernel_functions)
    ]
    # first with the inputs the notebook's own run draws: what nbval compares in the cells
    # tagged nbval-check-output must be what the stored notebook shows (make test does not
    # run nbval on the labs that a test grades end to end, see conftest.py)
    for cell in tests:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(python_of(cell.source), dict(ns))  # noqa: S102
        if "nbval-check-output" in cell.get("metadata", {}).get("tags", []):
            stored = nbval_text(stored_outputs[nbgrader_meta(cell)["grade_id"]])
            got = nbval_text([{"output_type": "stream", "text": printed.getvalue()}])
            assert got == stored, f"{nbgrader_meta(cell)['grade_id']} prints another text"
    for salt in SALTS:
        for cell in tests:
            with fresh_inputs(salt), contextlib.redirect_stdout(io.StringIO()):
                try:
                    exec(python_of(cell.source), dict(ns))  # noqa: S102
                except Exception as e:
                    pytest.fail(f"{nbgrader_meta(cell)['grade_id']} with salt {salt}: {e}")
