"""Grade a folder of submitted labs: ``make grade SUBMISSIONS=dir [OUT=grades]``.

Layout: ``<dir>/<student>/<lab file name>.ipynb``, with the file names of
``labs/`` (for example ``alice/lab01_rnn_from_scratch.ipynb``). Every lab of
``solutions/`` that at least one student submitted is graded for every student.

How a submission is graded
--------------------------
The graded notebook is built from the *solution* notebook, not from the
submission: every cell comes from the solution (setup, prose, the visible and
hidden tests) except the exercise cells, whose source is the student's. A
student's exercise cell is found by its nbgrader ``grade_id``; a cell that lost
its metadata is found by the names it defines (the function of the exercise);
an exercise that is not found counts as not attempted. Code cells the student
added (no nbgrader metadata, not in the starter lab) run after the cell they
followed. So a deleted, edited or renamed test cell changes nothing: the tests
that run are always the solution's.

The graded notebook runs in a fresh sandboxed kernel (:mod:`.sandbox`) whose
working folder is an empty scratch folder, with a per-cell timeout (a cell over
it is interrupted and the rest still runs), a total timeout, a memory cap and no
network; what a cell prints beyond a million characters is dropped (so a cell
printing in a loop cannot fill the grader's memory). The submission file is read
once, before any kernel starts, and never written. A grade cell earns its points
when its execute reply is ``ok``, it shows no error and it printed a random
per-run token appended to it by the grader (hiding tracebacks therefore cannot
turn a failure into a pass).

Output in ``OUT``: ``gradebook.csv`` (student, lab, total, max_total, status,
review, then one column per grade cell; the one of a previous run is kept as
``gradebook.previous.csv``) and ``feedback/<student>/<lab>.md``. ``OUT`` may be
inside ``<dir>`` (it is then no student), but not ``<dir>`` itself or a student's
folder. Files directly in ``<dir>`` are not graded (the log names them).
Status: ok, timeout, memory, kernel died, unreadable, other notebook (a valid
notebook with no cell of the lab, e.g. another notebook renamed: not run),
missing, error.

This module finds the work, runs it and scores it; :mod:`.assemble` builds each
graded notebook, :mod:`.report` and :mod:`.summary` write what the grader
produces, and :mod:`.sandbox` is the kernel and the worker process.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from utils import env
from utils.env import ROOT
from utils.instructor import labgen, sandbox
from utils.instructor.assemble import (  # noqa: F401 - grade.Lab, grade.load_lab, ... for callers
    REVIEW,
    GradeCell,
    GradedNotebook,
    Lab,
    build_graded,
    load_lab,
    read_submission,
    review_flags,
    written_answers,
)
from utils.instructor.report import (  # noqa: F401
    DIED,
    ERROR,
    MEMORY,
    MISSING,
    OK,
    OTHER,
    STATUS_TEXT,
    TIMEOUT,
    UNREADABLE,
    _num,
    feedback_markdown,
    gradebook_columns,
    write_gradebook,
)
from utils.instructor.sandbox import Limits
from utils.instructor.student import package_dirs
from utils.instructor.summary import write_summary

TOKEN_PREFIX = sandbox.TOKEN_PREFIX
STDIN_HINT = " (nobody can answer input() while the grader runs the notebook: remove it)"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MEMORY_TEXT = re.compile(r"can't allocate memory|not enough memory|bad_alloc|out of memory", re.I)


class GradingError(RuntimeError):
    """Grading could not start at all (no submissions folder, no matching lab, ...)."""


# --------------------------------------------------------------------- the worker


def _kernel_env(
    limits: Limits, home: Path, deny: list[Path], exports: Path | None = None
) -> dict[str, str]:
    data = env.data_dir()
    allow_read = [*package_dirs(), data, Path(sys.prefix), Path(sys.base_prefix)]
    sandbox = {
        "memory_mb": limits.memory_mb,
        "root": str(ROOT),
        "allow_read": [str(p) for p in allow_read],
        "allow_write": [str(data)],
        "deny": [str(p) for p in deny],
        "home": str(home),
        "own": [str(exports)] if exports else [],
    }
    threads = "1"
    return {
        "WORKBOOK_SANDBOX": json.dumps(sandbox),
        "WORKBOOK_FAST": "1" if limits.fast else "0",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MPLBACKEND": "Agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "WORKBOOK_EXPORTS": str(exports or home / "exports"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
    }


# ------------------------------------------------------------------------ scoring


@dataclass
class Result:
    """The grade of one student on one lab."""

    student: str
    lab: str
    status: str
    scores: dict[str, float]  # grade_id -> points earned
    max_total: float
    feedback: list[dict] = field(default_factory=list)  # per grade cell
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    review: str = ""

    @classmethod
    def no_points(cls, student: str, lab, status: str, notes=(), review: str = "") -> Result:
        """A result with zero points on every test of ``lab`` (missing, unreadable, ...)."""
        scores = dict.fromkeys(lab.grade_ids, 0.0)
        return cls(
            student, lab.name, status, scores, lab.max_total, notes=list(notes), review=review
        )

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def _clean(text: str, token: str) -> str:
    text = _ANSI.sub("", text)
    return "\n".join(line for line in text.splitlines() if token not in line)


def _frame(text: str) -> str | None:
    """One traceback entry, cleaned: the grader's sandbox frames go, and a notebook
    cell's frame keeps only the failing line (not the hidden tests around it)."""
    if "utils/instructor/sandbox.py" in text or "utils\\instructor\\sandbox.py" in text:
        return None
    if text.startswith("Cell In["):
        rows = text.splitlines()
        return "\n".join([rows[0], *(r for r in rows[1:] if r.lstrip().startswith("---->"))])
    return text


