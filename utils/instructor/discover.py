"""Find the work to grade: students, labs, and files nobody will grade.

Layout: ``<dir>/<student>/<lab file name>.ipynb``, with the file names of
``labs/`` (for example ``alice/lab01_rnn_from_scratch.ipynb``). ``OUT`` may be
inside ``<dir>`` (it is then no student), but not ``<dir>`` itself or a student's
folder. Files directly in ``<dir>`` are not graded (the log names them).
"""

from __future__ import annotations

from pathlib import Path

from utils.instructor import labgen


class GradingError(RuntimeError):
    """Grading could not start at all (no submissions folder, no matching lab, ...)."""


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
