"""Grading tests on a machine without bubblewrap.

CI installs bubblewrap (.ci/run). Where it is missing (a laptop without it, macOS),
the grader tests still run, unisolated (``WORKBOOK_ALLOW_UNISOLATED=1``, as an
instructor would allow it), and the tests that are about the isolation itself skip
with the reason.
"""

from __future__ import annotations

import os

import pytest

from utils.instructor.sandbox import isolation

ISOLATED, WHY_NOT = isolation.available()
ISOLATION = "bubblewrap" if ISOLATED else "none"
needs_isolation = pytest.mark.skipif(not ISOLATED, reason=f"no OS sandbox here: {WHY_NOT}")

if not ISOLATED:
    os.environ["WORKBOOK_ALLOW_UNISOLATED"] = "1"
