"""The grader: every kind of submission, built from the Lab 1 solution and starter.

One module-scoped run grades a class of Lab 1 submissions (correct, starter,
partial, syntax error, endless loop, memory hog, kernel crash, deleted / edited
tests, hidden tracebacks, reads of solutions/ and the network, lost metadata,
empty and non-JSON files, a missing file) and a class of cheats (checks rebound
above and below the setup cell, the checks module patched, sys.modules replaced,
an import hook, numpy's comparisons patched, a solution read from another copy of
the workbook, files reached through a directory handle, writes into tests/ and
solutions/, an AST transformer, the checks' helpers called, torch in a NumPy-only
lab), and the tests assert the exact gradebook rows: a cheat that does nothing
scores 0. Smaller tests use a tiny lab written into tmp_path.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.factories import ROOT, grade_cell, nbgrader_cell, solution_cell, write_notebook
from tests.instructor.conftest import ISOLATION
from utils.instructor import grade, labgen
from utils.instructor.notebook import nbgrader_meta, without_markers
from utils.instructor.sandbox import worker
from utils.instructor.sandbox.policy import Policy
from utils.instructor.sandbox.worker import Limits, _Watchdog
from utils.instructor.score import given_cells

LAB1 = "lab01_rnn_from_scratch.ipynb"
SOLUTION = ROOT / "solutions" / LAB1
STARTER = ROOT / "labs" / LAB1
TEST_LIMITS = Limits(cell_timeout=10, total_timeout=300, memory_mb=2048, fast=True)
v4 = nbformat.v4


answer = without_markers  # a solution cell without its fences: what a student who solved it writes


def filled(starter, solution, ids=None):
    """The starter with the exercises ``ids`` (default: all) answered."""
    nb = copy.deepcopy(starter)
    for cell, sol in zip(nb.cells, solution.cells):
        gid = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and (ids is None or gid in ids):
            cell.source = answer(sol.source)
    return nb


def cell_of(nb, grade_id):
    return next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)


def prepend(nb, grade_id, code):
    nb = copy.deepcopy(nb)
    cell = cell_of(nb, grade_id)
    cell.source = code + "\n" + cell.source
    return nb


def write(folder: Path, student: str, name: str, nb=None, raw: bytes | None = None) -> Path:
    path = folder / student / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        path.write_bytes(raw)
    elif nb is not None:
        nbformat.write(nb, path)
    return path


def read_gradebook(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def expected_row(
    lab: grade.Lab, student: str, failed: set[str], status: str, review: str = ""
) -> dict[str, str]:
    unknown = failed - set(lab.grade_ids)
    assert not unknown, f"not grade ids of {lab.name}: {unknown}"
    scores = {g.grade_id: 0.0 if g.grade_id in failed else g.points for g in lab.grade_cells}
    return {
        "student": student,
        "lab": Path(lab.name).stem,
        "total": grade._num(sum(scores.values())),
        "max_total": grade._num(lab.max_total),
        "status": status,
        "review": review,
        "isolation": ISOLATION,
        **{k: grade._num(v) for k, v in scores.items()},
    }


# ------------------------------------------------------------------ Lab 1 class

# What each student did, and which tests must fail (by the lab's dependencies:
# rnn_forward calls rnn_step_forward, rnn_backward calls rnn_step_backward, and
# loss_and_grads calls rnn_forward, temporal_softmax_loss and rnn_backward).
ALL = {
    "test_rnn_step_forward",
    "test_rnn_forward",
    "test_temporal_softmax_loss",
    "test_rnn_step_backward",
    "test_rnn_backward",
    "test_loss_and_grads",
    "test_clip_grad_norm",
}
HIDE_ERRORS = """\
import sys
ip = get_ipython()
ip.showtraceback = lambda *a, **k: None
ip._showtraceback = lambda *a, **k: None
ip.set_custom_exc((BaseException,), lambda *a, **k: None)
sys.excepthook = lambda *a: None
print("[PASS] everything")"""
READ_SOLUTION = """\
import pathlib
import utils
_root = pathlib.Path(utils.__file__).resolve().parent.parent
_leak = (_root / "solutions" / "lab01_rnn_from_scratch.ipynb").read_text()"""
CONNECT = """\
import socket
socket.create_connection(("1.1.1.1", 53), timeout=3).close()"""
CHECK_NAMES = [
    "check_rnn_step_forward", "check_rnn_forward", "check_temporal_softmax_loss",
    "check_rnn_step_backward", "check_rnn_backward", "check_loss_and_grads",
    "check_clip_grad_norm",
]  # fmt: skip
REBIND = "\n".join(f"{n} = lambda *a, **k: None" for n in CHECK_NAMES) + (
    "\nrel_error = lambda *a, **k: 0.0\nabs = lambda x: 0.0\n"
    "numerical_gradient = lambda f, x, h=1e-5: 0 * x"
)
PATCH_CHECKS = """\
import utils.checks.lab01 as _m
import utils.checks.engine as _e
for _n in dir(_m):
    if _n.startswith("check_"):
        setattr(_m, _n, lambda *a, **k: None)
_e.compare = lambda *a, **k: 0.0"""
FAKE_MODULES = """\
import sys, types
_fake = types.ModuleType("utils.checks.lab01")
_fake.__getattr__ = lambda name: (lambda *a, **k: None)
sys.modules["utils.checks.lab01"] = _fake"""
IMPORT_HOOK = """\
import sys, types, importlib.abc, importlib.machinery
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.startswith("utils.checks"):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        m = types.ModuleType(spec.name)
        m.__path__ = []
        m.__getattr__ = lambda n: (lambda *a, **k: None)
        return m
    def exec_module(self, module):
        pass
for _k in [k for k in sys.modules if k.startswith("utils.checks")]:
    del sys.modules[_k]
sys.meta_path.insert(0, _Finder())"""
PATCH_NUMPY = """\
np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
torch.allclose = lambda *a, **k: True
np.abs = lambda x: 0 * x
np.max = lambda *a, **k: 0.0"""
OTHER_COPY = """\
import json
_nb = json.load(open({path!r}))
for _c in _nb["cells"]:
    if _c.get("metadata", {{}}).get("nbgrader", {{}}).get("solution"):
        exec("".join(_c["source"]))"""
DIR_FD = """\
import os, pathlib, utils
_fd = os.open(str(pathlib.Path(utils.__file__).parent), os.O_RDONLY)
try:
    _leak = os.read(os.open("../solutions/lab01_rnn_from_scratch.ipynb", os.O_RDONLY, dir_fd=_fd), 10**7)
    exec(_leak)
finally:
    _w = os.open("../tests/instructor/test_pwned.py", os.O_WRONLY | os.O_CREAT, dir_fd=_fd)
    os.write(_w, b"assert False")"""
WRITE_TESTS = """\
import pathlib, utils
_root = pathlib.Path(utils.__file__).resolve().parent.parent
for _rel in ["tests/instructor/test_pwned.py", "solutions/pwned.py", "utils/pwned.py"]:
    try:
        (_root / _rel).write_text("assert False")
    except OSError as e:
        print(type(e).__name__, e)"""
AST_TRANSFORMER = """\
import ast
class _Quiet(ast.NodeTransformer):
    def visit_Module(self, node):
        body = [ast.Try(body=[s], handlers=[ast.ExceptHandler(body=[ast.Pass()])],
                        orelse=[], finalbody=[]) for s in node.body]
        return ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
