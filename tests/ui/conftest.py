"""Fixtures of the browser tests, and the switch that keeps them out of `make test`.

The tests in this folder run only when ``WORKBOOK_UI_TESTS=1`` (``make test-ui``
sets it); otherwise every test here is collected and skipped with that reason.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.ui.lab import CHROMIUM, CHROMIUM_ARGS, JupyterLab, copy_tree

HERE = Path(__file__).resolve().parent
ENABLED = os.environ.get("WORKBOOK_UI_TESTS", "").strip() == "1"
INSTALL = HERE / "install_chromium.sh"


def pytest_collection_modifyitems(config, items):
    if ENABLED:
        return
    skip = pytest.mark.skip(
        reason="browser test: run it with `make test-ui` (it sets WORKBOOK_UI_TESTS=1)"
    )
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


def _missing_browser(why: str):
    message = (
        f"{why}. The browser tests need Chromium at {CHROMIUM}: on Debian/Ubuntu run "
        f"`sudo {INSTALL.relative_to(HERE.parents[1])}` (apt-get install chromium), "
        "or set WORKBOOK_CHROMIUM to a Chromium or Chrome binary."
    )
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)  # CI must not pass without the browser
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The Chromium binary; installed from Debian's packages when missing and we are root."""
    if CHROMIUM.exists():
        return CHROMIUM
    if CHROMIUM != Path("/usr/bin/chromium"):
        _missing_browser(f"WORKBOOK_CHROMIUM={CHROMIUM} does not exist")
    if os.geteuid() != 0:
        _missing_browser("Chromium is not installed")
    done = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True)
    if done.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(
            f"installing Chromium with {INSTALL.name} failed ({done.returncode}):\n"
            + (done.stdout + done.stderr)[-3000:],
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> JupyterLab:
    """JupyterLab on 127.0.0.1 serving a copy of the notebooks (outputs stripped)."""
    root = copy_tree(tmp_path_factory.mktemp("lab-root"))
    server = JupyterLab.start(root, tmp_path_factory.mktemp("lab-home"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(chromium):
    """A headless Chromium browser context (one page per notebook)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        context = instance.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        yield context
        context.close()
        instance.close()
