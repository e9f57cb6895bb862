"""Test order for `make test`: the longest work first.

pytest-xdist (``--dist loadscope``) hands each worker a whole scope at a time (a test
class, a test module, or a notebook under nbval). By default it sorts scopes by their
number of tests, which puts a class of one two-minute test (grading a lab end to end)
last, on a worker of its own, after the others are done. ``make test`` turns that off
(``--no-loadscope-reorder``) and this hook puts the known long scopes first, so they
run beside the many short ones. The sort is stable: within a scope, and so within a
notebook, the order of the cells is kept.

A solution notebook that a lab's end-to-end grading test runs anyway is not run a
second time by nbval (see ``_graded_elsewhere``).
"""

LONGEST_FIRST = (
    "tests/instructor/test_grade.py::TestLab1Class",  # a class of submissions graded
    "tests/instructor/test_kernel_functions.py::TestTrained_",  # a lab graded end to end
    "tests/labs/test_labs_in_sync.py",  # every starter lab executed
    "tests/chatbot/test_model.py",  # the chatbot trained, served and reported
    "tests/labs/test_lab08_checks.py",
    "solutions/",
    "tests/labs/test_tests_run_outside.py",
    "tests/instructor/test_grade.py",
    "notebooks/",
)


def _rank(nodeid: str) -> int:
    return next(
        (i for i, p in enumerate(LONGEST_FIRST) if nodeid.startswith(p)), len(LONGEST_FIRST)
    )


GRADED_END_TO_END = "tests/instructor/test_kernel_functions.py::TestTrained_"


def _graded_elsewhere(items) -> set[str]:
    """The solution notebooks that a TestTrained_<lab> test of this session runs.

    That test grades the solution in the grader's sandbox, in a fresh kernel, and requires
    every point and no error in any other cell: it is the notebook's run, so nbval does not
    run the same notebook again. (Run alone, ``pytest solutions/<lab>.ipynb`` still runs it.)
    """
    return {
        f"solutions/{item.nodeid[len(GRADED_END_TO_END) :].split('::')[0]}.ipynb"
        for item in items
        if item.nodeid.startswith(GRADED_END_TO_END)
    }


def pytest_collection_modifyitems(session, config, items):
    twice = _graded_elsewhere(items)
    dropped = [item for item in items if item.nodeid.split("::")[0] in twice]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.nodeid.split("::")[0] not in twice]
    items.sort(key=lambda item: _rank(item.nodeid))