def _truncate(entries: list[str], token: str, max_lines: int = 25, max_chars: int = 4000) -> str:
    kept = [f for e in entries if (f := _frame(_clean(e, token))) is not None]
    rows = "\n".join(kept).splitlines()
    if len(rows) > max_lines:
        rows = [f"... ({len(rows) - max_lines} lines cut)", *rows[-max_lines:]]
    text = "\n".join(rows)
    return text if len(text) <= max_chars else "... " + text[-max_chars:]


def _error_of(cell: dict | None) -> dict | None:
    """The first error of an executed cell: from its outputs, else from the reply."""
    if not cell:
        return None
    for o in cell["outputs"]:
        if o.get("output_type") == "error":
            return o
    reply = cell.get("reply") or {}
    if reply.get("status") == "error":
        return {
            "ename": reply.get("ename") or "Error",
            "evalue": reply.get("evalue") or "",
            "traceback": reply.get("traceback") or [],
        }
    return None


def _is_memory_error(err: dict | None) -> bool:
    return bool(err) and (
        "MemoryError" in (err.get("ename") or "")
        or bool(_MEMORY_TEXT.search(err.get("evalue") or ""))
    )


def score(
    lab: Lab, graded: GradedNotebook, result: dict, token: str, limits: Limits
) -> tuple[str, list[dict]]:
    """Status and per-grade-cell feedback of an executed graded notebook."""
    cells = result["cells"]
    stopped = result.get("stopped")
    timed_out = set(result.get("timed_out", []))
    errors = {i: _error_of(c) for i, c in enumerate(cells)}
    if stopped and stopped["reason"] == ERROR:
        status = ERROR
    elif (stopped and stopped["reason"] == MEMORY) or any(map(_is_memory_error, errors.values())):
        status = MEMORY
    elif timed_out or (stopped and stopped["reason"] in (TIMEOUT, "total timeout")):
        status = TIMEOUT
    elif stopped:
        status = DIED
    else:
        status = OK
    stop_at = stopped["cell"] if stopped and stopped.get("cell") is not None else None
    if stopped and stop_at is None:
        stop_at = 0
    stop_text = {
        MEMORY: f"the kernel was stopped for using more than {limits.memory_mb} MiB of memory",
        TIMEOUT: "the kernel was stopped: a cell could not be interrupted after its time limit",
        "total timeout": f"the notebook ran past the total limit of {limits.total_timeout:g} s",
        ERROR: "the grader could not start a kernel",
    }.get(stopped["reason"] if stopped else "", "the kernel died")
    feedback = []
    previous = -1
    for i in sorted(graded.grade_cells):
        g = graded.grade_cells[i]
        cell = cells[i]
        item = {"grade_id": g.grade_id, "points": g.points, "passed": False, "reason": ""}
        err = errors.get(i)
        reply = (cell or {}).get("reply") or {}
        printed = "".join(
            o.get("text", "")
            for o in (cell or {}).get("outputs", [])
            if o.get("output_type") == "stream"
        )
        if stop_at is not None and i >= stop_at and not reply:
            item["reason"] = f"not run: {stop_text} (at cell {stop_at})."
            if stop_at == i:
                item["reason"] = f"{stop_text} while this test ran."
        elif i in timed_out:
            item["reason"] = (
                f"timed out: stopped after the limit of {limits.cell_timeout:g} s per cell."
            )
        elif err:
            item["reason"] = f"{err.get('ename')}: {_clean(str(err.get('evalue', '')), token)}"
            item["traceback"] = _truncate(err.get("traceback") or [], token)
        elif reply.get("status") != "ok" or token not in printed:
            item["reason"] = (
                "the test did not run to its end (its error or its output was hidden, "
                "for example by replacing IPython's error display or redirecting the output)."
            )
        else:
            item["passed"] = True
        # errors in the student's own cells for this test's exercises
        own = []
        for k in range(previous + 1, i):
            interrupted = (
                k in timed_out and (errors.get(k) or {}).get("ename") == "KeyboardInterrupt"
            )
            if k in graded.exercise_of and errors.get(k) and not interrupted:
                e = errors[k]
                own.append(
                    f"your cell `{graded.exercise_of[k]}` raised {e.get('ename')}: "
                    f"{_clean(str(e.get('evalue', '')), token)}"
                    + (STDIN_HINT if e.get("ename") == "StdinNotImplementedError" else "")
                )
            if k in timed_out and k in graded.exercise_of:
                own.append(
                    f"your cell `{graded.exercise_of[k]}` timed out (it was stopped after "
                    f"{limits.cell_timeout:g} s)"
                )
        if own and not item["passed"]:
            item["own"] = own
        previous = i
        feedback.append(item)
    return status, feedback


