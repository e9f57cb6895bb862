"""Score a graded run: from what the worker reports to points and feedback.

A test earns its points when it ran to its end in the grader's process without
raising (its verdict), and the exercise it grades breaks none of the lab's rules
(:mod:`.rules`; the kernel reports calls into forbidden modules as they happen).
Nothing the kernel prints or displays can change a verdict: the tests never run
there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from utils.instructor.assemble import GradedNotebook, Lab
from utils.instructor.notebook import RAISES
from utils.instructor.report import DIED, ERROR, MEMORY, OK, TIMEOUT
from utils.instructor.sandbox import protocol
from utils.instructor.sandbox.worker import Limits

STDIN_HINT = " (nobody can answer input() while the grader runs the notebook: remove it)"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MEMORY_TEXT = re.compile(r"can't allocate memory|not enough memory|bad_alloc|out of memory", re.I)


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
    isolation: str = ""
    # index in the graded notebook -> "Name: message", for the cells the lab gives (not the
    # exercises, not the tests) that raised where the lab does not expect it
    cell_errors: dict[int, str] = field(default_factory=dict)

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


def clean(text: str) -> str:
    return _ANSI.sub("", text)


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


def status_of(result: dict) -> str:
    """How the run ended: ok, timeout, memory, kernel died or error."""
    stopped = result.get("stopped")
    errors = [_error_of(c) for c in result["cells"]]
    memory_in_tests = any(
        "MemoryError" in (v.get("ename") or "") for v in result.get("tests", {}).values()
    )
    if stopped and stopped["reason"] == ERROR:
        return ERROR
    if (stopped and stopped["reason"] == MEMORY) or any(map(_is_memory_error, errors)):
        return MEMORY
    if memory_in_tests:
        return MEMORY
    if result.get("timed_out") or (
        stopped and stopped["reason"] in (TIMEOUT, protocol.TOTAL_TIMEOUT)
    ):
        return TIMEOUT
    if stopped:
        return DIED
    return OK


def score(
    lab: Lab,
    graded: GradedNotebook,
    result: dict,
    limits: Limits,
    rule_breaks: dict[str, str] | None = None,
    cell_limits: dict[int, float] | None = None,
) -> tuple[str, list[dict]]:
    """Status and per-grade-cell feedback of a graded run.

    ``rule_breaks``: exercise grade id -> the sentence saying which rule its code breaks.
    """
    cells = result["cells"]
    stopped = result.get("stopped")
    timed_out = set(result.get("timed_out", []))
    verdicts = {int(k): v for k, v in result.get("tests", {}).items()}
    errors = {i: _error_of(c) for i, c in enumerate(cells)}
    status = status_of(result)
    stop_at = stopped["cell"] if stopped and stopped.get("cell") is not None else None
    if stopped and stop_at is None:
        stop_at = 0
    stop_text = {
        MEMORY: f"the kernel was stopped for using more than {limits.memory_mb} MiB of memory",
        TIMEOUT: "the kernel was stopped: a cell could not be interrupted after its time limit",
        protocol.TOTAL_TIMEOUT: f"the notebook ran past the total limit of {limits.total_timeout:g} s",
        ERROR: "the grader could not start a kernel",
    }.get(stopped["reason"] if stopped else "", "the kernel died")
    limit_of = cell_limits or {}
    rule_breaks = rule_breaks or {}
    feedback = []
    previous = -1
    for i in sorted(graded.grade_cells):
        g = graded.grade_cells[i]
        item = {"grade_id": g.grade_id, "points": g.points, "passed": False, "reason": ""}
        verdict = verdicts.get(i)
        exercise = lab.exercise_for_test(g.index)
        limit = limit_of.get(i, limits.cell_timeout)
        if verdict is None and stop_at is not None and i >= stop_at:
            item["reason"] = f"not run: {stop_text} (at cell {stop_at})."
            if stop_at == i:
                item["reason"] = f"{stop_text} while this test ran."
        elif verdict is None:
            item["reason"] = "not run."
        elif verdict.get("timed_out") or i in timed_out:
            item["reason"] = f"timed out: your function was stopped after the limit of {limit:g} s."
        elif exercise in rule_breaks:
            item["reason"] = rule_breaks[exercise]
        elif not verdict.get("passed"):
            item["reason"] = f"{verdict.get('ename')}: {clean(str(verdict.get('evalue', '')))}"
            if verdict.get("traceback"):
                item["traceback"] = clean(verdict["traceback"])
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
                    f"{clean(str(e.get('evalue', '')))}"
                    + (STDIN_HINT if e.get("ename") == "StdinNotImplementedError" else "")
                )
            if k in timed_out and k in graded.exercise_of:
                own.append(
                    f"your cell `{graded.exercise_of[k]}` timed out (it was stopped after "
                    f"{limit_of.get(k, limits.cell_timeout):g} s)"
                )
        if own and not item["passed"]:
            item["own"] = own
        previous = i
        feedback.append(item)
    return status, feedback


def given_cells(
    graded: GradedNotebook,
    result: dict,
    limits: Limits,
    cell_limits: dict[int, float] | None = None,
) -> tuple[list[str], dict[int, str]]:
    """What happened in the cells the lab gives (neither exercises nor tests).

    Returns the notes for the feedback (each such cell that ran past its limit, named by
    its index and first line, so that a ``timeout`` status says where) and the errors of
    those cells that are not tagged ``raises-exception`` (index -> ``"Name: message"``).
    """
    cells = result["cells"]
    own = set(graded.grade_cells) | set(graded.exercise_of)
    notes = []
    for k in sorted(set(result.get("timed_out", [])) - own):
        if not 0 <= k < len(graded.nb.cells):
            continue
        first = next((line for line in graded.nb.cells[k].source.splitlines() if line.strip()), "")
        seconds = (result.get("cell_seconds") or {}).get(str(k))
        ran = f" after {float(seconds):.0f} s" if seconds is not None else ""
        notes.append(
            f"Cell {k} (`{first.strip()[:60]}`) ran past its time limit of "
            f"{(cell_limits or {}).get(k, limits.cell_timeout):g} s and was interrupted{ran}."
        )
    errors = {}
    for k, cell in enumerate(cells):
        if k in own or k >= len(graded.nb.cells):
            continue
        if RAISES in graded.nb.cells[k].get("metadata", {}).get("tags", []):
            continue
        e = _error_of(cell)
        if e and not (k in result.get("timed_out", []) and e.get("ename") == "KeyboardInterrupt"):
            errors[k] = f"{e.get('ename')}: {clean(str(e.get('evalue', '')))[:300]}"
    return notes, errors
