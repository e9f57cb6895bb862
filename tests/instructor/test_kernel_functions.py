"""A lab that grades what the notebook trained: ``workbook.kernel_functions``.

Such a function (here ``predict``, which reads the weights ``w`` a training cell of the
notebook computed) cannot be rebuilt from its source in the function server; the
grader calls it in the notebook's kernel, after the cells above the test ran, and
judges the returned data in its own process.
"""

from __future__ import annotations

import nbformat
import pytest

from tests.factories import ROOT, grade_cell, nbval_text, solution_cell, write_notebook
from tests.instructor.test_grade import filled, write
from utils.instructor import grade, labgen
from utils.instructor.notebook import STUB, nbgrader_meta
from utils.instructor.sandbox.remote import free_names
from utils.instructor.sandbox.worker import Limits
from utils.instructor.score import given_cells

LIMITS = Limits(cell_timeout=4, total_timeout=120, memory_mb=2048, fast=True)
v4 = nbformat.v4

TRAIN = """\
rng = np.random.default_rng(0)
X = rng.normal(size=(50, 3))
w = fit(X, X @ np.array([1.0, -2.0, 0.5]))"""

TEST = """\
_X = seeded(1).normal(size=(20, 3))
_pred = predict(_X)
assert isinstance(_pred, np.ndarray) and _pred.shape == (20,), "one prediction per row"
assert np.allclose(_pred, _X @ np.array([1.0, -2.0, 0.5])), "the predictions are wrong"
"""


FLOOD = """\
    from IPython.display import display

    for _ in range(30):  # forged replies, 1 MB each
        display({"application/x-workbook-call+base64": "A" * 2**20}, raw=True)
    return X @ w"""


@pytest.fixture
def trained(tmp_path):
    """A lab whose ``predict`` uses the global ``w`` that the notebook trains."""
    solutions = tmp_path / "solutions"
    path = write_notebook(
        solutions / "lab98_trained.ipynb",
        [
            v4.new_markdown_cell("# A trained model"),
            v4.new_code_cell("import numpy as np\n\nfrom utils.checks import seeded"),
            solution_cell(
                "def fit(X, y):\n    # BEGIN SOLUTION\n"
                "    return np.linalg.lstsq(X, y, rcond=None)[0]\n    # END SOLUTION",
                "fit",
            ),
            v4.new_code_cell(TRAIN),
            solution_cell(
                "def predict(X):\n    # BEGIN SOLUTION\n    return X @ w\n    # END SOLUTION",
                "predict",
            ),
            grade_cell(TEST, "test_predict", points=2),
            grade_cell("assert fit(np.eye(2), np.ones(2)).shape == (2,)", "test_fit", points=1),
        ],
    )
    nb = nbformat.read(path, as_version=4)
    nb.metadata["workbook"] = {"forbid": [], "kernel_functions": ["predict"]}
    nbformat.write(nb, path)
    starter = labgen.strip_solutions(nbformat.read(path, as_version=4), path)
    return {"dir": solutions, "solution": nb, "starter": starter, "subs": tmp_path / "subs"}


def _grade(trained, tmp_path, allow_unisolated=False, **students):
    for name, nb in students.items():
        write(trained["subs"], name, "lab98_trained.ipynb", nb)
    results = grade.grade(
        trained["subs"], tmp_path / "out", solutions_dir=trained["dir"], limits=LIMITS,
        allow_unisolated=allow_unisolated, log=lambda *_: None,
    )  # fmt: skip
    return {r.student: r for r in results}


def _with_predict(trained, body: str):
    nb = filled(trained["starter"], trained["solution"])
    cell = next(c for c in nb.cells if c.source.startswith("def predict"))
    cell.source = f"def predict(X):\n{body}"
    return nb


@pytest.mark.parametrize("isolated", [True, False], ids=["bubblewrap", "unisolated"])
def test_a_kernel_function_sees_what_the_notebook_trained(trained, tmp_path, monkeypatch, isolated):
    from utils.instructor.sandbox import isolation

    if isolated and not isolation.available()[0]:
        pytest.skip("bubblewrap is not installed")
    if not isolated:
        monkeypatch.setattr(isolation, "available", lambda: (False, "bubblewrap is not installed"))
    got = _grade(
        trained, tmp_path, allow_unisolated=not isolated,
        ada=filled(trained["starter"], trained["solution"]),
    )  # fmt: skip
    ada = got["ada"]
    assert ada.isolation == ("bubblewrap" if isolated else "none")
    assert ada.scores == {"test_predict": 2.0, "test_fit": 1.0}, ada.feedback


