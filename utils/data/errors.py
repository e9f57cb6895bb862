"""The errors of the data layer: each one says what went wrong and how to fix it.

``DataError`` is the base class. A file that fails its checks raises a
subclass of ``VerificationError``; when no source can provide a dataset,
``DatasetUnavailableError`` lists every source tried and why it failed.
"""

from __future__ import annotations

FIX = (
    "Fix: run `make data` on a machine with internet (or with WORKBOOK_MIRROR set to a "
    "folder or URL holding the files), then copy the data/ folder here; or set "
    "WORKBOOK_DATA to a folder that already holds the files."
)


class DataError(RuntimeError):
    """Base class of every error of ``utils.data``."""


class UnknownDatasetError(DataError, KeyError):
    """The name is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class VerificationError(DataError):
    """A file exists but failed a check; it is never used."""


class EmptyFileError(VerificationError):
    """The file has zero bytes."""


class TruncatedFileError(VerificationError):
    """The file is shorter than the registry says."""


class ChecksumError(VerificationError):
    """The sha256 of the file differs from the registry's."""


class UnreadableFileError(VerificationError):
    """The file cannot be opened or read (permissions, a folder in its place, ...)."""


class CorruptFileError(VerificationError):
    """The file can be read but does not parse in its format."""


class SchemaError(VerificationError):
    """Columns or fields are missing or of the wrong type."""


class RowCountError(VerificationError):
    """The file holds a different number of rows than expected."""


class SourceError(DataError):
    """One source (mirror or upstream) could not provide a file."""


class MirrorMissingError(SourceError):
    """WORKBOOK_MIRROR names a folder that does not exist."""


class OfflineError(SourceError):
    """The upstream cannot be reached (no network, or HF_HUB_OFFLINE=1)."""


class DatasetUnavailableError(DataError):
    """No source could provide a verified copy of a dataset.

    ``attempts`` is a list of ``(source, error)`` pairs, in the order tried.
    """

    def __init__(self, name: str, attempts: list[tuple[str, BaseException]], fix: str = FIX):
        self.name = name
        self.attempts = attempts
        lines = [f"Dataset {name!r} is not available. Tried, in order:"]
        lines += [f"  - {source}: {error}" for source, error in attempts]
        lines.append(fix)
        super().__init__("\n".join(lines))
