"""Every lab's test cells can run in the grader's process (not in the student's kernel).

There a test sees the setup cell's imports and the exercises' functions, nothing
else of the notebook (a helper the notebook defines could be redefined by a
student to lie). Random inputs go through ``seeded`` so the grader can draw them
afresh, and each lab states its rules.
"""

from __future__ import annotations

import builtins

import nbformat
import pytest

from tests.factories import ROOT
from utils.instructor.assemble import load_lab
from utils.instructor.notebook import nbgrader_meta
from utils.instructor.sandbox.remote import free_names, setup_imports

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