get_ipython().ast_transformers.append(_Quiet())"""
CHECKS_HELPER = """\
def loss_and_grads(params, X, Y, h0):
    import utils.checks as c
    def loss():
        W_xh, W_hh, b_h, W_hq, b_q = (params[k] for k in ("W_xh", "W_hh", "b_h", "W_hq", "b_q"))
        states, _ = rnn_forward(X, h0, W_xh, W_hh, b_h)
        return temporal_softmax_loss(states @ W_hq + b_q, Y)[0]
    return loss(), {k: c.numerical_gradient(loss, v) for k, v in params.items()}"""
TORCH_STEP = """\
def rnn_step_forward(x_t, h_prev, W_xh, W_hh, b_h):
    t = __import__("to" + "rch")
    f = lambda a: t.from_numpy(a)
    h_t = t.tanh(f(x_t) @ f(W_xh) + f(h_prev) @ f(W_hh) + f(b_h)).numpy()
    return h_t, (x_t, h_prev, h_t, W_xh, W_hh)"""
TORCH_STEP_FORWARD = """\
import torch
from torch import nn


def rnn_step_forward(x_t, h_prev, W_xh, W_hh, b_h):
    cell = nn.RNNCell(x_t.shape[1], h_prev.shape[1]).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(W_xh.T))
        cell.weight_hh.copy_(torch.from_numpy(W_hh.T))
        cell.bias_ih.copy_(torch.from_numpy(b_h))
        cell.bias_hh.zero_()
        h_t = cell(torch.from_numpy(x_t), torch.from_numpy(h_prev)).numpy()
    return h_t, (x_t, h_prev, h_t, W_xh, W_hh)"""
TORCH_CLIP = """\
def clip_grad_norm(grads, max_norm):
    ps = [nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads.values()]
    for p, g in zip(ps, grads.values()):
        p.grad = torch.from_numpy(g.copy())
    total = float(nn.utils.clip_grad_norm_(ps, max_norm))
    return {k: p.grad.numpy() for k, p in zip(grads, ps)}, total"""
CLASS = {
    # student: (failed tests, status)
    "correct": (set(), grade.OK),
    "starter": (ALL, grade.OK),
    "partial": (
        ALL - {"test_rnn_step_forward", "test_rnn_forward", "test_clip_grad_norm"},
        grade.OK,
    ),
    "syntax_error": (
        {"test_rnn_step_backward", "test_rnn_backward", "test_loss_and_grads"},
        grade.OK,
    ),
    "endless_loop": ({"test_clip_grad_norm"}, grade.TIMEOUT),
    "memory_hog": ({"test_rnn_forward", "test_loss_and_grads"}, grade.MEMORY),
    "kernel_crash": ({"test_loss_and_grads", "test_clip_grad_norm"}, grade.DIED),
    "tests_deleted": (set(), grade.OK),
    "tests_edited": ({"test_clip_grad_norm"}, grade.OK),
    "hides_errors": (ALL, grade.OK),
    "hostile": (
        {"test_temporal_softmax_loss", "test_loss_and_grads", "test_clip_grad_norm"},
        grade.OK,
    ),
    "no_metadata": (set(), grade.OK),
    "empty_file": (ALL, grade.UNREADABLE),
    # cheats: each starts from the starter (nothing done) unless said otherwise
    "cheat_rebind_below": (ALL, grade.OK),
    "cheat_rebind_above": (ALL, grade.OK),
    "cheat_patch_checks": (ALL, grade.OK),
    "cheat_sys_modules": (ALL, grade.OK),
    "cheat_import_hook": (ALL, grade.OK),
    "cheat_patch_numpy": (ALL, grade.OK),
    "cheat_other_copy": (ALL, grade.OK),
    "cheat_dir_fd": (ALL, grade.OK),
    "cheat_write_tests": (ALL, grade.OK),
    "cheat_ast_transformer": (ALL, grade.OK),
    # the rest is correct; its finite differences are slow, so the training cells later
    # in the notebook run past 10x the solution's time and are interrupted
    "cheat_checks_helper": ({"test_loss_and_grads"}, grade.TIMEOUT),
    "cheat_torch_sneaky": (  # correct but rnn_step_forward in torch, through a built name
        {"test_rnn_step_forward", "test_rnn_forward", "test_loss_and_grads"},
        grade.OK,
    ),
    "cheat_torch": (ALL, grade.OK),
    "not_json": (ALL, grade.UNREADABLE),
    "missing": (ALL, grade.MISSING),
}


# The gradebook's review column: what an instructor may want to look at.
REVIEW = {
    "kernel_crash": "os._exit",
    "hides_errors": "excepthook; get_ipython; set_custom_exc; showtraceback",
    "hostile": "socket; solutions",
    "cheat_sys_modules": "sys.modules",
    "cheat_import_hook": "sys.modules",
    "cheat_other_copy": "solutions",
    "cheat_dir_fd": "solutions",
    "cheat_write_tests": "solutions",
    "cheat_ast_transformer": "ast_transformers; get_ipython",
}


def lab1_class(folder: Path, elsewhere: Path, students=None) -> dict[str, Path]:
    """Write one submission per kind into ``folder`` (only ``students`` when given);
    returns student -> file.

    ``elsewhere``: a folder outside the workbook that gets a copy of the solution (as
    another checkout of the project on the same machine would)."""
    sol = nbformat.read(SOLUTION, as_version=4)
    starter = nbformat.read(STARTER, as_version=4)
    correct = filled(starter, sol)
    subs = {}
    folder.mkdir(parents=True, exist_ok=True)

    def add(student, nb=None, raw=None):
        if students is None or student in students:
            subs[student] = write(folder, student, LAB1, nb, raw)

    add("correct", correct)
    add("starter", starter)
    add("partial", filled(starter, sol, {"rnn_step_forward", "rnn_forward", "clip_grad_norm"}))
    nb = copy.deepcopy(correct)
    cell = cell_of(nb, "rnn_step_backward")
    cell.source = cell.source.replace(
        "def rnn_step_backward(dh_t, cache):", "def rnn_step_backward(dh_t, cache)"
    )
    add("syntax_error", nb)
    add("endless_loop", prepend(correct, "clip_grad_norm", "while True:\n    pass"))
    add("memory_hog", prepend(correct, "rnn_forward", "_big = np.ones(2**31)  # 16 GiB"))
    add("kernel_crash", prepend(correct, "loss_and_grads", "import os\n\nos._exit(1)"))
    nb = copy.deepcopy(correct)
    nb.cells = [c for c in nb.cells if not nbgrader_meta(c).get("grade")]
    add("tests_deleted", nb)
    nb = copy.deepcopy(correct)
    cell_of(
        nb, "clip_grad_norm"
    ).source = "def clip_grad_norm(grads, max_norm):\n    return dict(grads), 0.0"
    cell_of(nb, "test_clip_grad_norm").source = 'print("[PASS] clip_grad_norm")'
    renamed = cell_of(nb, "test_rnn_forward")
    renamed.metadata["nbgrader"]["grade_id"] = "my_test"
    renamed.source = "pass"
    nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") != "test_loss_and_grads"]
    add("tests_edited", nb)
    nb = copy.deepcopy(starter)
    nb.cells.insert(3, v4.new_code_cell(HIDE_ERRORS))
    add("hides_errors", nb)
    nb = prepend(correct, "clip_grad_norm", READ_SOLUTION)
    add("hostile", prepend(nb, "temporal_softmax_loss", CONNECT))
    nb = copy.deepcopy(correct)
    for c in nb.cells:
        c.metadata.pop("nbgrader", None)
    add("no_metadata", nb)
    add("empty_file", raw=b"")
    add("not_json", raw=b"this is not a notebook {")
    if students is None or "missing" in students:
        (folder / "missing").mkdir()
        (folder / "missing" / "notes.txt").write_text("I forgot to upload the lab\n")

    def after_setup(nb, code):
        nb = copy.deepcopy(nb)
        nb.cells.insert(3, v4.new_code_cell(code))
        return nb

    def before_setup(nb, code):
        nb = copy.deepcopy(nb)
        nb.cells.insert(0, v4.new_code_cell(code))
        return nb

    add("cheat_rebind_below", after_setup(starter, REBIND))
    add("cheat_rebind_above", before_setup(starter, REBIND + "\n" + PATCH_CHECKS))
    add("cheat_patch_checks", after_setup(starter, PATCH_CHECKS))
    add("cheat_sys_modules", before_setup(starter, FAKE_MODULES))
    add("cheat_import_hook", before_setup(starter, IMPORT_HOOK))
    add("cheat_patch_numpy", after_setup(starter, PATCH_NUMPY))
    copy_path = elsewhere / "solutions" / LAB1
    copy_path.parent.mkdir(parents=True, exist_ok=True)
    copy_path.write_bytes(SOLUTION.read_bytes())
    add("cheat_other_copy", after_setup(starter, OTHER_COPY.format(path=str(copy_path))))
    add("cheat_dir_fd", after_setup(starter, DIR_FD))
    add("cheat_write_tests", after_setup(starter, WRITE_TESTS))
    add("cheat_ast_transformer", before_setup(starter, AST_TRANSFORMER))
    nb = copy.deepcopy(correct)
    cell_of(nb, "loss_and_grads").source = CHECKS_HELPER
    add("cheat_checks_helper", nb)
    nb = copy.deepcopy(correct)
    cell_of(nb, "rnn_step_forward").source = TORCH_STEP
    add("cheat_torch_sneaky", nb)
    nb = copy.deepcopy(starter)
    cell_of(nb, "rnn_step_forward").source = TORCH_STEP_FORWARD
    cell_of(nb, "clip_grad_norm").source = TORCH_CLIP
    add("cheat_torch", nb)
    return subs


def _tree_state() -> dict[str, str]:
    """Every file where a cheat would write (the tests, the solutions, the checks and the
    grader) with its content hash."""
    return {
        str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in (
            "tests/instructor",
            "tests/labs",
            "solutions",
            "utils/checks",
            "utils/instructor",
        )
        for p in sorted((ROOT / folder).rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


# The class is graded in two halves, one per test class: pytest-xdist's ``loadscope``
# gives each class to its own worker, so the halves grade side by side (grading waits
# on kernels and sandboxes as much as on the CPU). Each half has one submission that
# runs into its time limit.
CHEATS = {s for s in CLASS if s.startswith("cheat_")} | {"hostile", "hides_errors"}
FEEDBACK_HAS = {  # student -> what their feedback file must say
    "correct": ["**Score: 11 / 11**"],
    "starter": ["| `test_rnn_step_forward` | 0 / 1 | failed |", "NotImplementedError"],
    "syntax_error": ["SyntaxError"],
    "endless_loop": ["Run status: **timeout**"],
    "memory_hog": ["MemoryError", "Run status: **memory**"],
    "kernel_crash": ["not run: the kernel died"],
    "hostile": ["sandbox does not allow", "solutions/lab01", "blocks network access"],
    # named in the source: the rule in one sentence
    "cheat_torch": [
        "rnn_step_forward uses torch (",
        "which this lab does not allow",
        "clip_grad_norm uses torch (nn)",
        "NumPy only",
    ],
    # built from strings: not in the source, and not there when the function runs
    "cheat_torch_sneaky": [
        "No module named 'torch': the functions this lab grades may not use torch"
    ],
    "cheat_checks_helper": ["loss_and_grads calls the checks' own code (import utils.checks)"],
    "no_metadata": ["lost its grader metadata"],
    "not_json": ["not valid JSON"],
    "empty_file": ["empty"],
    "missing": ["no file was submitted"],
}
FEEDBACK_LACKS = {
    "correct": ["failed"],
    # hidden tests stay hidden: a failing cell's frame keeps only the failing line
    "starter": ["BEGIN HIDDEN TESTS", "seed=101"],
}


@pytest.fixture(scope="class")
def graded(request, tmp_path_factory):
    """The half of the class named by the test class's ``STUDENTS``, graded once."""
    if ISOLATION != "bubblewrap":
        pytest.skip("the class of cheats needs the OS sandbox (bubblewrap)")
    if not SOLUTION.exists() or not STARTER.exists():
        pytest.skip("Lab 1 (solutions/ and labs/) is not there")
    root = tmp_path_factory.mktemp("class")
    subs = lab1_class(root / "submitted", root / "elsewhere", request.cls.STUDENTS)
    workbook_before = _tree_state()
    before = {s: hashlib.sha256(p.read_bytes()).hexdigest() for s, p in subs.items()}
    out = root / "grades"
    grade.grade(root / "submitted", out, limits=TEST_LIMITS, jobs=2, log=lambda *_: None)
    return {
        "subs": subs, "before": before, "out": out,
        "workbook_before": workbook_before, "workbook_after": _tree_state(),
    }  # fmt: skip


