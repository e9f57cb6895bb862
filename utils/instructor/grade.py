"""Grade a folder of submitted labs: ``make grade SUBMISSIONS=dir [OUT=grades]``.

Layout: ``<dir>/<student>/<lab file name>.ipynb`` (:mod:`.discover`). Every lab of
``solutions/`` that at least one student submitted is graded for every student.

How a submission is graded
--------------------------
The graded notebook is built from the *solution* notebook (:mod:`.assemble`):
every cell comes from the solution except the exercise cells, whose source is the
student's; code cells the student added run after the cell they followed. So a
deleted, edited or renamed test cell changes nothing.

The notebook's cells run in a fresh kernel in an operating-system sandbox
(:mod:`.sandbox`: bubblewrap, no network, no file of the machine but what a
student has, an unprivileged user, memory and time limits). **The tests never run
there**: each test cell runs in the grader's own process, calling the student's
functions in the kernel through a channel that carries data only, on inputs drawn
fresh for this grading run; references and expected values never enter the
kernel. The lab's rules (NumPy only in Lab 1 and 2; never the checks' own code)
are enforced where the function runs and read from its source (:mod:`.rules`).
A cell may run ``cell_factor`` (10) times as long as the solution's cell, at least
``cell_timeout`` (60 s): the solution is graded first, on this machine, and must earn
every point. The submission file is read once, before any kernel starts, and never
written.

Output in ``OUT``: ``gradebook.csv`` (student, lab, total, max_total, status,
review, isolation, then one column per grade cell; the one of a previous run is
kept as ``gradebook.previous.csv``), ``feedback/<student>/<lab>.md`` and
``summary.md``. Grading units (one student's labs) run in a local process pool, or
on a Dask cluster with ``scheduler`` (:mod:`.run`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from filelock import FileLock

from utils import env
from utils.env import ROOT
from utils.instructor import labgen, rules
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
from utils.instructor.discover import GradingError, discover  # noqa: F401
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
from utils.instructor.run import lab_spec, make_unit, new_salt, run_units
from utils.instructor.sandbox import isolation
from utils.instructor.sandbox.worker import Limits
from utils.instructor.score import STDIN_HINT, Result, given_cells, score  # noqa: F401
from utils.instructor.summary import write_summary

CACHE = ROOT / ".grader-cache"
"""solution timings per lab version and mode (git-ignored), so each is measured once"""
SOLUTION = "(solution)"
NOT_ISOLATED = (
    "This machine has no operating-system sandbox for the kernels ({why}). Students' code "
    "would run with the grader's rights, limited only by Python audit hooks. Install "
    "bubblewrap (Linux), or, if you accept that, pass --allow-unisolated (make grade "
    "ALLOW_UNISOLATED=1): the gradebook then says isolation=none."
)


def _rule_breaks(lab: Lab, graded: GradedNotebook) -> dict[str, str]:
    out = {}
    for gid, source in graded.sources.items():
        why = rules.violations(gid, source, lab.setup_source, lab.forbid(gid))
        if why:
            out[gid] = why
    return out


def _calibration_key(lab_list: list[Lab], limits: Limits, isolate: bool) -> str:
    h = hashlib.sha256()
    for lab in lab_list:
        h.update(json.dumps(lab.template, sort_keys=True).encode())
    h.update(f"{limits.fast}-{isolate}-{limits.memory_mb}".encode())
    return h.hexdigest()[:20]


def calibrate(
    lab_list: list[Lab], limits: Limits, isolate: bool, *, jobs: int, scheduler, log
) -> dict[str, dict[int, float]]:
    """Seconds per solution cell, per lab: the solution graded as a student (cached).

    Raises GradingError when the solution does not earn every point.
    """
    path = CACHE / f"{_calibration_key(lab_list, limits, isolate)}.json"
    CACHE.mkdir(exist_ok=True)
    # two gradings of the same lab started together grade its solution once: the second
    # waits for the first's timings
    with FileLock(path.with_suffix(".lock")):
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            return {lab: {int(k): v for k, v in cells.items()} for lab, cells in data.items()}
        return _calibrate(lab_list, limits, isolate, path, scheduler=scheduler, log=log)


def _calibrate(lab_list, limits, isolate, path, *, scheduler, log) -> dict[str, dict[int, float]]:
    log("grading the solution first (its time per cell sets the students' limits) ...")
    generous = Limits(**{**limits.__dict__, "cell_timeout": limits.total_timeout})
    specs, graded_of = [], {}
    for lab in lab_list:
        graded = build_graded(lab, lab.template)
        graded_of[lab.name] = graded
        specs.append(lab_spec(lab, graded, {}))
    unit = make_unit(SOLUTION, specs, generous, isolate, new_salt())
    [(_, result)] = list(run_units([unit], jobs=1, scheduler=scheduler))
    if "error" in result:
        raise GradingError(f"the solution could not be graded: {result['error']}")
    timings = {}
    for lab, res in zip(lab_list, result["labs"]):
        if "error" in res:
            raise GradingError(f"the solution of {lab.name} could not be graded: {res['error']}")
        graded = graded_of[lab.name]
        status, feedback = score(lab, graded, res, generous)
        failed = [f"{f['grade_id']}: {f['reason']}" for f in feedback if not f["passed"]]
        failed += given_cells(graded, res, generous)[0]
        if failed or status != OK:
            raise GradingError(
                f"the solution of {lab.name} does not earn every point here (status {status}); "
                "fix the lab or the machine first:\n  " + "\n  ".join(failed)
            )
        timings[lab.name] = {graded.origin[int(i)]: s for i, s in res["cell_seconds"].items()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(timings), encoding="utf-8")
    tmp.replace(path)
    return timings


def cell_limits(graded: GradedNotebook, timings: dict[int, float], limits: Limits) -> dict:
    """Seconds each cell of ``graded`` may run: by the solution's time for its cell."""
    return {
        i: limits.for_cell(timings.get(graded.origin[i]) if i in graded.origin else None)
        for i, c in enumerate(graded.nb.cells)
        if c.cell_type == "code"
    }