# ---------------------------------------------------------------------- the run


@dataclass
class _Job:
    student: str
    lab: Lab
    graded: GradedNotebook
    token: str


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.Error:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass


def _run_student(
    jobs: list[tuple[int, _Job]], limits: Limits, session: Path, deny: list[Path]
) -> list[Result]:
    """One student's labs, in course order, sharing one exports folder: a later lab
    imports what the student's earlier lab exported (``utils.export.load_export``)."""
    exports = session / "exports" / str(jobs[0][0])
    exports.mkdir(parents=True)
    results = []
    for n, job in jobs:
        try:
            results.append(_run_job(job, limits, session, n, deny, exports))
        except Exception as e:  # noqa: BLE001 - one broken lab must not lose the others
            results.append(
                Result.no_points(job.student, job.lab, ERROR, notes=[f"{type(e).__name__}: {e}"])
            )
    return results


def _run_job(
    job: _Job, limits: Limits, session: Path, n: int, deny: list[Path], exports: Path | None = None
) -> Result:
    private = session / "private" / str(n)
    home = session / "work" / str(n)
    private.mkdir(parents=True)
    home.mkdir(parents=True)
    spec = {
        "notebook": job.graded.nb,
        "limits": limits.__dict__,
        "private": str(private),
        "home": str(home),
        "deny": [str(p) for p in deny],
        "env": _kernel_env(limits, home, deny, exports),
    }
    spec_path = private / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    result_path = private / "result.json"
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, sandbox.__file__, "--worker", str(spec_path), str(result_path)],
        cwd=private,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        log, _ = proc.communicate(timeout=limits.total_timeout + 180)
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)
        log, _ = proc.communicate()
        result = None
    base = Result.no_points(
        job.student, job.lab, ERROR, notes=job.graded.notes, review=job.graded.review
    )
    base.seconds = time.monotonic() - start
    if not result_path.exists():
        base.notes.append("The grader's worker failed: " + (log or "")[-2000:])
        return base
    result = json.loads(result_path.read_text(encoding="utf-8"))
    status, feedback = score(job.lab, job.graded, result, job.token, limits)
    base.status, base.feedback = status, feedback
    base.scores = {f["grade_id"]: (f["points"] if f["passed"] else 0.0) for f in feedback}
    base.seconds = result["seconds"]
    if status == ERROR:
        base.notes.append(f"The kernel did not start: {(result['stopped'] or {}).get('message')}")
    return base