class _Lab1Class:
    """Tests of one half of the class of Lab 1 submissions, graded once per half."""

    STUDENTS: frozenset[str] = frozenset()

    def test_lab1_gradebook_rows(self, graded):
        lab = grade.load_lab(SOLUTION)
        rows = read_gradebook(graded["out"] / "gradebook.csv")
        for student in sorted(self.STUDENTS):
            failed, status = CLASS[student]
            review = REVIEW.get(student, "")
            assert rows[student] == expected_row(lab, student, failed, status, review), (
                student,
                (graded["out"] / "feedback" / student / "lab01_rnn_from_scratch.md").read_text(),
            )

    def test_lab1_gradebook_layout_and_untouched_submissions(self, graded):
        lab = grade.load_lab(SOLUTION)
        with (graded["out"] / "gradebook.csv").open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            students = [row[0] for row in reader]
        assert header == [
            "student", "lab", "total", "max_total", "status", "review", "isolation", *lab.grade_ids
        ]  # fmt: skip
        assert students == sorted(self.STUDENTS)
        for student, path in graded["subs"].items():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == graded["before"][student]
        assert not (graded["out"].parent / "submitted" / "correct" / "rnn_scratch.py").exists()
        # no submission changed a file of the workbook (tests, solutions, the checks)
        before, after = graded["workbook_before"], graded["workbook_after"]
        assert {k: after.get(k) for k in before} == before
        assert not [k for k in after if "pwned" in k]
        assert not (ROOT / "tests" / "instructor" / "test_pwned.py").exists()

    def test_lab1_feedback_says_why(self, graded):
        for student in sorted(self.STUDENTS):
            text = (graded["out"] / "feedback" / student / "lab01_rnn_from_scratch.md").read_text()
            for phrase in FEEDBACK_HAS.get(student, []):
                assert phrase in text, (student, phrase, text)
            for phrase in FEEDBACK_LACKS.get(student, []):
                assert phrase not in text, (student, phrase, text)


