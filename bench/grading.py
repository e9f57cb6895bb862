"""Grading throughput: how many Lab 1 submissions the grader handles per minute.

    python -c "from bench.grading import measure; print(measure(n_submissions=8))"

Builds ``n_submissions`` complete Lab 1 submissions (the starter with every
exercise answered from the solution), grades them with ``jobs`` parallel
kernels exactly as ``make grade`` does (sandboxed kernel, limits, gradebook and
feedback), and reports submissions per minute. Full mode by default, as an
instructor grades; every submission must come out with full marks.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from pathlib import Path

import nbformat

from utils.env import ROOT
from utils.instructor import grade
from utils.instructor.notebook import is_exercise, without_markers

LAB = "lab01_rnn_from_scratch.ipynb"


def complete_submission():
    """The Lab 1 starter with every exercise answered (solution fences removed)."""
    solution = nbformat.read(ROOT / "solutions" / LAB, as_version=4)
    nb = copy.deepcopy(nbformat.read(ROOT / "labs" / LAB, as_version=4))
    for cell, sol in zip(nb.cells, solution.cells):
        if is_exercise(cell):
            cell.source = without_markers(sol.source)
    return nb


def measure(n_submissions: int = 8, jobs: int = 2, fast: bool = False) -> dict:
    """Grade ``n_submissions`` complete Lab 1 submissions on ``jobs`` cores; time it."""
    if n_submissions < 1 or jobs < 1:
        raise ValueError(f"n_submissions and jobs must be >= 1, got {n_submissions}, {jobs}")
    nb = complete_submission()
    limits = grade.Limits(total_timeout=1800, memory_mb=4096, fast=fast)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        subs = Path(tmp) / "submissions"
        for k in range(n_submissions):
            (subs / f"student{k:03d}").mkdir(parents=True)
            nbformat.write(nb, subs / f"student{k:03d}" / LAB)
        start = time.perf_counter()
        results = grade.grade(
            subs, Path(tmp) / "grades", jobs=jobs, limits=limits, log=lambda *_: None
        )
        seconds = time.perf_counter() - start
    statuses = sorted({r.status for r in results})
    per_run = sorted(r.seconds for r in results)
    return {
        "lab": Path(LAB).stem,
        "mode": "FAST" if fast else "full",
        "submissions": n_submissions,
        "jobs": jobs,
        "cores": os.cpu_count(),
        "seconds": round(seconds, 1),
        "per_minute": round(60.0 * n_submissions / seconds, 1),
        "median_seconds_per_submission": round(per_run[len(per_run) // 2], 1),
        "statuses": statuses,
        "all_full_marks": all(r.total == r.max_total and r.status == grade.OK for r in results),
    }


if __name__ == "__main__":
    print(measure())