def grade(
    submissions: Path | str,
    out: Path | str = "grades",
    *,
    labs: list[str] | None = None,
    jobs: int | None = None,
    limits: Limits | None = None,
    solutions_dir: Path | str = labgen.SOLUTIONS_DIR,
    log=print,
    scheduler: str | None = None,
    allow_unisolated: bool = False,
    calibrated: bool = True,
) -> list[Result]:
    """Grade every ``submissions/<student>/<lab>.ipynb``; write the gradebook and feedback.

    ``calibrated``: time the solution first (once per lab version, cached in
    ``.grader-cache/``) and give each cell a limit from its time (:meth:`Limits.for_cell`);
    ``False`` skips that run and gives every cell ``limits.cell_timeout``.
    """
    submissions, out, solutions_dir = Path(submissions), Path(out), Path(solutions_dir)
    limits = limits or Limits(fast=env.fast())
    isolate, why = isolation.available()
    allow_unisolated = allow_unisolated or env.flag("WORKBOOK_ALLOW_UNISOLATED")
    if not isolate and not allow_unisolated:
        raise GradingError(NOT_ISOLATED.format(why=why))
    if not isolate:
        log(f"WARNING: kernels are not isolated ({why}); the gradebook says isolation=none")
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
    jobs = max(1, jobs or os.cpu_count() or 1)
    # Read every file first: no kernel runs before all submissions are in memory.
    results: list[Result] = []
    todo: dict[str, list[tuple[Lab, GradedNotebook, dict]]] = {}
    for student in students:
        for lab in lab_list:
            path = submissions / student / lab.name
            if not path.is_file():
                results.append(Result.no_points(student, lab, MISSING))
                continue
            try:
                data = path.read_bytes()
            except OSError as e:
                data, why_not = None, f"the file could not be read ({e.strerror})"
            nb, why_not = read_submission(data) if data is not None else (None, why_not)
            if nb is None:
                results.append(Result.no_points(student, lab, UNREADABLE, notes=[why_not]))
                continue
            try:
                graded = build_graded(lab, nb)
            except Exception as e:  # noqa: BLE001
                results.append(
                    Result.no_points(
                        student, lab, ERROR, notes=[f"building the graded notebook failed: {e}"]
                    )
                )
                continue
            if graded.foreign:
                why_not = (
                    f"No cell of it comes from {lab.name} (no grader metadata, no cell of "
                    "the lab, no exercise function by name): is it another notebook renamed? "
                    "It was not run."
                )
                results.append(Result.no_points(student, lab, OTHER, notes=[why_not]))
                continue
            graded.notes.extend(written_answers(lab, nb))
            todo.setdefault(student, []).append((lab, graded, _rule_breaks(lab, graded)))
    out.mkdir(parents=True, exist_ok=True)
    used_labs = [lab for lab in lab_list if any(lab is j[0] for js in todo.values() for j in js)]
    timings = (
        calibrate(used_labs, limits, isolate, jobs=jobs, scheduler=scheduler, log=log)
        if used_labs and calibrated
        else {}
    )
    salt = new_salt()
    units, limits_of = [], {}
    for student, items in todo.items():
        specs = []
        for lab, graded, _ in items:
            limits_of[(student, lab.name)] = cell_limits(graded, timings.get(lab.name, {}), limits)
            specs.append(lab_spec(lab, graded, limits_of[(student, lab.name)]))
        units.append(make_unit(student, specs, limits, isolate, salt))
    total = sum(len(items) for items in todo.values())
    done = 0
    for unit, result in run_units(units, jobs=jobs, scheduler=scheduler):
        student = unit["student"]
        for k, (lab, graded, breaks) in enumerate(todo[student]):
            r = Result.no_points(student, lab, ERROR, notes=graded.notes, review=graded.review)
            res = (result.get("labs") or [None] * (k + 1))[k] if "error" not in result else None
            if res is None or "error" in res:
                why_not = (res or result).get("error", "no result")
                r.notes.append(f"The grader failed on this submission: {why_not}")
            else:
                lim = limits_of[(student, lab.name)]
                status, feedback = score(lab, graded, res, limits, breaks, lim)
                r.status, r.feedback, r.seconds = status, feedback, res["seconds"]
                interrupted, r.cell_errors = given_cells(graded, res, limits, lim)
                r.notes[:0] = interrupted  # first: they say where a timeout happened
                r.notes += [
                    f"Loading your functions for the tests: {why}"
                    for why in res.get("functions_failed", [])[:5]
                ]
                r.scores = {f["grade_id"]: (f["points"] if f["passed"] else 0.0) for f in feedback}
                if status == ERROR:
                    r.notes.append(
                        f"The kernel did not start: {(res['stopped'] or {}).get('message')}"
                    )
            results.append(r)
            done += 1
            log(
                f"[{done}/{total}] {r.student}/{r.lab}: {_num(r.total)}/"
                f"{_num(r.max_total)} ({r.status}) in {r.seconds:.1f} s"
            )
    for r in results:
        r.isolation = "bubblewrap" if isolate else "none"
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
