"""Tables for the command line: what is in the cache, and whether it still verifies."""

from __future__ import annotations

from pathlib import Path

from utils.data.errors import DataError, SourceError
from utils.data.download import cache_dir, package_file
from utils.data.registry import DATASETS, REGISTRY, DatasetSpec
from utils.data.verify import verify_file


def human_size(n: int) -> str:
    """``1536`` -> ``"1.5 KB"``."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _files(spec: DatasetSpec, cache: Path):
    """(file spec, local path or None, problem or None) for each file of ``spec``."""
    for f in spec.files:
        if f.package:
            try:
                yield f, package_file(f), None
            except SourceError as err:
                yield f, None, str(err)
        else:
            path = cache / f.path
            yield f, (path if path.exists() else None), None


def check(
    spec: DatasetSpec, cache: Path | None = None, deep: bool = False
) -> tuple[str, int, list[str]]:
    """``(state, bytes, problems)`` of one dataset in the cache.

    ``state`` is ``present``, ``partial`` (optional files missing), ``missing``,
    ``installed`` (package data) or ``FAILED`` (``deep=True`` ran
    :func:`verify_file` on every file and one failed; ``problems`` says why).
    """
    cache = cache or cache_dir()
    size, notes, failures, missing_required, missing_optional = 0, [], [], 0, 0
    for f, path, problem in _files(spec, cache):
        if path is None:
            missing_required += f.required
            missing_optional += not f.required
            notes.append(
                problem or ("not cached: " if f.required else "optional, not cached: ") + f.path
            )
            continue
        size += path.stat().st_size if path.is_file() else 0
        if deep:
            try:
                verify_file(f, path, record={} if f.package else None)
            except DataError as err:
                failures.append(str(err))
    if failures:
        return "FAILED", size, failures + notes
    if missing_required:
        return "missing", size, notes
    if spec.packaged:
        return "installed", size, notes
    return ("partial" if missing_optional else "present"), size, notes


def status_table(cache: Path | None = None, deep: bool = False) -> tuple[str, list[str]]:
    """The status (or, with ``deep``, verify) table and the names of datasets that FAILED."""
    rows, failed = [], []
    for spec in DATASETS:
        state, size, problems = check(spec, cache, deep)
        if state == "FAILED":
            failed.append(spec.name)
        note = "; ".join(problems)
        rows.append([spec.name, state, human_size(size) if size else "-", spec.license, note])
    text = table(["dataset", "state", "size", "license", "note"], rows)
    if any(r[1] == "missing" and not REGISTRY[r[0]].packaged for r in rows):
        text += "\nFetch missing datasets with `make data` (it honours WORKBOOK_MIRROR)."
    return text, failed
