"""Environment flags and folders, read in one place (standard library only).

Every switch the workbook reads from the environment is here, so notebooks,
the data layer, the lab generator and the grader agree on what it means:

=====================  =====================================================
``WORKBOOK_FAST``      CI-sized data and epochs (``1``, ``true``, ``yes``, ``on``)
``WORKBOOK_DATA``      the dataset cache (default ``data/``; empty = default)
``WORKBOOK_EXPORTS``   where labs export their functions (default ``exports/``)
``WORKBOOK_MIRROR``    a folder or URL holding the datasets under the same names
``WORKBOOK_DEVICE``    force ``cpu``, ``cuda`` or ``mps``
``WORKBOOK_BF16``      force bfloat16 training on the CPU on (``1``) or off (``0``)
=====================  =====================================================

Importing this module imports neither NumPy nor torch.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The workbook's top folder (the one holding README.md)."""

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def flag(name: str, default: bool = False) -> bool:
    """True when the variable ``name`` says so (``1``, ``true``, ``yes``, ``on``, any case).

    Unset or empty gives ``default``; any other value (``0``, ``false``, ``off``) is False.
    """
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in TRUE_WORDS


def text(name: str) -> str | None:
    """The stripped value of ``name``, or None when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or None


def folder(name: str, default: Path) -> Path:
    """``$name`` as a path (``~`` expanded) when set and not empty, else ``default``."""
    value = text(name)
    return Path(value).expanduser() if value else default


def fast() -> bool:
    """FAST mode (``WORKBOOK_FAST``): small data and few epochs, as CI runs."""
    return flag("WORKBOOK_FAST")


def data_dir() -> Path:
    """The dataset cache: ``$WORKBOOK_DATA``, else ``data/`` in the workbook."""
    return folder("WORKBOOK_DATA", ROOT / "data")


def exports_dir() -> Path:
    """Where labs write the modules they export: ``$WORKBOOK_EXPORTS``, else ``exports/``.

    One git-ignored folder for every lab, so a later lab imports an earlier lab's
    functions with :func:`utils.export.load_export` wherever it runs (the grader
    points this variable at the student's own exports).
    """
    return folder("WORKBOOK_EXPORTS", ROOT / "exports")


def mirror() -> str | None:
    """``$WORKBOOK_MIRROR`` (a folder or URL), or None when unset."""
    return text("WORKBOOK_MIRROR")
