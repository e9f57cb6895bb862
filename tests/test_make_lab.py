"""`make lab` serves JupyterLab on localhost, opened at Chapter 1."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.factories import ROOT, free_port

URL = re.compile(r"(http://127\.0\.0\.1:\d+/lab/tree/\S+\?token=[0-9a-f]+)")


@pytest.mark.timeout(120)
def test_make_lab_answers_on_localhost_at_chapter_1():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"PORT={free_port()}"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 90
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            if m := URL.search(line):
                url = m.group(1)
        assert url, "make lab printed no URL:\n" + "".join(seen[-30:])
        assert "/lab/tree/notebooks/01_sequences_and_rnns.ipynb" in url
        page = None
        for _ in range(30):  # the URL is printed just before the socket accepts
            try:
                with urllib.request.urlopen(url, timeout=20) as response:
                    assert response.status == 200
                    page = response.read().decode("utf-8", "replace")
                    break
            except ConnectionRefusedError:
                time.sleep(1)
            except urllib.error.URLError as e:
                if not isinstance(e.reason, ConnectionRefusedError):
                    raise
                time.sleep(1)
        assert page is not None and "JupyterLab" in page
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
