"""labs/ must be exactly what `make labs` writes from solutions/."""

from utils.instructor import labgen


def test_there_is_at_least_one_lab():
    assert labgen.solution_paths(), "solutions/ holds no lab notebook"


def test_labs_match_their_solutions():
    problems = labgen.diff_labs()
    assert not problems, "\n".join(problems)