def _check_out(submissions: Path, out: Path) -> Path | None:
    """The student-level folder of ``submissions`` that ``out`` is (None: outside it)."""
    sub, dest = submissions.resolve(), out.resolve()
    if dest == sub:
        raise GradingError(
            f"--out {out} is the submissions folder itself; write the grades elsewhere"
        )
    if not dest.is_relative_to(sub):
        return None
    inner = dest.relative_to(sub).parts
    if len(inner) > 1:
        raise GradingError(
            f"--out {out} is inside the folder of student {inner[0]!r}; write the grades elsewhere"
        )
    return dest


def _did_you_mean(name: str, labs: list[str]) -> str:
    """``"; rename it to X"`` when ``name`` looks like lab X (e.g. ``X (1).ipynb``)."""
    import difflib

    close = difflib.get_close_matches(name.lower(), [n.lower() for n in labs], n=1, cutoff=0.8)
    return f"; rename it to {labs[[n.lower() for n in labs].index(close[0])]}?" if close else ""


def discover(
    submissions: Path, solutions_dir: Path, labs: list[str] | None, out: Path | None = None
):
    """Students (sorted folder names), labs to grade, and files nobody will grade.

    ``out`` (the grades folder) is never taken for a student, even inside ``submissions``.
    """
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder (expected <dir>/<student>/<lab>.ipynb)")
    own = _check_out(submissions, out) if out is not None else None
    available = {p.name: p for p in labgen.solution_paths(solutions_dir)}
    if not available:
        raise GradingError(f"no solution notebook in {solutions_dir}")
    students = sorted(
        p.name
        for p in submissions.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.resolve() != own
    )
    if not students:
        raise GradingError(
            f"{submissions} has no student folders (expected <dir>/<student>/<lab>.ipynb)"
        )
    submitted = {f.name for s in students for f in (submissions / s).iterdir() if f.is_file()}
    if labs:
        names = [n if n.endswith(".ipynb") else n + ".ipynb" for n in labs]
        unknown = [n for n in names if n not in available]
        if unknown:
            raise GradingError(f"unknown lab(s) {unknown}; solutions/ has {sorted(available)}")
    else:
        names = sorted(n for n in submitted if n in available)
        if not names:
            raise GradingError(
                f"no file in {submissions}/<student>/ is named like a lab ({', '.join(sorted(available))})"
            )
    ignored = sorted(
        f"{s}/{f.name} (not a lab file name{_did_you_mean(f.name, names)})"
        for s in students
        for f in (submissions / s).iterdir()
        if f.is_file() and f.name not in names and not f.name.startswith(".")
    )
    ignored += sorted(
        f"{f.name} (not in a student folder: expected <dir>/<student>/<lab>.ipynb)"
        for f in submissions.iterdir()
        if f.is_file() and not f.name.startswith(".")
    )
    return students, [available[n] for n in names], ignored