@pytest.mark.slow
class TestLab1ClassHonest(_Lab1Class):
    """Honest work: complete, partial or broken, and broken files."""

    STUDENTS = frozenset(CLASS) - CHEATS


@pytest.mark.slow
class TestLab1ClassCheats(_Lab1Class):
    """Submissions that try to pass without the work, hide their errors or attack."""

    STUDENTS = frozenset(CHEATS)


def test_every_student_of_the_class_is_graded_and_has_its_feedback_checked():
    assert TestLab1ClassHonest.STUDENTS | TestLab1ClassCheats.STUDENTS == set(CLASS)
    assert set(FEEDBACK_HAS) | set(FEEDBACK_LACKS) <= set(CLASS)
    assert set(REVIEW) <= set(CLASS)


# ------------------------------------------------------------------- tiny lab


def tiny_solution() -> nbformat.NotebookNode:
    def meta(**kw):
        base = {"schema_version": 3, "grade": False, "locked": False, "solution": False}
        return {"nbgrader": {**base, **kw}}

    cells = [
        v4.new_markdown_cell("# Tiny lab"),
        v4.new_code_cell("import math"),
        v4.new_code_cell(
            "def square(x):\n    # BEGIN SOLUTION\n    return x * x\n    # END SOLUTION",
            metadata=meta(solution=True, grade_id="square"),
        ),
        v4.new_code_cell(
            'assert square(3) == 9, "square(3) should be 9"\n'
            "# BEGIN HIDDEN TESTS\nassert square(-2) == 4\n# END HIDDEN TESTS",
            metadata=meta(grade=True, locked=True, points=2, grade_id="test_square"),
        ),
        v4.new_code_cell(
            "def hypot(a, b):\n    # BEGIN SOLUTION\n    return math.sqrt(a * a + b * b)\n"
            "    # END SOLUTION",
            metadata=meta(solution=True, grade_id="hypot"),
        ),
        v4.new_code_cell(
            "assert hypot(3, 4) == 5\n# BEGIN HIDDEN TESTS\nassert hypot(0, 0) == 0\n"
            "# END HIDDEN TESTS",
            metadata=meta(grade=True, locked=True, points=3.5, grade_id="test_hypot"),
        ),
    ]
    return v4.new_notebook(cells=cells)


