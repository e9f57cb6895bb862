"""What a student gets: one list, used by the release, the grader and the browser test.

A new student-facing package (the capstone's ``chatbot/``, say) is added to
:data:`STUDENT_PACKAGES` here and nowhere else: the release ships it, the graded
kernel may import (read) it, and the browser test serves it.
"""

from __future__ import annotations

from pathlib import Path

from utils.env import ROOT

STUDENT_PACKAGES = ("utils", "chatbot")
"""Python packages a student's notebooks import (folders at the top of the workbook)."""

INSTRUCTOR_ONLY = ("utils/instructor",)
"""Parts of those packages a student never gets ..."""

STUDENT_TOOLS = (
    "utils/instructor/__init__.py",
    "utils/instructor/check.py",
    "utils/instructor/student.py",
    "utils/instructor/sandbox",
)
"""... except these: ``make check`` (validate a lab as the grader runs it) and the
sandbox it runs in. They hold no answers; a graded kernel still sees none of
``utils/instructor``."""

NOTEBOOK_FOLDERS = ("notebooks", "labs")
"""The notebooks a student opens."""


def package_dirs(root: Path = ROOT) -> list[Path]:
    """The student packages' folders under ``root``."""
    return [root / name for name in STUDENT_PACKAGES]


def _under(s: str, folders) -> bool:
    return any(s == d or s.startswith(d + "/") for d in folders)


def is_instructor_only(rel: Path | str) -> bool:
    """True for a path (relative to the workbook) inside an instructor-only part."""
    s = Path(rel).as_posix()
    return _under(s, INSTRUCTOR_ONLY) and not _under(s, STUDENT_TOOLS)
