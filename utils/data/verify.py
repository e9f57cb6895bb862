"""Checks a file must pass before it is used: size, format, columns, rows, sha256.

:func:`verify_file` raises the specific :class:`~utils.data.errors.VerificationError`
subclass that describes the problem (empty, truncated, unreadable, corrupt,
schema, row count, checksum). A copy converted from the upstream (whose bytes
differ from the reference copy) carries a record ``<file>.source.json`` written
when it was checked; its sha256 is then compared with that record instead.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from utils.data.errors import (
    ChecksumError,
    CorruptFileError,
    EmptyFileError,
    RowCountError,
    SchemaError,
    TruncatedFileError,
    UnreadableFileError,
)
from utils.data.registry import FileSpec

RECORD_SUFFIX = ".source.json"


def sha256sum(path: Path, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def record_path(path: Path) -> Path:
    """Where the provenance record of a converted upstream copy lives."""
    return path.with_name(path.name + RECORD_SUFFIX)


def read_record(path: Path) -> dict | None:
    """The provenance record of ``path``, or None when there is none (or it is unreadable)."""
    try:
        return json.loads(record_path(path).read_text())
    except (OSError, ValueError):
        return None


def count_rows(spec: FileSpec, path: Path) -> int:
    """Check the format of ``path`` and return its number of rows.

    Raises :class:`CorruptFileError` or :class:`SchemaError` when the content
    does not fit ``spec.fmt``.
    """
    if spec.fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            meta = pq.read_metadata(path)
        except Exception as err:  # pyarrow raises ArrowInvalid / OSError
            raise CorruptFileError(
                f"{path} is not a valid Parquet file (truncated or corrupt: {err})"
            ) from err
        names = meta.schema.to_arrow_schema().names
        missing = [c for c in spec.columns if c not in names]
        if missing:
            raise SchemaError(
                f"{path} lacks column(s) {missing}; it has {names}, expected {list(spec.columns)}"
            )
        return meta.num_rows
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorruptFileError(f"{path} is not valid UTF-8 text ({err})") from err
    lines = text.splitlines()
    if spec.fmt == "text":
        return len(lines)
    if spec.fmt == "package":  # values, not lines: the loader checks their number
        return -1
    if spec.fmt == "pairs":
        for i, line in enumerate(lines, 1):
            if line.count("\t") < 1:
                raise SchemaError(f"{path} line {i} is not 'english<TAB>french': {line[:60]!r}")
        return len(lines)
    if spec.fmt == "ucr":
        try:
            table = np.loadtxt(lines, ndmin=2)
        except ValueError as err:
            raise CorruptFileError(f"{path} is not a numeric UCR table ({err})") from err
        if table.shape[1] != 141:
            raise SchemaError(
                f"{path} has {table.shape[1]} columns, expected 141 (class + 140 samples)"
            )
        classes = set(np.unique(table[:, 0]).tolist())
        if not classes <= {1.0, 2.0, 3.0, 4.0, 5.0}:
            raise SchemaError(f"{path} has class labels {sorted(classes)}, expected 1-5")
        return table.shape[0]
    raise ValueError(f"unknown file format {spec.fmt!r} for {spec.path}")


def verify_file(spec: FileSpec, path: Path, record: dict | None = None) -> None:
    """Raise a :class:`VerificationError` subclass unless ``path`` is a good copy of ``spec``.

    ``record`` (default: the record stored beside ``path``) marks a converted
    upstream copy: its own sha256 and size replace the registry's, and its rows
    must be at least ``spec.min_rows``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            f.read(1)
        size = path.stat().st_size
    except OSError as err:
        raise UnreadableFileError(f"{path} cannot be read ({err.strerror or err})") from err
    if size == 0:
        raise EmptyFileError(f"{path} is empty (0 bytes)")
    record = read_record(path) if record is None else record
    converted = bool(record) and record.get("sha256") != spec.sha256
    expected_size = record.get("size") if converted else spec.size
    truncated = bool(expected_size) and size < expected_size
    message = f"{path} has {size:,} bytes, expected {expected_size or 0:,}: it is truncated"
    try:
        rows = count_rows(spec, path)  # a missing column is reported as such, whatever the size
    except CorruptFileError as err:
        if truncated:
            raise TruncatedFileError(message) from err
        raise
    if truncated:
        raise TruncatedFileError(message)
    if spec.fmt == "package":
        pass
    elif converted:
        low = spec.min_rows or spec.rows
        if low is not None and rows < low:
            raise RowCountError(f"{path} has {rows:,} rows, expected at least {low:,}")
    elif spec.rows is not None and rows != spec.rows:
        raise RowCountError(f"{path} has {rows:,} rows, expected {spec.rows:,}")
    expected = record.get("sha256") if converted else spec.sha256
    if expected:
        actual = sha256sum(path)
        if actual != expected:
            where = "its download record" if converted else "the registry"
            raise ChecksumError(
                f"{path} has sha256 {actual[:16]}..., {where} says {expected[:16]}..."
            )