def grade(
    submissions: Path | str,
    out: Path | str = "grades",
    *,
    labs: list[str] | None = None,
    jobs: int | None = None,
    limits: Limits | None = None,
    solutions_dir: Path | str = labgen.SOLUTIONS_DIR,
    log=print,
) -> list[Result]:
    """Grade every ``submissions/<student>/<lab>.ipynb``; write the gradebook and feedback."""
    submissions, out, solutions_dir = Path(submissions), Path(out), Path(solutions_dir)
    limits = limits or Limits(fast=env.fast())
    students, lab_paths, ignored = discover(submissions, solutions_dir, labs, out)
    for name in ignored:
        log(f"ignored {name}")
    if (out / "gradebook.csv").exists():
        log(
            f"{out / 'gradebook.csv'} exists: the new one replaces it, the old one is kept "
            "as gradebook.previous.csv"
        )
    try:
        lab_list = [load_lab(p) for p in lab_paths]
    except labgen.LabSourceError as e:
        raise GradingError(str(e)) from e
    # Read every file first: no kernel runs before all submissions are in memory.
    results: list[Result] = []
    jobs_todo: list[_Job] = []
    for student in students:
        for lab in lab_list:
            path = submissions / student / lab.name
            if not path.is_file():
                results.append(Result.no_points(student, lab, MISSING))
                continue
            try:
                data = path.read_bytes()
            except OSError as e:
                data, why = None, f"the file could not be read ({e.strerror})"
            nb, why = read_submission(data) if data is not None else (None, why)
            if nb is None:
                results.append(Result.no_points(student, lab, UNREADABLE, notes=[why]))
                continue
            token = TOKEN_PREFIX + secrets.token_hex(16)
            try:
                graded = build_graded(lab, nb, token)
            except Exception as e:  # noqa: BLE001
                results.append(
                    Result.no_points(
                        student, lab, ERROR, notes=[f"building the graded notebook failed: {e}"]
                    )
                )
                continue
            if graded.foreign:
                why = (
                    f"No cell of it comes from {lab.name} (no grader metadata, no cell of "
                    "the lab, no exercise function by name): is it another notebook renamed? "
                    "It was not run."
                )
                results.append(Result.no_points(student, lab, OTHER, notes=[why]))
                continue
            graded.notes.extend(written_answers(lab, nb))
            jobs_todo.append(_Job(student, lab, graded, token))
    jobs = max(1, jobs or os.cpu_count() or 1)
    out.mkdir(parents=True, exist_ok=True)
    deny = [submissions.resolve(), out.resolve(), Path(solutions_dir).resolve()]
    with tempfile.TemporaryDirectory(prefix="workbook-grading-") as tmp:
        session = Path(tmp)
        deny.append(session)
        by_student: dict[str, list[tuple[int, _Job]]] = {}
        for n, job in enumerate(jobs_todo):  # jobs_todo is in course (lab) order per student
            by_student.setdefault(job.student, []).append((n, job))
        done = 0
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [
                pool.submit(_run_student, student_jobs, limits, session, deny)
                for student_jobs in by_student.values()
            ]
            for fut in as_completed(futures):
                for r in fut.result():
                    done += 1
                    results.append(r)
                    log(
                        f"[{done}/{len(jobs_todo)}] {r.student}/{r.lab}: {_num(r.total)}/"
                        f"{_num(r.max_total)} ({r.status}) in {r.seconds:.1f} s"
                    )
    order = {lab.name: k for k, lab in enumerate(lab_list)}
    results.sort(key=lambda r: (r.student, order[r.lab]))
    if (out / "gradebook.csv").exists():
        (out / "gradebook.csv").replace(out / "gradebook.previous.csv")
    write_gradebook(results, lab_list, out / "gradebook.csv")
    for r in results:
        path = out / "feedback" / r.student / (Path(r.lab).stem + ".md")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(feedback_markdown(r), encoding="utf-8")
    write_summary(results, lab_list, out)
    return results
