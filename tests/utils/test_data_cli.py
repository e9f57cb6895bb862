"""``python -m utils.data status|verify|fetch``: tables and exit codes."""

from __future__ import annotations

import pytest

from tests.utils.data_helpers import sha
from utils.data.__main__ import main
from utils.data.registry import REGISTRY


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_DATA", str(tmp_path))
    monkeypatch.delenv("WORKBOOK_MIRROR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_status_table_lists_every_dataset(empty_cache, capsys):
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "dataset" in out and "license" in out
    for name in REGISTRY:
        assert f"\n{name} " in out
    assert "missing" in out and "installed" in out and "make data" in out


def test_verify_names_a_bad_cached_file(empty_cache, capsys):
    path = empty_cache / "tinyshakespeare" / "input.txt"
    path.parent.mkdir()
    path.write_text("First Citizen:\n")  # a truncated copy
    assert main(["verify"]) == 1
    captured = capsys.readouterr()
    assert "tinyshakespeare" in captured.err and "FAILED" in captured.out
    assert "truncated" in captured.out


def test_verify_passes_on_a_good_copy(empty_cache, capsys):
    spec = REGISTRY["sunspots-yearly"]  # package data: always present, verified too
    assert spec.packaged
    assert main(["verify", "sunspots-yearly"]) == 0
    assert "Every cached file verified." in capsys.readouterr().out


def test_fetch_offline_fails_with_exit_code_and_reason(empty_cache, capsys):
    assert main(["fetch", "tinyshakespeare"]) == 1
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE=1 is set" in err and "could not be fetched: tinyshakespeare" in err


def test_unknown_name_is_a_usage_error(empty_cache, capsys):
    assert main(["status", "imbd"]) == 2
    assert "Did you mean 'imdb'" in capsys.readouterr().err


def test_fetch_from_a_mirror_folder(empty_cache, tmp_path_factory, monkeypatch, capsys):
    """A fake mirror with the right bytes for one small dataset (ATTRIBUTION.md is optional)."""
    spec = REGISTRY["eng-fra"].files[1]
    mirror = tmp_path_factory.mktemp("mirror")
    assert spec.path == "eng-fra/ATTRIBUTION.md" and not spec.required
    (mirror / "eng-fra").mkdir()
    (mirror / spec.path).write_text("wrong attribution text\n")
    monkeypatch.setenv("WORKBOOK_MIRROR", str(mirror))
    assert main(["fetch", "eng-fra", "--no-upstream"]) == 1
    out = capsys.readouterr()
    assert "eng-fra" in out.err and not (empty_cache / spec.path).exists()
    assert sha(mirror / spec.path) != spec.sha256
