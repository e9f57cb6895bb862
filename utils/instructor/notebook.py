"""The notebook toolkit every instructor tool shares.

One place for what the lab generator, the release, the grader, ``make bench``
and the tests need to know about a solution notebook:

- nbgrader cell metadata (:func:`nbgrader_meta`, :func:`grade_id`,
  :func:`is_exercise`, :func:`is_test`, :func:`points`);
- the fences, parsed by one parser (:func:`split_fences`)::

      # BEGIN SOLUTION / # END SOLUTION          exercise code (replaced by the stub)
      # BEGIN HIDDEN TESTS / # END HIDDEN TESTS  tests the student never sees

- metadata cleaning by an allow-list (:func:`clean_metadata`): only what the
  course uses survives (tags and nbgrader in cells; kernelspec and language_info
  in the notebook), so widget state, timings and editor settings never reach git.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BEGIN_SOLUTION = "# BEGIN SOLUTION"
END_SOLUTION = "# END SOLUTION"
BEGIN_HIDDEN = "# BEGIN HIDDEN TESTS"
END_HIDDEN = "# END HIDDEN TESTS"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
SOLUTION = (BEGIN_SOLUTION, END_SOLUTION)
HIDDEN = (BEGIN_HIDDEN, END_HIDDEN)
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
ANSWER_STUB = "YOUR ANSWER HERE"
RAISES = "raises-exception"

CELL_METADATA_KEEP = frozenset({"tags", "nbgrader"})
NOTEBOOK_METADATA_KEEP = frozenset({"kernelspec", "language_info", "workbook"})

# Lines that look like a marker but are not exactly one (typos, wrong case, "##").
MARKER_LIKE = re.compile(r"^\s*#+\s*(BEGIN|END)\b|^\s*#+\s*(?i:begin|end)[\s_-]*(?i:sol|hid|test)")


class FenceError(ValueError):
    """Fences that do not pair up; ``line`` is 1-based."""

    def __init__(self, line: int | None, message: str):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


# ------------------------------------------------------------------ nbgrader metadata


def nbgrader_meta(cell) -> dict:
    """The cell's ``nbgrader`` metadata (empty dict when it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_exercise(cell) -> bool:
    """A cell the student writes (nbgrader ``solution``)."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell) -> bool:
    """A graded test cell (nbgrader ``grade``) of code."""
    return cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("grade"))


def points(cell) -> float:
    """The points a graded cell is worth (0 for other cells)."""
    meta = nbgrader_meta(cell)
    return float(meta.get("points", 0) or 0) if meta.get("grade") else 0.0


def max_points(nb) -> float:
    """The points of every graded cell of ``nb`` added up."""
    return sum(points(c) for c in nb.cells)


# ------------------------------------------------------------------------ fences


@dataclass
class Fenced:
    """``source`` split by one kind of fence."""

    outside: list[tuple[int, str]]  # (line number, line) outside the fences
    inside: list[tuple[int, str]]  # (line number, line) between them
    openings: list[tuple[int, str]]  # (line number, indentation) of each BEGIN


def split_fences(source: str, fence: tuple[str, str] = SOLUTION) -> Fenced:
    """Split ``source`` into the lines outside and inside ``fence`` (BEGIN, END).

    Raises :class:`FenceError` for a nested BEGIN, an END without BEGIN, or a
    BEGIN never closed. Marker lines themselves are in neither list.
    """
    begin, end = fence
    result = Fenced([], [], [])
    inside = False
    for n, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped == begin:
            if inside:
                raise FenceError(n, f"{begin!r} inside another {begin!r}")
            inside = True
            result.openings.append((n, line[: len(line) - len(line.lstrip())]))
        elif stripped == end:
            if not inside:
                raise FenceError(n, f"{end!r} without a matching {begin!r}")
            inside = False
        else:
            (result.inside if inside else result.outside).append((n, line))
    if inside:
        raise FenceError(None, f"{begin!r} is never closed by {end!r}")
    return result


def strip_fence(source: str, fence: tuple[str, str] = SOLUTION, *, stub=None) -> str:
    """``source`` without what ``fence`` encloses; each block becomes ``stub`` lines
    (indented like its BEGIN) when ``stub`` is given."""
    parts = split_fences(source, fence)
    starts = dict(parts.openings)
    out: list[str] = []
    inside_lines = {n for n, _ in parts.inside}
    lines = source.splitlines()
    for n, line in enumerate(lines, start=1):
        if n in starts and stub:
            out.extend(starts[n] + s for s in stub)
        elif n not in starts and n not in inside_lines and line.strip() not in fence:
            out.append(line)
    return "\n".join(out)


def fenced_lines(source: str, fence: tuple[str, str] = SOLUTION) -> list[str]:
    """The lines between the fences (the solution code, or the hidden tests)."""
    return [line for _, line in split_fences(source, fence).inside]


def without_markers(source: str, fence: tuple[str, str] = SOLUTION) -> str:
    """``source`` with the marker lines removed and everything else kept: the
    exercise cell as a student who solved it would have written it."""
    split_fences(source, fence)  # validates
    return "\n".join(ln for ln in source.splitlines() if ln.strip() not in fence)


def marker_like_lines(source: str) -> list[tuple[int, str]]:
    """Lines that look like a fence marker but are not exactly one (typos, ``##``)."""
    return [
        (n, line.strip())
        for n, line in enumerate(source.splitlines(), start=1)
        if MARKER_LIKE.match(line) and line.strip() not in MARKERS
    ]


# ---------------------------------------------------------------------- metadata


def clean_metadata(nb):
    """Keep only the allow-listed metadata (``CELL_METADATA_KEEP``,
    ``NOTEBOOK_METADATA_KEEP``); returns ``nb``, changed in place."""
    for key in [k for k in nb.metadata if k not in NOTEBOOK_METADATA_KEEP]:
        del nb.metadata[key]
    for cell in nb.cells:
        for key in [k for k in cell.metadata if k not in CELL_METADATA_KEEP]:
            del cell.metadata[key]
    return nb
