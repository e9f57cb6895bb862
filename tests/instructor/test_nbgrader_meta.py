"""The solutions' cell metadata follows nbgrader's format (version 3)."""

from __future__ import annotations

import copy

import nbformat
import pytest

from tests.factories import nbgrader_cell
from utils.instructor import labgen
from utils.instructor.nbgrader_schema import cell_problems, notebook_problems
from utils.instructor.notebook import nbgrader_meta

SOLUTIONS = labgen.solution_paths()


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_solution_metadata_is_valid_nbgrader_v3(path):
    nb = nbformat.read(path, as_version=4)
    assert notebook_problems(nb) == []
    assert any(nbgrader_meta(c).get("grade") for c in nb.cells), "no grade cell"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_solution_metadata_with_nbgrader_itself(path):
    """nbgrader's own validator, when the optional extra is installed."""
    nbgraderformat = pytest.importorskip("nbgrader.nbgraderformat")
    nb = nbformat.read(path, as_version=4)
    nbgraderformat.MetadataValidator().validate_nb(nb)


_cell = nbgrader_cell


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        (_cell(schema_version=2), "schema_version"),
        (_cell(grade="yes"), "grade"),
        (_cell(grade=True, grade_id="t", locked=True), "has no points"),
        (_cell(grade=True, grade_id="t", locked=True, points=-1), "points"),
        (_cell(solution=True), "non-empty grade_id"),
        (_cell(solution=True, grade_id="has space"), "grade_id"),
        (_cell(solution=True, grade_id="s", extra=1), "Additional properties"),
        (_cell("markdown", solution=True, grade_id="m"), "markdown"),
        (_cell(solution=True, grade_id="s", locked=True), "must not be locked"),
        (_cell(grade=True, grade_id="t", points=1), "must be locked"),
    ],
)
def test_validator_rejects_broken_metadata(cell, problem):
    problems = cell_problems(cell)
    assert problems and any(problem in p for p in problems), problems


def test_validator_accepts_good_cells_and_finds_duplicate_ids():
    good = [
        _cell(solution=True, grade_id="step"),
        _cell(grade=True, locked=True, points=2, grade_id="test_step"),
        _cell("markdown", grade=True, solution=True, points=1, grade_id="why"),
        nbformat.v4.new_code_cell("plain = True"),
    ]
    nb = nbformat.v4.new_notebook(cells=good)
    assert notebook_problems(nb) == []
    nb.cells.append(copy.deepcopy(good[0]))
    assert notebook_problems(nb) == ["cell 4: duplicate grade_id 'step' (also cell 0)"]
