"""The lab generator: what it strips, what it tags, and how it refuses bad sources."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from tests.factories import SOLUTION_META, grade_cell, solution_cell, write_notebook
from utils.instructor import labgen
from utils.instructor.labgen import LabSourceError


def make_solution(tmp_path, cells, name="lab00_toy.ipynb"):
    return write_notebook(tmp_path / "solutions" / name, cells)


def toy_cells():
    return [
        new_markdown_cell("# Toy lab"),
        solution_cell(
            grade_id="double",
            source='def double(x):\n    """Return 2x."""\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION',
        ),
        grade_cell(
            grade_id="test_double",
            source="assert double(2) == 4\n# BEGIN HIDDEN TESTS\nassert double(-3) == -6\n# END HIDDEN TESTS",
        ),
        new_code_cell("y = double(5)\nprint(y)"),
        new_code_cell("print(y + 1)"),
        new_code_cell("print('independent of the exercise')"),
    ]


def test_stubs_replace_solutions_and_hidden_tests_vanish(tmp_path):
    lab = labgen.strip_solutions(nbformat.read(make_solution(tmp_path, toy_cells()), 4), tmp_path)
    sources = [c.source for c in lab.cells]
    assert sources[1] == (
        'def double(x):\n    """Return 2x."""\n    # YOUR CODE HERE\n    raise NotImplementedError()'
    )
    assert sources[2] == "assert double(2) == 4"
    text = json.dumps(lab)
    for secret in ("return 2 * x", "double(-3)", "BEGIN SOLUTION", "HIDDEN TESTS"):
        assert secret not in text
    # nbgrader metadata stays, so nbgrader users can still collect the lab
    assert lab.cells[2].metadata["nbgrader"]["points"] == 2


def test_outputs_are_removed(tmp_path):
    cells = toy_cells()
    cells[5].outputs = [nbformat.v4.new_output("stream", text="old\n")]
    cells[5].execution_count = 7
    lab = labgen.strip_solutions(nbformat.read(make_solution(tmp_path, cells), 4), tmp_path)
    assert all(c.get("outputs", []) == [] for c in lab.cells if c.cell_type == "code")
    assert all(c.get("execution_count") is None for c in lab.cells if c.cell_type == "code")


def test_markdown_answers_are_blanked(tmp_path):
    cells = toy_cells()
    answer = new_markdown_cell("Because the gradient vanishes.")
    answer.metadata["nbgrader"] = {**SOLUTION_META, "grade_id": "why", "grade": True, "points": 1}
    cells.append(answer)
    lab = labgen.strip_solutions(nbformat.read(make_solution(tmp_path, cells), 4), tmp_path)
    assert lab.cells[-1].source == labgen.ANSWER_STUB


def test_cells_that_raise_in_the_starter_are_tagged(tmp_path):
    lab = labgen.generate(make_solution(tmp_path, toy_cells()))
    tags = [c.metadata.get("tags", []) for c in lab.cells]
    assert tags[1] == []  # defining a stub does not raise
    assert "raises-exception" in tags[2]  # calls the stub
    assert "raises-exception" in tags[3]  # calls the stub
    assert "raises-exception" in tags[4]  # NameError: y was never defined
    assert tags[5] == []


def test_a_bug_in_the_solution_notebook_stops_generation(tmp_path):
    cells = toy_cells()
    cells[5] = new_code_cell("1 / 0")
    with pytest.raises(LabSourceError, match=r"cell 5.*ZeroDivisionError"):
        labgen.generate(make_solution(tmp_path, cells))


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (solution_cell("x = 1\n# BEGIN SOLUTION\nx = 2"), "never closed"),
        (solution_cell("x = 1\n# END SOLUTION"), "without a matching"),
        (
            solution_cell("# BEGIN SOLUTION\n# BEGIN SOLUTION\nx = 2\n# END SOLUTION"),
            "inside another",
        ),
        (solution_cell("# BEGIN SOLUTON\nx = 2\n# END SOLUTION"), "looks like a marker"),
        (solution_cell("#BEGIN SOLUTION\nx = 2\n#END SOLUTION"), "looks like a marker"),
        (solution_cell("## begin solution\nx = 2\n## end solution"), "looks like a marker"),
        (new_code_cell("# BEGIN SOLUTION\nx = 2\n# END SOLUTION"), "without nbgrader solution"),
        (
            new_code_cell("# BEGIN HIDDEN TESTS\nassert 1\n# END HIDDEN TESTS"),
            "without nbgrader grade",
        ),
        (solution_cell("x = 2"), "needs a '# BEGIN SOLUTION' fence"),
        (grade_cell("assert True", points=None), "non-negative points"),
        (grade_cell("assert True", grade_id="double"), "also used by cell"),
    ],
)
def test_malformed_sources_name_notebook_and_cell(tmp_path, cell, message):
    cells = toy_cells() + [cell]
    path = make_solution(tmp_path, cells)
    with pytest.raises(LabSourceError) as err:
        labgen.generate(path, execute=False)
    assert message in str(err.value)
    assert f"{path.name}, cell {len(cells) - 1}" in str(err.value)


def test_plain_comments_with_begin_or_end_are_allowed(tmp_path):
    cells = toy_cells() + [new_code_cell("# End of the warm-up\n# begin with a small model\nz = 1")]
    labgen.generate(make_solution(tmp_path, cells), execute=False)


def test_a_notebook_without_exercises_is_refused(tmp_path):
    path = make_solution(tmp_path, [new_code_cell("x = 1")])
    with pytest.raises(LabSourceError, match="no exercise"):
        labgen.generate(path, execute=False)


def test_hand_edits_and_missing_or_stale_labs_are_reported(tmp_path):
    make_solution(tmp_path, toy_cells())
    solutions, labs = tmp_path / "solutions", tmp_path / "labs"
    assert [p.name for p in labgen.write_labs(solutions, labs)] == ["lab00_toy.ipynb"]
    assert labgen.diff_labs(solutions, labs) == []

    lab = labs / "lab00_toy.ipynb"
    nb = nbformat.read(lab, 4)
    nb.cells[1].source = nb.cells[1].source.replace("raise NotImplementedError()", "return 2 * x")
    nbformat.write(nb, lab)
    assert any("differs from its solution" in p for p in labgen.diff_labs(solutions, labs))

    lab.unlink()
    assert any("missing" in p for p in labgen.diff_labs(solutions, labs))

    labgen.write_labs(solutions, labs)
    (labs / "lab99_orphan.ipynb").write_text(lab.read_text())
    assert any("has no source" in p for p in labgen.diff_labs(solutions, labs))