def test_a_kernel_function_is_judged_on_what_it_returns(trained, tmp_path):
    """Wrong predictions, a value that is not data, an error, a loop, a flood of forged
    replies: each loses the test's points with its reason, and the other test still scores."""
    got = _grade(
        trained,
        tmp_path,
        wrong=_with_predict(trained, "    return X @ (2 * w)"),
        model=_with_predict(trained, "    return lambda: X @ w"),
        raises=_with_predict(trained, "    raise ValueError('no model yet')"),
        loops=_with_predict(trained, "    while True:\n        pass"),
        floods=_with_predict(trained, FLOOD),
    )
    why = {}
    for name, r in got.items():
        assert r.scores == {"test_predict": 0.0, "test_fit": 1.0}, (name, r.feedback)
        why[name] = next(f["reason"] for f in r.feedback if f["grade_id"] == "test_predict")
    assert "the predictions are wrong" in why["wrong"]
    assert "returned" in why["model"]  # not plain data: the channel refuses it
    assert "no model yet" in why["raises"]
    assert "time" in why["loops"].lower()
    assert "not valid data" in why["floods"]  # the first reply counts; the rest is capped


def test_without_the_metadata_the_function_server_lacks_the_trained_state(trained, tmp_path):
    """The reason for kernel_functions: rebuilt from its source, ``predict`` has no ``w``,
    and the grader refuses a lab whose own solution cannot earn every point."""
    nb = nbformat.read(trained["dir"] / "lab98_trained.ipynb", as_version=4)
    nb.metadata["workbook"] = {"forbid": []}
    nbformat.write(nb, trained["dir"] / "lab98_trained.ipynb")
    with pytest.raises(
        grade.GradingError, match="test_predict: NameError: name 'w' is not defined"
    ):
        _grade(trained, tmp_path, ada=filled(trained["starter"], trained["solution"]))


def test_make_check_calls_kernel_functions_in_the_kernel(trained, tmp_path):
    """``make check`` reads the lab's kernel_functions from the student's notebook too."""
    from utils.instructor import check

    path = tmp_path / "lab98_trained.ipynb"
    nbformat.write(filled(trained["starter"], trained["solution"]), path)
    lines = []
    code = check.check(path, LIMITS, out=lines.append)
    text = "\n".join(lines)
    assert code == 0 and "PASS  test_predict" in text, text


TRAINED_LABS = [
    p
    for p in sorted((ROOT / "solutions").glob("lab*.ipynb"))
    if nbformat.read(p, as_version=4).metadata.get("workbook", {}).get("kernel_functions")
]


# The untouched starter is graded for one lab: its kernel functions raise
# NotImplementedError, which fails every test that calls them (as
# test_a_kernel_function_is_judged_on_what_it_returns shows on a small lab, and the starter
# runs of tests/labs/test_labs_in_sync.py show for every lab's visible tests). Grading
# every lab's starter again would add a sixth of `make test` and find nothing new.
STARTER_GRADED = "lab06_ecg_anomalies"


