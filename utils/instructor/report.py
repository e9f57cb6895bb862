"""What the grader writes: the run statuses, ``gradebook.csv`` and each student's feedback.

``summary.md``, the class at a glance, is :mod:`utils.instructor.summary`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from utils.instructor.assemble import Lab
    from utils.instructor.grade import Result

from utils.instructor.sandbox.protocol import (  # noqa: F401 - one set of status words
    DIED,
    ERROR,
    MEMORY,
    MISSING,
    OK,
    OTHER,
    TIMEOUT,
    UNREADABLE,
)

STATUS_TEXT = {
    OK: "the notebook ran to the end",
    TIMEOUT: "a cell ran longer than the time limit and was interrupted",
    MEMORY: "the notebook asked for more memory than the limit",
    DIED: "the kernel died (the Python process running the notebook stopped)",
    UNREADABLE: "the file is not a readable Jupyter notebook",
    OTHER: "the file is a Jupyter notebook, but not this lab",
    MISSING: "no file was submitted for this lab",
    ERROR: "the grader failed on this submission (tell your instructor)",
}


def num(x: float) -> str:
    """A score as people write it: ``3`` or ``3.5``."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


_num = num


def gradebook_columns(lab_list: list[Lab]) -> list[str]:
    """The tests' columns, then one empty column per written answer (to fill in by hand).

    ``isolation`` says how the kernel was isolated: ``bubblewrap``, or ``none`` when the
    instructor accepted a run without an operating-system sandbox."""
    ids = [gid for lab in lab_list for gid in lab.grade_ids]
    ids += [w.grade_id for lab in lab_list for w in lab.written]
    return ["student", "lab", "total", "max_total", "status", "review", "isolation", *ids]


def write_gradebook(results: list[Result], lab_list: list[Lab], path: Path) -> None:
    columns = gradebook_columns(lab_list)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in results:
            row = {
                "student": r.student,
                "lab": Path(r.lab).stem,
                "total": _num(r.total),
                "max_total": _num(r.max_total),
                "status": r.status,
                "review": r.review,
                "isolation": r.isolation,
            }
            row.update({gid: _num(v) for gid, v in r.scores.items()})
            w.writerow(row)
    tmp.replace(path)


def feedback_markdown(r: Result) -> str:
    lines = [
        f"# {Path(r.lab).stem}: feedback for {r.student}",
        "",
        f"**Score: {_num(r.total)} / {_num(r.max_total)}**",
        "",
        f"Run status: **{r.status}**: {STATUS_TEXT[r.status]}.",
        "",
    ]
    lines += [f"- {n}" for n in r.notes]
    if r.notes:
        lines.append("")
    if r.feedback:
        lines += ["| test | points | result |", "| --- | --- | --- |"]
        for f in r.feedback:
            got = f["points"] if f["passed"] else 0
            lines.append(
                f"| `{f['grade_id']}` | {_num(got)} / {_num(f['points'])} | "
                f"{'passed' if f['passed'] else 'failed'} |"
            )
        lines.append("")
        for f in r.feedback:
            if f["passed"]:
                continue
            lines += [f"## `{f['grade_id']}`: failed", "", f["reason"], ""]
            for o in f.get("own", []):
                lines.append(f"- {o}")
            if f.get("own"):
                lines.append("")
            if f.get("traceback"):
                lines += ["```", f["traceback"], "```", ""]
    return "\n".join(lines).rstrip() + "\n"
