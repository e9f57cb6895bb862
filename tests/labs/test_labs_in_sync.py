"""labs/ is exactly what `make labs` writes from solutions/, lab by lab.

The generator's own behaviour (stubs, tags, refusals, detecting a hand edit) is
tested in tests/instructor/test_labgen.py; here every real lab is held to it.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from tests.factories import ROOT
from utils.instructor import labgen
from utils.instructor.notebook import (
    HIDDEN,
    SOLUTION,
    STUB,
    fenced_lines,
    grade_id,
    is_exercise,
    max_points,
    points,
)

SOLUTIONS = labgen.solution_paths()
IDS = [p.stem for p in SOLUTIONS]


def test_labs_folder_has_one_lab_per_solution_and_nothing_else():
    assert SOLUTIONS, "solutions/ holds no lab notebook"
    assert sorted(p.name for p in (ROOT / "labs").glob("*.ipynb")) == [p.name for p in SOLUTIONS]


@pytest.mark.parametrize("source", SOLUTIONS, ids=IDS)
def test_lab_is_what_the_generator_writes(source):
    lab = ROOT / "labs" / source.name
    want = json.loads(labgen.serialize(labgen.generate(source)))
    assert json.loads(lab.read_text()) == want, (
        f"{lab} differs from its solution: run `make labs` (never edit labs/ by hand)"
    )


@pytest.mark.parametrize("source", SOLUTIONS, ids=IDS)
def test_lab_keeps_every_test_and_its_points_and_no_answer(source):
    solution = nbformat.read(source, as_version=4)
    lab = nbformat.read(ROOT / "labs" / source.name, as_version=4)
    graded = [(grade_id(c), points(c)) for c in solution.cells if points(c) or grade_id(c)]
    assert [(grade_id(c), points(c)) for c in lab.cells if points(c) or grade_id(c)] == graded
    assert max_points(lab) == max_points(solution) > 0
    text = "\n".join(c.source for c in lab.cells)
    for cell in solution.cells:
        for fence in (SOLUTION, HIDDEN):
            for line in fenced_lines(cell.source, fence):
                if len(line.strip()) >= 30:
                    assert line not in text, f"{source.name}: answer or hidden test in the lab"
    for cell in lab.cells:
        if is_exercise(cell) and cell.cell_type == "code":
            assert all(s in cell.source for s in STUB), f"{grade_id(cell)} is not a stub"
