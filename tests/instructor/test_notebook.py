"""The notebook toolkit: one fence parser, nbgrader metadata, metadata allow-list."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.factories import KERNELSPEC, grade_cell, nbgrader_cell, solution_cell
from utils.instructor import notebook as nbt

SOURCE = """def f(x):
    \"\"\"Doc.\"\"\"
    # BEGIN SOLUTION
    y = x + 1
    return y
    # END SOLUTION"""


def test_split_fences_separates_inside_from_outside():
    parts = nbt.split_fences(SOURCE)
    assert [ln for _, ln in parts.inside] == ["    y = x + 1", "    return y"]
    assert [ln for _, ln in parts.outside] == ["def f(x):", '    """Doc."""']
    assert parts.openings == [(3, "    ")]


def test_strip_fence_puts_the_stub_at_the_fence_indentation():
    assert nbt.strip_fence(SOURCE, stub=nbt.STUB).splitlines()[2:] == [
        "    # YOUR CODE HERE",
        "    raise NotImplementedError()",
    ]
    assert nbt.strip_fence(SOURCE) == 'def f(x):\n    """Doc."""'


def test_without_markers_keeps_the_answer():
    assert nbt.without_markers(SOURCE) == 'def f(x):\n    """Doc."""\n    y = x + 1\n    return y'
    assert nbt.fenced_lines(SOURCE) == ["    y = x + 1", "    return y"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("# BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n# END SOLUTION", "line 2: '# END SOLUTION' without a matching"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "line 2: '# BEGIN SOLUTION' inside"),
    ],
)
def test_unbalanced_fences_name_the_line(source, message):
    with pytest.raises(nbt.FenceError, match=message):
        nbt.split_fences(source)


def test_hidden_test_fences_are_parsed_by_the_same_parser():
    src = "check(f)\n# BEGIN HIDDEN TESTS\nassert f(1) == 2\n# END HIDDEN TESTS"
    assert nbt.fenced_lines(src, nbt.HIDDEN) == ["assert f(1) == 2"]
    assert nbt.strip_fence(src, nbt.HIDDEN) == "check(f)"
    assert nbt.fenced_lines(src) == []  # no solution fence there


def test_marker_like_lines_are_found():
    assert nbt.marker_like_lines("#BEGIN SOLUTION\nx\n## end solution\n# BEGIN SOLUTION") == [
        (1, "#BEGIN SOLUTION"),
        (3, "## end solution"),
    ]


def test_nbgrader_helpers_read_the_metadata():
    sol, test = solution_cell("x = 1", "ex"), grade_cell("assert x", "test_ex", points=3)
    plain = new_code_cell("y = 2")
    assert nbt.is_exercise(sol) and not nbt.is_test(sol) and nbt.grade_id(sol) == "ex"
    assert nbt.is_test(test) and nbt.points(test) == 3.0 and nbt.points(sol) == 0.0
    assert not nbt.is_exercise(plain) and nbt.nbgrader_meta(plain) == {}
    assert nbt.max_points(new_notebook(cells=[sol, test, grade_cell("1", "t2", 0.5)])) == 3.5
    answer = nbgrader_cell(
        "markdown", "Because.", solution=True, grade=True, grade_id="w", points=1
    )
    assert not nbt.is_test(answer) and nbt.points(answer) == 1.0


def test_clean_metadata_is_an_allow_list():
    cell = new_markdown_cell("x")
    cell.metadata.update(
        {"tags": ["a"], "nbgrader": {"grade": False}, "scrolled": True, "execution": {}, "new": 1}
    )
    nb = new_notebook(cells=[cell])
    nb.metadata.update(
        {
            "kernelspec": dict(KERNELSPEC),
            "widgets": {"state": {}},
            "toc": {},
            "language_info": {"name": "python"},
        }
    )
    nbt.clean_metadata(nb)
    assert set(nb.metadata) == {"kernelspec", "language_info"}
    assert set(nb.cells[0].metadata) == {"tags", "nbgrader"}
    nbformat.validate(nb)