@pytest.fixture
def tiny(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    path = solutions / "lab99_tiny.ipynb"
    nbformat.write(tiny_solution(), path)
    starter = labgen.strip_solutions(nbformat.read(path, as_version=4), path)
    return {"dir": solutions, "path": path, "lab": grade.load_lab(path), "starter": starter}


def test_read_submission_rejects_what_is_not_a_notebook():
    assert grade.read_submission(b"")[0] is None
    assert "empty" in grade.read_submission(b"  \n")[1]
    assert "not valid JSON" in grade.read_submission(b"{oops")[1]
    assert "not UTF-8" in grade.read_submission(b"\xff\xfe\x00garbage")[1]
    assert "no cells" in grade.read_submission(b'{"a": 1}')[1]
    assert "no cells" in grade.read_submission(b"[1, 2]")[1]
    nb, why = grade.read_submission(nbformat.writes(tiny_solution()).encode())
    assert why == "" and len(nb.cells) == 6


def test_graded_notebook_uses_the_solutions_tests(tiny):
    lab, starter = tiny["lab"], tiny["starter"]
    student = copy.deepcopy(starter)
    student.cells[2].source = "def square(x):\n    return x ** 2"
    student.cells[3].source = "pass  # I deleted the assert"
    student.cells[5].metadata["nbgrader"]["grade_id"] = "renamed"
    del student.cells[4]  # hypot exercise removed entirely
    g = grade.build_graded(lab, student)
    sources = [c.source for c in g.nb.cells]
    assert sources[2] == "def square(x):\n    return x ** 2"
    assert sources[3].startswith('assert square(3) == 9, "square(3) should be 9"')
    assert "assert square(-2) == 4" in sources[3]
    assert "raise NotImplementedError()" in sources[4]  # not attempted
    assert "assert hypot(0, 0) == 0" in sources[5]
    assert {i: gc.grade_id for i, gc in g.grade_cells.items()} == {
        3: "test_square",
        5: "test_hypot",
    }
    assert any("`hypot`: no answer cell found" in n for n in g.notes)


def test_graded_notebook_finds_cells_without_metadata_and_keeps_added_cells(tiny):
    lab, starter = tiny["lab"], tiny["starter"]
    student = copy.deepcopy(starter)
    for c in student.cells:
        c.metadata.pop("nbgrader", None)
    student.cells[2].source = "def square(x):\n    return mul(x, x)"
    student.cells.insert(2, v4.new_code_cell("def mul(a, b):\n    return a * b"))
    g = grade.build_graded(lab, student)
    sources = [c.source for c in g.nb.cells]
    assert sources.index("def mul(a, b):\n    return a * b") < sources.index(
        "def square(x):\n    return mul(x, x)"
    )
    assert any("lost its grader metadata" in n for n in g.notes)
    assert any("you added also ran" in n for n in g.notes)


def _result(cells, tests):
    return {"cells": cells, "tests": tests, "timed_out": [], "stopped": None, "seconds": 1.0}


def test_score_takes_the_verdicts_of_the_tests_and_the_rules(tiny):
    """Points come from the tests run by the grader (verdicts), never from what the
    kernel printed; a rule broken in the exercise's code costs the test its points."""
    lab = tiny["lab"]
    g = grade.build_graded(lab, tiny["starter"])
    ok = {"status": "ok"}

    def cell(text="", reply=ok, error=None):
        outputs = [{"output_type": "stream", "name": "stdout", "text": text}]
        if error:
            outputs.append({"output_type": "error", **error})
        return {"outputs": outputs, "reply": reply}

    cells = [None, cell(), cell(), None, cell(), None]
    passed = {"3": {"passed": True}, "5": {"passed": True}}
    status, fb = grade.score(lab, g, _result(cells, passed), TEST_LIMITS)
    assert status == grade.OK and [f["passed"] for f in fb] == [True, True]
    # a kernel cell printing "[PASS]" changes nothing; a failing verdict fails
    cells[2] = cell("[PASS] everything\n")
    failing = {**passed, "3": {"passed": False, "ename": "CheckError", "evalue": "[FAIL] nope"}}
    status, fb = grade.score(lab, g, _result(cells, failing), TEST_LIMITS)
    assert [f["passed"] for f in fb] == [False, True]
    assert fb[0]["reason"] == "CheckError: [FAIL] nope"
    # a test that never got a verdict did not pass
    status, fb = grade.score(lab, g, _result(cells, {"5": {"passed": True}}), TEST_LIMITS)
    assert [f["passed"] for f in fb] == [False, True] and fb[0]["reason"] == "not run."
    # the rule found in the source
    status, fb = grade.score(
        lab, g, _result(cells, passed), TEST_LIMITS, {"square": "square uses torch (torch)."}
    )
    assert [f["passed"] for f in fb] == [False, True]
    assert fb[0]["reason"] == "square uses torch (torch)."
    stdin = {"ename": "StdinNotImplementedError", "evalue": "raw_input was called", "traceback": []}
    cells[2] = cell(reply={"status": "error", **stdin}, error=stdin)
    status, fb = grade.score(lab, g, _result(cells, failing), TEST_LIMITS)
    assert fb[0]["own"] == [
        "your cell `square` raised StdinNotImplementedError: raw_input was called"
        + grade.STDIN_HINT
    ]
    stop = {"ename": "KeyboardInterrupt", "evalue": "", "traceback": []}
    cells[2] = cell(reply={"status": "error", **stop}, error=stop)
    timed = {**_result(cells, failing), "timed_out": [2]}
    status, fb = grade.score(lab, g, timed, TEST_LIMITS, cell_limits={2: 12.0})
    assert status == grade.TIMEOUT
    assert fb[0]["own"] == ["your cell `square` timed out (it was stopped after 12 s)"]
    late = {**passed, "3": {"passed": False, "timed_out": True}}
    _, fb = grade.score(lab, g, _result(cells, late), TEST_LIMITS, cell_limits={3: 7.0})
    assert fb[0]["reason"] == "timed out: your function was stopped after the limit of 7 s."
    mem = {"ename": "_ArrayMemoryError", "evalue": "Unable to allocate", "traceback": []}
    cells[2] = cell(reply={"status": "error"}, error=mem)
    assert grade.score(lab, g, _result(cells, passed), TEST_LIMITS)[0] == grade.MEMORY


def test_two_gradings_started_together_grade_the_solution_once(tiny, tmp_path, monkeypatch):
    import threading
    import time

    monkeypatch.setattr(grade, "CACHE", tmp_path / "cache")
    runs = []

    def slow_calibration(lab_list, limits, isolate, path, **_):
        runs.append(path)
        time.sleep(0.5)  # the second caller arrives while the first grades the solution
        path.write_text(json.dumps({"lab99_tiny.ipynb": {"2": 0.25}}), encoding="utf-8")
        return {"lab99_tiny.ipynb": {2: 0.25}}

    monkeypatch.setattr(grade, "_calibrate", slow_calibration)
    got = []

    def calibrate():
        got.append(
            grade.calibrate([tiny["lab"]], TEST_LIMITS, False, jobs=1, scheduler=None, log=print)
        )

    threads = [threading.Thread(target=calibrate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 1 and got == [{"lab99_tiny.ipynb": {2: 0.25}}] * 2


def test_rules_read_from_the_source():
    from utils.instructor import rules

    setup = "%matplotlib inline\nimport numpy as np\nimport torch\nfrom torch import nn\nfrom utils.checks import numerical_gradient, rel_error"
    forbid = ["torch", "utils.checks"]
    assert rules.violations("f", "def f(x):\n    return np.tanh(x)", setup, forbid) is None
    assert "f uses torch (nn)" in rules.violations(
        "f", "def f(x):\n    return nn.Tanh()(x)", setup, forbid
    )
    inside = "def f(x):\n    import torch.nn\n    return x"
    assert "f uses torch (import torch.nn)" in rules.violations("f", inside, setup, forbid)
    # code outside the function, and a local that happens to be called nn, are not the rule's
    after = "def f(x):\n    nn = 2 * x\n    return nn\n\n\nprint(torch.tanh(torch.ones(1)))"
    assert rules.violations("f", after, setup, forbid) is None
    assert "checks' own code (numerical_gradient)" in rules.violations(
        "f", "def f(x):\n    return numerical_gradient(g, x)", setup, forbid
    )
    assert (
        rules.violations("f", "def f(:", setup, forbid) is None
    )  # a syntax error: the run says it


def test_watchdog_kills_on_memory_and_on_an_uninterruptible_cell():
    hog = subprocess.Popen(
        [sys.executable, "-c", "import time; a = bytearray(300 * 2**20); time.sleep(60)"]
    )
    dog = _Watchdog(hog.pid, Limits(memory_mb=100, cell_timeout=60, total_timeout=60))
    dog.start()
    assert hog.wait(timeout=30) != 0
    assert dog.killed == "memory"
    dog.stop.set()
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stubborn.stdout.readline().strip() == "ready"  # SIGINT is ignored from here on
    dog = _Watchdog(
        stubborn.pid, Limits(memory_mb=1000, cell_timeout=0.5, total_timeout=60), grace=0.5
    )
    dog.start()
    dog.begin(7)
    assert stubborn.wait(timeout=30) != 0
    assert dog.timed_out == {7} and dog.killed == "timeout"
    dog.stop.set()


def test_sandbox_policy(tmp_path):
    home = tmp_path / "work"
    home.mkdir()
    policy = Policy(
        str(ROOT),
        allow_read=[str(ROOT / "utils")],
        allow_write=[str(ROOT / "data")],
        deny=[str(tmp_path)],
        home=str(home),
    )
    policy.audit("open", (str(ROOT / "utils" / "checks" / "core.py"), "r", 0))
    policy.audit("open", (str(home / "rnn_scratch.py"), "w", 0))
    policy.audit("open", ("/etc/hostname", "r", 0))
    policy.audit("socket.connect", (None, ("127.0.0.1", 8888)))
    denied = [
        ("open", (str(ROOT / "solutions" / LAB1), "r", 0)),
        ("open", (str(ROOT / ".git" / "HEAD"), "rb", 0)),
        ("open", (str(ROOT / "utils" / "checks" / "core.py"), "w", 0)),
        ("open", (str(ROOT / "utils" / "checks" / "core.py"), None, os.O_WRONLY)),
        ("open", (str(tmp_path / "other_student" / "x.ipynb"), "r", 0)),
        ("os.listdir", (str(ROOT / "solutions"),)),
        ("os.symlink", (str(ROOT / "solutions"), str(home / "s"))),
        ("socket.connect", (None, ("1.1.1.1", 53))),
        ("socket.getaddrinfo", ("example.org", 80, 0, 0, 0)),
        ("subprocess.Popen", ("cat", ["cat"], None, None)),
        ("os.system", (b"cat /etc/passwd",)),
        ("ctypes.dlopen", (None,)),
        ("open", ("/proc/1/mem", "rb", 0)),
    ]
    for event, args in denied:
        with pytest.raises(PermissionError):
            policy.audit(event, args)


def test_sandbox_kernel_process_applies_the_limits(tmp_path):
    """The real hook and rlimit, installed in a child interpreter."""
    code = (
        "import json, os, sys\n"
        "from utils.instructor.sandbox import policy\n"
        "policy.set_limits(1024)\n"
        f"policy.install(policy.Policy({str(ROOT)!r}, [], [], [], home=os.getcwd()))\n"
        "out = {}\n"
        "for name, f in [('solution', lambda: open(%r).read()),\n"
        "                ('net', lambda: __import__('socket').create_connection(('1.1.1.1', 53), 2)),\n"
        "                ('proc', lambda: __import__('subprocess').run(['true'])),\n"
        "                ('memory', lambda: bytearray(4 * 2**30))]:\n"
        "    try:\n"
        "        f(); out[name] = 'allowed'\n"
        "    except BaseException as e:\n"
        "        out[name] = type(e).__name__\n"
        "open('own.txt', 'w').write('ok')\n"
        "print(json.dumps(out))\n"
    ) % str(ROOT / "solutions" / LAB1)
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == (
        '{"solution": "PermissionError", "net": "PermissionError", '
        '"proc": "PermissionError", "memory": "MemoryError"}'
    )


def test_tiny_class_end_to_end_through_the_cli(tiny, tmp_path):
    lab, starter = tiny["lab"], tiny["starter"]
    sol = nbformat.read(tiny["path"], as_version=4)
    subs = tmp_path / "submitted"
    write(subs, "ada", "lab99_tiny.ipynb", filled(starter, sol))
    helper = filled(starter, sol, {"hypot"})
    cell_of(helper, "square").source = "def square(x):\n    return times(x, x)"
    helper.cells.insert(2, v4.new_code_cell("def times(a, b):\n    return a * b"))
    write(subs, "bob", "lab99_tiny.ipynb", helper)
    loop = filled(starter, sol, {"hypot"})
    cell_of(loop, "square").source = "def square(x):\n    while True:\n        pass"
    write(subs, "cyd", "lab99_tiny.ipynb", loop)
    write(subs, "cyd", "notes.md", raw=b"not a lab")
    out = tmp_path / "grades"
    cmd = [
        sys.executable, "-m", "utils.instructor", "grade", str(subs), "--out", str(out),
        "--solutions", str(tiny["dir"]), "--cell-timeout", "4", "--memory-mb", "1024",
        "--jobs", "2", "--fast",
    ]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ignored cyd/notes.md" in run.stdout
    rows = read_gradebook(out / "gradebook.csv")
    assert rows["ada"] == expected_row(lab, "ada", set(), grade.OK)
    assert rows["bob"] == expected_row(lab, "bob", set(), grade.OK)
    assert rows["cyd"] == expected_row(lab, "cyd", {"test_square"}, grade.TIMEOUT)
    assert rows["cyd"]["total"] == "3.5"
    fb = (out / "feedback" / "cyd" / "lab99_tiny.md").read_text()
    assert "timed out" in fb and "| `test_hypot` | 3.5 / 3.5 | passed |" in fb
    summary = (out / "summary.md").read_text()
    assert "3 student(s); run status: 2 ok, 1 timeout." in summary
    assert "Score out of 5.5: median 5.5" in summary and "full marks 2." in summary
    assert "quartiles 4.5 and 5.5" in summary  # never outside the scores' range
    assert "| `test_square` | 2 | 2/3 (67%) |" in summary
    assert "| `test_hypot` | 3.5 | 3/3 (100%) |" in summary
    assert "- cyd: timeout" in summary and "![score distribution](scores_lab99_tiny.png)" in summary
    assert (out / "scores_lab99_tiny.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_exit_codes(tmp_path, tiny):
    run = subprocess.run(
        [sys.executable, "-m", "utils.instructor", "grade", str(tmp_path / "nowhere")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2 and "is not a folder" in run.stderr
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "ann" / "homework.ipynb").write_text("{}")
    with pytest.raises(grade.GradingError, match="named like a lab"):
        grade.grade(tmp_path / "subs", tmp_path / "out", solutions_dir=tiny["dir"])
    with pytest.raises(grade.GradingError, match="unknown lab"):
        grade.grade(tmp_path / "subs", tmp_path / "out", solutions_dir=tiny["dir"], labs=["lab42"])


def test_total_timeout_stops_the_run_and_keeps_earlier_points(tiny, tmp_path):
    starter = tiny["starter"]
    sol = nbformat.read(tiny["path"], as_version=4)
    slow = filled(starter, sol)
    slow = prepend(slow, "square", "import time\n\ntime.sleep(1)")
    slow = prepend(slow, "hypot", "time.sleep(30)")
    write(tmp_path / "subs", "eve", "lab99_tiny.ipynb", slow)
    limits = Limits(cell_timeout=60, total_timeout=8, memory_mb=1024, fast=True)
    [r] = grade.grade(tmp_path / "subs", tmp_path / "out", solutions_dir=tiny["dir"],
                      limits=limits, log=lambda *_: None)  # fmt: skip
    assert (r.status, r.scores) == (grade.TIMEOUT, {"test_square": 2.0, "test_hypot": 0.0})
    assert "ran past the total limit of 8 s" in r.feedback[1]["reason"]


def test_a_given_cell_past_its_limit_is_named_and_the_run_goes_on(tiny, tmp_path):
    """A timeout outside the exercises says which cell; the cells after it still run, and
    errors there are kept for the instructor (the course's tests require none in a
    solution's run)."""
    nb = filled(tiny["starter"], nbformat.read(tiny["path"], as_version=4))
    loop = "import time\n\nwhile get_ipython():  # in the kernel only, not where the tests run\n"
    nb.cells.insert(2, v4.new_code_cell(loop + "    time.sleep(0.05)"))
    nb.cells.insert(3, v4.new_code_cell("1 / 0"))
    write(tmp_path / "subs", "dan", "lab99_tiny.ipynb", nb)
    limits = Limits(cell_timeout=3, total_timeout=60, memory_mb=1024, fast=True)
    [r] = grade.grade(tmp_path / "subs", tmp_path / "out", solutions_dir=tiny["dir"],
                      limits=limits, log=lambda *_: None)  # fmt: skip
    assert (r.status, r.total) == (grade.TIMEOUT, r.max_total)
    where = "Cell 2 (`import time`) ran past its time limit of 3 s and was interrupted after"
    assert r.notes[0].startswith(where), r.notes
    assert r.cell_errors == {3: "ZeroDivisionError: division by zero"}
    assert where in (tmp_path / "out" / "feedback" / "dan" / "lab99_tiny.md").read_text()
    assert f"- dan: timeout ({where}" in (tmp_path / "out" / "summary.md").read_text()


WIDGET_CELL = """\
import ipywidgets as widgets

out = widgets.Output()
display(widgets.Text(value="hello"), out)
for k in range(3):
    out.clear_output(wait=True)
    with out:
        print(f"inside the widget {k}")"""


def test_the_grader_mimics_no_widget_frontend(tmp_path, monkeypatch):
    """What ``with out:`` prints lands in the cell's outputs: the grader's client sends the
    kernel no comm messages (nbclient's Output-widget mimicry sometimes lost a cell's
    reply that way, and the cell ran into its time limit)."""
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nb = tiny_solution()
    nb.cells.append(v4.new_code_cell(WIDGET_CELL))
    path = solutions / "lab99_tiny.ipynb"
    nbformat.write(nb, path)
    starter = labgen.strip_solutions(nbformat.read(path, as_version=4), path)
    write(tmp_path / "subs", "ada", "lab99_tiny.ipynb", filled(starter, nb))
    runs = []

    def keep(graded, result, *args):
        runs.append(result)
        return given_cells(graded, result, *args)

    monkeypatch.setattr("utils.instructor.grade.given_cells", keep)
    limits = Limits(cell_timeout=60, total_timeout=120, memory_mb=1024, fast=True)
    [r] = grade.grade(tmp_path / "subs", tmp_path / "out", solutions_dir=solutions,
                      limits=limits, calibrated=False, log=lambda *_: None)  # fmt: skip
    assert (r.status, r.total, r.cell_errors) == (grade.OK, r.max_total, {})
    printed = "".join(o.get("text", "") for o in runs[0]["cells"][-1]["outputs"])
    assert "inside the widget 2" in printed


def test_grades_folder_inside_submissions_is_no_student_and_stray_files_are_named(tiny, tmp_path):
    subs = tmp_path / "subs"
    write(subs, "ann", "lab99_tiny.ipynb", tiny["starter"])
    write(subs, "grades", "gradebook.csv", raw=b"student,lab\n")  # a previous run's output
    write(subs, ".", "lab99_tiny.ipynb", tiny["starter"])  # not in a student folder
    write(subs, "ann", "lab99_tiny (1).ipynb", tiny["starter"])  # a second download
    students, labs, ignored = grade.discover(subs, tiny["dir"], None, subs / "grades")
    assert students == ["ann"] and [p.name for p in labs] == ["lab99_tiny.ipynb"]
    assert ignored == [
        "ann/lab99_tiny (1).ipynb (not a lab file name; rename it to lab99_tiny.ipynb?)",
        "lab99_tiny.ipynb (not in a student folder: expected <dir>/<student>/<lab>.ipynb)",
    ]
    with pytest.raises(grade.GradingError, match="the submissions folder itself"):
        grade.discover(subs, tiny["dir"], None, subs)
    with pytest.raises(grade.GradingError, match="inside the folder of student 'ann'"):
        grade.discover(subs, tiny["dir"], None, subs / "ann" / "grades")


def test_another_notebook_renamed_is_not_run_and_a_second_run_keeps_the_first_gradebook(
    tiny, tmp_path
):
    other = v4.new_notebook(
        cells=[v4.new_markdown_cell("# Chapter 1"), v4.new_code_cell("x = 1\nprint(x)")]
    )
    assert grade.build_graded(tiny["lab"], other).foreign
    assert not grade.build_graded(tiny["lab"], tiny["starter"]).foreign
    subs, out = tmp_path / "subs", tmp_path / "out"
    write(subs, "zoe", "lab99_tiny.ipynb", other)
    (out).mkdir()
    (out / "gradebook.csv").write_text("student,lab\nold,row\n")
    logs = []
    [r] = grade.grade(subs, out, solutions_dir=tiny["dir"], limits=TEST_LIMITS, log=logs.append)
    assert (r.status, r.total, r.seconds) == (grade.OTHER, 0.0, 0.0)
    assert read_gradebook(out / "gradebook.csv")["zoe"]["status"] == "other notebook"
    assert (out / "gradebook.previous.csv").read_text() == "student,lab\nold,row\n"
    assert any("gradebook.previous.csv" in line for line in logs)
    assert "another notebook renamed" in (out / "feedback" / "zoe" / "lab99_tiny.md").read_text()


def test_output_cap_keeps_the_head_the_tail_and_every_error():
    cap = worker._OutputCap()
    outs = []

    def emit(out):
        outs.append(v4.new_output(**out))
        cap.add(outs, outs[-1], 3, None)

    for _ in range(50):
        emit({"output_type": "stream", "name": "stdout", "text": "y" * 10_000 + "\n"})
    emit({"output_type": "stream", "name": "stdout", "text": "TOKEN\n"})
    emit({"output_type": "error", "ename": "E", "evalue": "v" * 10**6, "traceback": ["t"] * 500})
    cell = v4.new_code_cell(outputs=outs)
    cap.finish(cell, 3)
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    assert len(text) < worker.MAX_CELL_OUTPUT + 2 * worker.OUTPUT_TAIL
    assert text.endswith("TOKEN\n") and "characters of output cut by the grader" in text
    [err] = [o for o in cell.outputs if o.output_type == "error"]
    assert len(err.evalue) < worker.MAX_ERROR_TEXT + 100 and len(err.traceback) == 200


def test_a_cell_printing_gigabytes_costs_neither_memory_nor_its_points(tiny, tmp_path):
    """IPython keeps all that a cell prints in memory; the sandbox kernel drops it past
    a limit, and the grader's token still gets through when a test prints a lot."""
    sol = nbformat.read(tiny["path"], as_version=4)
    nb = filled(tiny["starter"], sol)
    cell_of(nb, "square").source = (
        "for _ in range(1500):  # 1.5 GB in total\n    print('x' * 1_000_000)\n\n\n"
        "def square(x):\n    print('y' * 2_000_000)\n    return x * x"
    )
    write(tmp_path / "subs", "max", "lab99_tiny.ipynb", nb)
    limits = Limits(cell_timeout=60, total_timeout=120, memory_mb=1024, fast=True)
    [r] = grade.grade(tmp_path / "subs", tmp_path / "out", solutions_dir=tiny["dir"],
                      limits=limits, log=lambda *_: None)  # fmt: skip
    assert (r.status, r.scores) == (grade.OK, {"test_square": 2.0, "test_hypot": 3.5}), r.feedback


# --- a later lab imports a student's earlier export -----------------------------------


def chained_labs(folder):
    """lab01 exports ``double`` as toy_mod; lab02 grades a use of that export."""
    first = [
        solution_cell(
            "def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION", "double"
        ),
        v4.new_code_cell(
            'from utils.export import export_functions\nexport_functions("toy_mod", [double])'
        ),
        grade_cell("assert double(2) == 4", "test_double", points=1),
    ]
    second = [
        v4.new_code_cell("from utils.export import load_export"),
        solution_cell(
            "def quadruple(x):\n    # BEGIN SOLUTION\n    toy_mod = load_export('toy_mod')\n"
            "    return toy_mod.double(toy_mod.double(x))\n    # END SOLUTION",
            "quadruple",
        ),
        grade_cell("assert quadruple(3) == 12", "test_quadruple", points=2),
    ]
    write_notebook(folder / "lab01_first.ipynb", first)
    write_notebook(folder / "lab02_second.ipynb", second)
    return folder


def test_a_later_lab_uses_the_students_own_earlier_export(tmp_path):
    solutions = chained_labs(tmp_path / "solutions")
    subs = tmp_path / "subs"
    for lab in ("lab01_first", "lab02_second"):
        src = solutions / f"{lab}.ipynb"
        starter = labgen.strip_solutions(nbformat.read(src, as_version=4), src)
        for cell, sol in zip(starter.cells, nbformat.read(src, as_version=4).cells):
            if nbgrader_meta(cell).get("solution"):
                cell.source = answer(sol.source)
        for student in ("ada", "bob") if lab == "lab02_second" else ("ada",):
            (subs / student).mkdir(parents=True, exist_ok=True)
            nbformat.write(starter, subs / student / f"{lab}.ipynb")
    results = grade.grade(
        subs, tmp_path / "out", solutions_dir=solutions, limits=TEST_LIMITS, jobs=2,
        log=lambda *_: None,
    )  # fmt: skip
    got = {(r.student, r.lab): (r.total, r.status) for r in results}
    assert got[("ada", "lab01_first.ipynb")] == (1, "ok")
    assert got[("ada", "lab02_second.ipynb")] == (2, "ok")  # her own lab01 export
    # bob never did lab01: no export of his, and ada's is not visible to him
    assert got[("bob", "lab02_second.ipynb")] == (0, "ok")
    feedback = (tmp_path / "out" / "feedback" / "bob" / "lab02_second.md").read_text()
    assert "run the export cell" in feedback
    assert not (ROOT / "exports" / "toy_mod.py").exists()  # nothing written into the workbook


def test_written_answers_are_quoted_for_grading_by_hand(tmp_path):
    written = nbgrader_cell(
        "markdown", "Because the cell update is additive.", solution=True, grade=True,
        grade_id="why", points=2,
    )  # fmt: skip
    cells = [
        solution_cell("def one():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION", "one"),
        grade_cell("assert one() == 1", "test_one", points=1),
        written,
    ]
    solutions = tmp_path / "solutions"
    src = write_notebook(solutions / "lab01_w.ipynb", cells)
    starter = labgen.strip_solutions(nbformat.read(src, as_version=4), src)
    starter.cells[0].source = answer(nbformat.read(src, as_version=4).cells[0].source)
    starter.cells[2].source = "The gradient flows through c_t without a matrix."
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    nbformat.write(starter, tmp_path / "subs" / "ada" / "lab01_w.ipynb")
    (r,) = grade.grade(
        tmp_path / "subs", tmp_path / "out", solutions_dir=solutions, limits=TEST_LIMITS,
        log=lambda *_: None,
    )  # fmt: skip
    assert (r.total, r.max_total, r.status) == (1, 1, "ok")  # the written answer is not auto-scored
    row = next(csv.DictReader((tmp_path / "out" / "gradebook.csv").open()))
    assert row["test_one"] == "1" and row["why"] == ""  # a column to fill in by hand
    feedback = (tmp_path / "out" / "feedback" / "ada" / "lab01_w.md").read_text()
    assert "Written answer `why` (2 points, graded by hand" in feedback
    assert "> The gradient flows through c_t without a matrix." in feedback


# --- Lab 2 builds on Lab 1 ------------------------------------------------------------


def test_lab2_is_graded_with_the_students_own_lab1_export(tmp_path):
    """Full marks on Lab 2 need the student's Lab 1 export (Part 4 loads rnn_scratch)."""
    lab2 = "lab02_lstm_gru_from_scratch.ipynb"
    subs = tmp_path / "subs"
    for student, labs in {"ada": (LAB1, lab2), "bob": (lab2,)}.items():
        for name in labs:
            starter = nbformat.read(ROOT / "labs" / name, as_version=4)
            solution = nbformat.read(ROOT / "solutions" / name, as_version=4)
            write(subs, student, name, filled(starter, solution))
    # the limits are not what this test is about: one generous limit per cell, and no
    # grading of the two solutions first to set them
    limits = Limits(cell_timeout=300, total_timeout=900, memory_mb=2048, fast=True)
    results = grade.grade(
        subs, tmp_path / "out", limits=limits, jobs=2, log=lambda *_: None, calibrated=False
    )
    got = {(r.student, r.lab): r for r in results}
    ada, bob = got[("ada", lab2)], got[("bob", lab2)]
    assert got[("ada", LAB1)].total == got[("ada", LAB1)].max_total
    assert ada.status == "ok" and ada.total == ada.max_total == 10, ada.feedback
    assert any("Written answer `why_additive` (2 points" in n for n in ada.notes)
    # bob's exercises are right too: every test passes. Part 4, which needs his Lab 1
    # export, stops with the message to run Lab 1's export cell; it carries no points.
    assert bob.status == "ok" and bob.total == bob.max_total
    feedback = (
        tmp_path / "out" / "feedback" / "bob" / "lab02_lstm_gru_from_scratch.md"
    ).read_text()
    assert "Score: 10 / 10" in feedback


# --- past one machine -----------------------------------------------------------------


def test_the_same_units_run_on_a_dask_cluster(tiny, tmp_path):
    """``scheduler=`` sends each student's unit to a Dask cluster (here a LocalCluster of
    two worker processes): the same gradebook as the local pool."""
    distributed = pytest.importorskip("distributed")
    sol = nbformat.read(tiny["path"], as_version=4)
    subs = tmp_path / "subs"
    write(subs, "ada", "lab99_tiny.ipynb", filled(tiny["starter"], sol))
    write(subs, "bob", "lab99_tiny.ipynb", filled(tiny["starter"], sol, {"hypot"}))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        results = grade.grade(
            subs, tmp_path / "out", solutions_dir=tiny["dir"], limits=TEST_LIMITS,
            scheduler=cluster.scheduler_address, log=lambda *_: None,
        )  # fmt: skip
    got = {r.student: (r.total, r.status) for r in results}
    assert got == {"ada": (5.5, grade.OK), "bob": (3.5, grade.OK)}
    rows = read_gradebook(tmp_path / "out" / "gradebook.csv")
    assert rows["bob"] == expected_row(tiny["lab"], "bob", {"test_square"}, grade.OK)


def test_no_sandbox_means_no_grading_unless_the_instructor_accepts_it(tiny, tmp_path, monkeypatch):
    from utils.instructor.sandbox import isolation

    write(tmp_path / "subs", "ada", "lab99_tiny.ipynb", tiny["starter"])
    monkeypatch.setattr(isolation, "available", lambda: (False, "bubblewrap is not installed"))
    monkeypatch.delenv("WORKBOOK_ALLOW_UNISOLATED", raising=False)
    with pytest.raises(grade.GradingError, match="--allow-unisolated"):
        grade.grade(tmp_path / "subs", tmp_path / "out", solutions_dir=tiny["dir"])
    [r] = grade.grade(
        tmp_path / "subs", tmp_path / "out", solutions_dir=tiny["dir"], limits=TEST_LIMITS,
        allow_unisolated=True, log=lambda *_: None,
    )  # fmt: skip
    assert r.isolation == "none" and r.status == grade.OK
    assert read_gradebook(tmp_path / "out" / "gradebook.csv")["ada"]["isolation"] == "none"
    assert "The kernels were not isolated" in (tmp_path / "out" / "summary.md").read_text()


def test_make_check_runs_the_visible_tests_as_the_grader_does(tiny, tmp_path):
    from utils.instructor import check

    sol = nbformat.read(tiny["path"], as_version=4)
    nb = filled(labgen.strip_solutions(sol, tiny["path"]), sol, {"hypot"})
    path = tmp_path / "lab99_tiny.ipynb"
    nbformat.write(nb, path)
    lines = []
    code = check.check(path, TEST_LIMITS, out=lines.append)
    text = "\n".join(lines)
    assert code == 1, text
    assert "FAIL  test_square" in text and "NotImplementedError" in text
    assert "PASS  test_hypot" in text and "[metric] visible tests: 3.5 / 5.5 points" in text
    assert check.check(tmp_path / "nope.ipynb", TEST_LIMITS, out=lines.append) == 2
