"""The grader: every kind of submission, built from the Lab 1 solution and starter.

One module-scoped run grades a class of Lab 1 submissions (correct, starter,
partial, syntax error, endless loop, memory hog, kernel crash, deleted / edited
tests, hidden tracebacks, reads of solutions/ and the network, lost metadata,
empty and non-JSON files, a missing file) and the tests assert the exact
gradebook rows. Smaller tests use a tiny lab written into tmp_path.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests.factories import ROOT, grade_cell, nbgrader_cell, solution_cell, write_notebook
from utils.instructor import grade, labgen, sandbox
from utils.instructor.notebook import nbgrader_meta, without_markers
from utils.instructor.sandbox import Limits, Policy, _Watchdog

LAB1 = "lab01_rnn_from_scratch.ipynb"
SOLUTION = ROOT / "solutions" / LAB1
STARTER = ROOT / "labs" / LAB1
TEST_LIMITS = Limits(cell_timeout=25, total_timeout=300, memory_mb=2048, fast=True)
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
    "not_json": (ALL, grade.UNREADABLE),
    "missing": (ALL, grade.MISSING),
}


# The gradebook's review column: what an instructor may want to look at.
REVIEW = {
    "kernel_crash": "os._exit",
    "hides_errors": "excepthook; get_ipython; set_custom_exc; showtraceback",
    "hostile": "socket; solutions",
}


def lab1_class(folder: Path) -> dict[str, Path]:
    """Write one submission per kind into ``folder``; returns student -> file."""
    sol = nbformat.read(SOLUTION, as_version=4)
    starter = nbformat.read(STARTER, as_version=4)
    correct = filled(starter, sol)
    subs = {}

    def add(student, nb=None, raw=None):
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
    (folder / "missing").mkdir()
    (folder / "missing" / "notes.txt").write_text("I forgot to upload the lab\n")
    return subs


@pytest.fixture(scope="module")
def lab1_graded(tmp_path_factory):
    if not SOLUTION.exists() or not STARTER.exists():
        pytest.skip("Lab 1 (solutions/ and labs/) is not there")
    root = tmp_path_factory.mktemp("class")
    subs = lab1_class(root / "submitted")
    before = {s: hashlib.sha256(p.read_bytes()).hexdigest() for s, p in subs.items()}
    out = root / "grades"
    start = time.perf_counter()
    results = grade.grade(root / "submitted", out, limits=TEST_LIMITS, jobs=2, log=lambda *_: None)
    seconds = time.perf_counter() - start
    return {"subs": subs, "before": before, "out": out, "results": results, "seconds": seconds}


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(CLASS))
def test_lab1_gradebook_row(lab1_graded, student):
    lab = grade.load_lab(SOLUTION)
    rows = read_gradebook(lab1_graded["out"] / "gradebook.csv")
    failed, status = CLASS[student]
    review = REVIEW.get(student, "")
    assert rows[student] == expected_row(lab, student, failed, status, review), (
        lab1_graded["out"] / "feedback" / student / "lab01_rnn_from_scratch.md"
    ).read_text()


@pytest.mark.slow
def test_lab1_gradebook_layout_and_untouched_submissions(lab1_graded):
    lab = grade.load_lab(SOLUTION)
    with (lab1_graded["out"] / "gradebook.csv").open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        students = [row[0] for row in reader]
    assert header == ["student", "lab", "total", "max_total", "status", "review", *lab.grade_ids]
    assert students == sorted(CLASS)
    for student, path in lab1_graded["subs"].items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == lab1_graded["before"][student]
    assert not (lab1_graded["out"].parent / "submitted" / "correct" / "rnn_scratch.py").exists()


@pytest.mark.slow
def test_lab1_feedback_says_why(lab1_graded):
    fb = lab1_graded["out"] / "feedback"

    def text(student):
        return (fb / student / "lab01_rnn_from_scratch.md").read_text()

    assert "**Score: 11 / 11**" in text("correct") and "failed" not in text("correct")
    starter = text("starter")
    assert "| `test_rnn_step_forward` | 0 / 1 | failed |" in starter
    assert "NotImplementedError" in starter
    assert "SyntaxError" in text("syntax_error")
    assert "Run status: **timeout**" in text("endless_loop")
    assert "MemoryError" in text("memory_hog") and "Run status: **memory**" in text("memory_hog")
    assert "not run: the kernel died" in text("kernel_crash")
    hostile = text("hostile")
    assert "sandbox does not allow" in hostile and "solutions/lab01" in hostile
    assert "blocks network access" in hostile
    assert "lost its grader metadata" in text("no_metadata")
    assert "not valid JSON" in text("not_json") and "empty" in text("empty_file")
    assert "no file was submitted" in text("missing")
    # hidden tests stay hidden: a failing cell's frame keeps only the failing line
    assert "BEGIN HIDDEN TESTS" not in starter and "seed=101" not in starter
    for student in CLASS:
        assert grade.TOKEN_PREFIX not in text(student)


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
    g = grade.build_graded(lab, student, "TOKEN")
    sources = [c.source for c in g.nb.cells]
    assert sources[2] == "def square(x):\n    return x ** 2"
    assert sources[3].startswith('assert square(3) == 9, "square(3) should be 9"')
    assert "assert square(-2) == 4" in sources[3] and sources[3].endswith("print('TOKEN')")
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
    g = grade.build_graded(lab, student, "T")
    sources = [c.source for c in g.nb.cells]
    assert sources.index("def mul(a, b):\n    return a * b") < sources.index(
        "def square(x):\n    return mul(x, x)"
    )
    assert any("lost its grader metadata" in n for n in g.notes)
    assert any("you added also ran" in n for n in g.notes)


def _result(cells):
    return {"cells": cells, "timed_out": [], "stopped": None, "seconds": 1.0}


def test_score_needs_ok_reply_no_error_and_the_token(tiny):
    lab = tiny["lab"]
    g = grade.build_graded(lab, tiny["starter"], "TOK")
    ok = {"status": "ok"}

    def cell(text="", reply=ok, error=None):
        outputs = [{"output_type": "stream", "name": "stdout", "text": text}]
        if error:
            outputs.append({"output_type": "error", **error})
        return {"outputs": outputs, "reply": reply}

    cells = [None, cell(), cell(), cell("TOK\n"), cell(), cell("TOK\n")]
    status, fb = grade.score(lab, g, _result(cells), "TOK", TEST_LIMITS)
    assert status == grade.OK and [f["passed"] for f in fb] == [True, True]
    # a hidden error: reply says error, no error output, token printed by a trick
    err = {"status": "error", "ename": "AssertionError", "evalue": "nope", "traceback": []}
    cells[3] = cell("TOK\n", reply=err)
    cells[5] = cell("no token", reply=ok)
    status, fb = grade.score(lab, g, _result(cells), "TOK", TEST_LIMITS)
    assert [f["passed"] for f in fb] == [False, False]
    assert fb[0]["reason"] == "AssertionError: nope"
    assert "did not run to its end" in fb[1]["reason"]
    stdin = {"ename": "StdinNotImplementedError", "evalue": "raw_input was called", "traceback": []}
    cells[2] = cell(reply={"status": "error", **stdin}, error=stdin)
    status, fb = grade.score(lab, g, _result(cells), "TOK", TEST_LIMITS)
    assert fb[0]["own"] == [
        "your cell `square` raised StdinNotImplementedError: raw_input was called"
        + grade.STDIN_HINT
    ]
    stop = {"ename": "KeyboardInterrupt", "evalue": "", "traceback": []}
    cells[2] = cell(reply={"status": "error", **stop}, error=stop)
    status, fb = grade.score(lab, g, {**_result(cells), "timed_out": [2]}, "TOK", TEST_LIMITS)
    assert status == grade.TIMEOUT
    assert fb[0]["own"] == ["your cell `square` timed out (it was stopped after 25 s)"]
    mem = {"ename": "_ArrayMemoryError", "evalue": "Unable to allocate", "traceback": []}
    cells[2] = cell(reply={"status": "error"}, error=mem)
    assert grade.score(lab, g, _result(cells), "TOK", TEST_LIMITS)[0] == grade.MEMORY


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
        "from utils.instructor import sandbox\n"
        "sandbox.set_limits(1024)\n"
        f"sandbox.install(sandbox.Policy({str(ROOT)!r}, [], [], [], home=os.getcwd()))\n"
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
    assert grade.build_graded(tiny["lab"], other, "T").foreign
    assert not grade.build_graded(tiny["lab"], tiny["starter"], "T").foreign
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
    cap = sandbox._OutputCap()
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
    assert len(text) < sandbox.MAX_CELL_OUTPUT + 2 * sandbox.OUTPUT_TAIL
    assert text.endswith("TOKEN\n") and "characters of output cut by the grader" in text
    [err] = [o for o in cell.outputs if o.output_type == "error"]
    assert len(err.evalue) < sandbox.MAX_ERROR_TEXT + 100 and len(err.traceback) == 200


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
    results = grade.grade(subs, tmp_path / "out", limits=TEST_LIMITS, jobs=2, log=lambda *_: None)
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