def _trained_lab_end_to_end(path, tmp_path, monkeypatch):
    """The course's labs that grade a trained model, end to end (FAST mode): the
    solution's answers earn every point (their hidden tests score the model the notebook
    trained, in the kernel) and every cell of the solution runs without an error; the
    untouched starter (of ``STARTER_GRADED``) earns none of the model's tests."""
    starter = nbformat.read(ROOT / "labs" / path.name, as_version=4)
    solution = nbformat.read(path, as_version=4)
    write(tmp_path / "subs", "ada", path.name, filled(starter, solution))
    if path.stem == STARTER_GRADED:
        write(tmp_path / "subs", "bob", path.name, starter)
    # generous: CI runs this beside other notebooks on 2 cores (a slow cell is not a wrong one)
    limits = Limits(cell_timeout=600, total_timeout=1800, fast=True)
    runs = []  # (graded notebook, the worker's result) of each student, as scored

    def keep(graded, result, *args):
        runs.append((graded, result))
        return given_cells(graded, result, *args)

    monkeypatch.setattr(grade, "given_cells", keep)
    # the solution's own grading (calibration) adds nothing here: ada is the solution
    results = grade.grade(
        tmp_path / "subs", tmp_path / "out", limits=limits, log=lambda *_: None, calibrated=False
    )
    got = {r.student: r for r in results if r.lab == path.name}
    ada = got["ada"]
    assert ada.status == "ok" and ada.total == ada.max_total, (ada.notes, ada.feedback)
    # every other cell ran without an error, as under nbval: this run stands in for the
    # solution's nbval run in `make test` (see conftest.py)
    assert ada.cell_errors == {}, ada.cell_errors
    # and the cells nbval compares print what the stored notebook shows
    [(graded, result)] = [
        (g, r) for g, r in runs if not any(STUB[1] in code for code in g.sources.values())
    ]
    for k, cell in enumerate(graded.nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if k in graded.grade_cells or "nbval-check-output" not in tags:
            continue  # the tests run outside the kernel: tests/labs/test_tests_run_outside.py
        stored = solution.cells[graded.origin[k]].outputs
        assert nbval_text(result["cells"][k]["outputs"]) == nbval_text(stored), (
            f"{path.name} cell {graded.origin[k]} prints something else than its stored output"
        )
    kernel = set(solution.metadata["workbook"]["kernel_functions"])
    model_tests = [
        nbgrader_meta(c)["grade_id"]
        for c in solution.cells
        if c.cell_type == "code" and nbgrader_meta(c).get("grade") and kernel & free_names(c.source)
    ]
    assert model_tests, "a lab with kernel_functions has tests that call them"
    if path.stem == STARTER_GRADED:
        bob = got["bob"]
        assert bob.status == "ok" and all(bob.scores[t] == 0 for t in model_tests), bob.scores


def _trained_lab_class(path):
    """A test class for one lab: pytest-xdist's ``loadscope`` sends each class to a worker of
    its own, so the labs' end-to-end gradings (up to two minutes each) run side by side."""

    def test_solution_every_point_starter_none(self, tmp_path, monkeypatch):
        _trained_lab_end_to_end(path, tmp_path, monkeypatch)

    return type(
        f"TestTrained_{path.stem}",
        (),
        {"test_solution_every_point_starter_none": test_solution_every_point_starter_none},
    )


for _lab in TRAINED_LABS:
    globals()[f"TestTrained_{_lab.stem}"] = _trained_lab_class(_lab)


def test_the_datasets_a_lab_loads_are_fetched_before_the_sandbox_starts(monkeypatch):
    """In the sandbox the data cache is read-only: the worker fetches what the notebook
    names first (a name the registry does not know is left to the notebook's own error)."""
    from utils.instructor.sandbox import worker

    cells = [
        v4.new_code_cell('ecg = load_dataset("ecg5000")\nx = load_dataset( "airline" )'),
        v4.new_markdown_cell('load_dataset("imdb")'),
        v4.new_code_cell("load_dataset(name)  # not a literal: not known before the run"),
    ]
    assert worker.datasets_in(cells) == ["airline", "ecg5000"]
    fetched = []
    monkeypatch.setattr("utils.data.download.fetch", lambda name, **kw: fetched.append((name, kw)))
    worker.prefetch(["ecg5000", "no-such-dataset"])
    assert fetched == [("ecg5000", {"fetch_optional": False, "progress": False})]


def test_the_tests_pick_the_mode_the_kernel_runs_in(monkeypatch):
    """A test's ``pick(full=..., fast=...)`` (Lab 7's F1 threshold) follows the grading
    run's mode, whatever the grader's own environment says."""
    from utils.config import pick
    from utils.instructor.sandbox import worker

    monkeypatch.setenv("WORKBOOK_FAST", "0")
    with worker._fast_mode(True):
        assert pick(full=0.70, fast=0.30) == 0.30
    assert pick(full=0.70, fast=0.30) == 0.70
    monkeypatch.delenv("WORKBOOK_FAST")
    with worker._fast_mode(False):
        assert pick(full=0.70, fast=0.30) == 0.70
    assert "WORKBOOK_FAST" not in __import__("os").environ


def test_the_lab_whose_starter_is_graded_is_a_lab_with_kernel_functions():
    assert STARTER_GRADED in [p.stem for p in TRAINED_LABS]
