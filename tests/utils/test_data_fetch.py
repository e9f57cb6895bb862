"""The fetch layer with bad inputs: each problem gives its own error and leaves the cache usable.

Everything here runs offline on small files in temporary folders; the upstream
is a local HTTP server, a closed port, or HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from tests.utils.data_helpers import (
    closed_port,
    http_server,
    pairs_spec,
    parquet_spec,
    sha,
    write_parquet,
)
from utils.data import (
    ChecksumError,
    CorruptFileError,
    DataError,
    DatasetUnavailableError,
    EmptyFileError,
    MirrorMissingError,
    OfflineError,
    RowCountError,
    SchemaError,
    TruncatedFileError,
    UnknownDatasetError,
    UnreadableFileError,
    get_spec,
    load_dataset,
)
from utils.data.download import fetch_file
from utils.data.registry import Upstream
from utils.data.verify import read_record, verify_file


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """An empty cache and a mirror folder; no upstream, no real mirror, no network."""
    cache, mirror = tmp_path / "cache", tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("WORKBOOK_DATA", str(cache))
    monkeypatch.setenv("WORKBOOK_MIRROR", str(mirror))
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "WORKBOOK_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return cache, mirror


def _attempt_errors(excinfo) -> list[BaseException]:
    return [error for _, error in excinfo.value.attempts]


def test_mirror_copy_is_verified_then_cache_is_used(dirs):
    cache, mirror = dirs
    spec = parquet_spec(mirror)
    path = fetch_file("toy", spec, progress=False)
    assert path == cache / "toy/train.parquet" and sha(path) == spec.sha256
    (mirror / "toy/train.parquet").unlink()  # the cache alone must now suffice
    assert fetch_file("toy", spec, progress=False) == path
    assert not list(cache.rglob("*.part-*"))


def test_wrong_checksum_in_mirror_is_refused_and_cache_stays_usable(dirs):
    cache, mirror = dirs
    spec = parquet_spec(mirror)
    bad = replace(spec, sha256="0" * 64)
    with pytest.raises(DatasetUnavailableError) as excinfo:
        fetch_file("toy", bad, progress=False)
    errors = _attempt_errors(excinfo)
    assert any(isinstance(e, ChecksumError) for e in errors)
    assert "sha256" in str(excinfo.value) and "make data" in str(excinfo.value)
    assert not (cache / "toy/train.parquet").exists() and not list(cache.rglob("*.part-*"))
    assert fetch_file("toy", spec, progress=False).exists()  # the right spec still works


@pytest.mark.parametrize(
    "damage, error",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:100]), TruncatedFileError),
        (lambda p: p.write_bytes(b""), EmptyFileError),
        (lambda p: (p.unlink(), p.mkdir()), UnreadableFileError),
        (lambda p: p.write_bytes(b"x" * p.stat().st_size), CorruptFileError),
        (lambda p: write_parquet(p, columns=("text",)), SchemaError),
    ],
    ids=["truncated", "empty", "folder-in-its-place", "garbage", "missing-column"],
)
def test_bad_cached_file_is_reported_and_replaced(dirs, damage, error):
    cache, mirror = dirs
    spec = parquet_spec(mirror)
    path = fetch_file("toy", spec, progress=False)
    damage(path)
    with pytest.raises(error):
        verify_file(spec, path)
    with pytest.warns(UserWarning, match="cached copy is not used"):
        again = fetch_file("toy", spec, progress=False)
    assert again == path and sha(path) == spec.sha256


def test_bad_copy_in_a_read_only_cache_is_named(dirs, monkeypatch):
    """A shared read-only cache with a damaged file: the error says the file is bad,
    not only that the cache cannot be written."""
    cache, mirror = dirs
    spec = parquet_spec(mirror)
    path = fetch_file("toy", spec, progress=False)
    path.write_bytes(path.read_bytes()[:100])

    def read_only(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(DataError) as excinfo:
        fetch_file("toy", spec, progress=False)
    message = str(excinfo.value)
    assert "the cached copy is not usable" in message and "it is truncated" in message
    assert "Permission denied" in message and "replace the bad file" in message
    assert path.exists()  # nothing was removed


@pytest.mark.parametrize(
    "damage, error",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:100]), TruncatedFileError),
        (lambda p: p.write_bytes(b""), EmptyFileError),
        (lambda p: write_parquet(p, columns=("text",)), SchemaError),
    ],
    ids=["truncated", "empty", "missing-column"],
)
def test_bad_mirror_file_gives_its_specific_error(dirs, damage, error):
    cache, mirror = dirs
    spec = parquet_spec(mirror)
    damage(mirror / spec.path)
    with pytest.raises(DatasetUnavailableError) as excinfo:
        fetch_file("toy", spec, progress=False)
    assert any(isinstance(e, error) for e in _attempt_errors(excinfo))
    assert str(mirror / spec.path) in str(excinfo.value)  # names the mirror file, not a temp file
    assert not (cache / spec.path).exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_mirror_file(dirs):
    _, mirror = dirs
    spec = parquet_spec(mirror)
    (mirror / spec.path).chmod(0)
    with pytest.raises(DatasetUnavailableError) as excinfo:
        fetch_file("toy", spec, progress=False)
    assert any(isinstance(e, UnreadableFileError) for e in _attempt_errors(excinfo))


def test_row_count_and_pairs_format_are_checked(dirs, tmp_path):
    _, mirror = dirs
    spec = pairs_spec(mirror, lines=20)
    path = mirror / spec.path
    with pytest.raises(RowCountError, match="20 rows, expected 21"):
        verify_file(replace(spec, sha256=None, size=None, rows=21), path)
    path.write_text("no tab on this line\n" * 20)
    with pytest.raises(SchemaError, match="line 1"):
        verify_file(replace(spec, sha256=None, size=None), path)


def test_absent_mirror_is_named(dirs, monkeypatch, tmp_path):
    spec = parquet_spec(tmp_path / "elsewhere")
    monkeypatch.setenv("WORKBOOK_MIRROR", str(tmp_path / "no-such-folder"))
    with pytest.raises(DatasetUnavailableError) as excinfo:
        fetch_file("toy", spec, progress=False)
    assert any(isinstance(e, MirrorMissingError) for e in _attempt_errors(excinfo))
    assert "no-such-folder does not exist" in str(excinfo.value)


def test_no_network_fails_fast_with_a_closed_port(dirs, monkeypatch, tmp_path):
    monkeypatch.delenv("WORKBOOK_MIRROR")
    up = Upstream("url", f"http://127.0.0.1:{closed_port()}/toy/pairs.txt", same_bytes=True)
    spec = pairs_spec(tmp_path / "elsewhere", upstream=up)
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as excinfo:
        fetch_file("toy", spec, progress=False)
    assert time.monotonic() - start < 5
    assert any(isinstance(e, OfflineError) for e in _attempt_errors(excinfo))
    message = str(excinfo.value)
    assert "'toy'" in message and "cache" in message and "WORKBOOK_MIRROR is not set" in message
    assert "upstream" in message and "make data" in message


@pytest.mark.parametrize("name", ["tinyshakespeare", "imdb"])  # a URL and a Hub dataset
def test_real_registry_offline_fails_fast_and_never_substitutes(dirs, monkeypatch, name):
    monkeypatch.delenv("WORKBOOK_MIRROR")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as excinfo:
        load_dataset(name, progress=False)
    assert time.monotonic() - start < 5
    assert "HF_HUB_OFFLINE=1 is set" in str(excinfo.value) and repr(name) in str(excinfo.value)


def test_upstream_url_download_is_verified(dirs, monkeypatch, tmp_path):
    cache, _ = dirs
    monkeypatch.delenv("WORKBOOK_MIRROR")
    served = tmp_path / "served"
    spec = pairs_spec(served)
    with zipfile.ZipFile(served / "bundle.zip", "w") as zf:
        zf.write(served / spec.path, "data/pairs.txt")
    with http_server(served) as url:
        plain = replace(spec, upstream=Upstream("url", f"{url}/toy/pairs.txt", same_bytes=True))
        assert sha(fetch_file("toy", plain, progress=False)) == spec.sha256
        (cache / spec.path).unlink()
        zipped = replace(
            spec, upstream=Upstream("url", f"{url}/bundle.zip", member="pairs.txt", same_bytes=True)
        )
        assert sha(fetch_file("toy", zipped, progress=False)) == spec.sha256
        (cache / spec.path).unlink()
        wrong = replace(plain, sha256="1" * 64)
        with pytest.raises(DatasetUnavailableError, match="sha256"):
            fetch_file("toy", wrong, progress=False)
        assert not (cache / spec.path).exists()
        missing = replace(spec, upstream=Upstream("url", f"{url}/nothing.txt"))
        with pytest.raises(DatasetUnavailableError, match="404"):
            fetch_file("toy", missing, progress=False)


def test_url_mirror(dirs, monkeypatch, tmp_path):
    cache, mirror = dirs
    spec = parquet_spec(mirror)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline from the Hub, yet the mirror is used
    with http_server(mirror) as url:
        monkeypatch.setenv("WORKBOOK_MIRROR", url)
        assert sha(fetch_file("toy", spec, progress=False)) == spec.sha256
    monkeypatch.setenv("WORKBOOK_MIRROR", f"http://127.0.0.1:{closed_port()}")
    (cache / spec.path).unlink()
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError, match="cannot reach 127.0.0.1"):
        fetch_file("toy", spec, progress=False)
    assert time.monotonic() - start < 5


def test_converted_upstream_copy_is_recorded_and_rechecked(dirs, monkeypatch, tmp_path):
    """A copy whose bytes differ from the reference (e.g. a Hub export) is checked by
    rows and columns, and its own sha256 is recorded for later checks."""
    cache, _ = dirs
    monkeypatch.delenv("WORKBOOK_MIRROR")
    served = tmp_path / "served"
    reference = pairs_spec(tmp_path / "ref", lines=200)
    other = pairs_spec(served, lines=150)  # a different, still valid, upstream file
    with http_server(served) as url:
        spec = replace(reference, upstream=Upstream("url", f"{url}/toy/pairs.txt"))
        path = fetch_file("toy", spec, progress=False)
        assert read_record(path)["sha256"] == other.sha256
        verify_file(spec, path)  # passes against the record
        path.write_text(path.read_text().replace("line 7\t", "LINE 7\t"))
        with pytest.raises(ChecksumError, match="download record"):
            verify_file(spec, path)
        too_few = replace(spec, min_rows=180)
        with (
            pytest.warns(UserWarning, match="150 rows, expected at least 180"),
            pytest.raises(DatasetUnavailableError, match="at least 180"),
        ):
            fetch_file("toy", too_few, progress=False)


def test_hub_path_with_a_mocked_hub(dirs, monkeypatch):
    import datasets

    from utils.data import upstream

    cache, _ = dirs
    monkeypatch.delenv("WORKBOOK_MIRROR")
    calls = []

    def fake_load_dataset(repo, config, split):
        calls.append((repo, config, split))
        return datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 0]})

    monkeypatch.setattr(upstream, "check_online", lambda url: None)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    spec = replace(get_spec("imdb").files[0], rows=3, min_rows=3)
    path = fetch_file("imdb", spec, progress=False)
    assert calls == [("stanfordnlp/imdb", None, "train")]
    assert read_record(path)["kind"] == "hub" and path == cache / "imdb/train.parquet"


def test_crashed_run_leftovers_are_cleaned(dirs):
    cache, mirror = dirs
    spec = parquet_spec(mirror)
    leftover = cache / "toy" / ".train.parquet.part-999-deadbeef"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a download")
    fetch_file("toy", spec, progress=False)
    assert not leftover.exists()


def _fetch_in_process(spec, queue):
    try:
        queue.put(sha(fetch_file("toy", spec, progress=False)))
    except Exception as err:  # reported to the parent
        queue.put(repr(err))


def test_concurrent_fetches_do_not_corrupt_the_cache(dirs):
    cache, mirror = dirs
    spec = parquet_spec(mirror, rows=20_000)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_fetch_in_process, args=(spec, queue)) for _ in range(4)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert results == [spec.sha256] * 4
    assert not list(cache.rglob("*.part-*"))


def test_unknown_dataset_suggests_names():
    with pytest.raises(UnknownDatasetError, match="Did you mean 'imdb'"):
        get_spec("imbd")


def test_sgd_pairs_rule():
    from utils.data.upstream import sgd_pairs

    turns = [("USER", "Hi, a table please."), ("SYSTEM", "Where?"), ("USER", "Paris."),
             ("SYSTEM", ""), ("SYSTEM", "At what time?"), ("USER", "8 pm."), ("SYSTEM", "Done.")]  # fmt: skip
    dialogue = {"dialogue_id": "1_00000", "services": ["Restaurants_1", "Hotels_2"],
                "turns": [{"speaker": s, "utterance": u} for s, u in turns]}  # fmt: skip
    rows = sgd_pairs([dialogue])
    assert [r["turn_index"] for r in rows] == [1, 4, 6]  # the empty system turn is skipped
    assert rows[0]["context"] == ["USER: Hi, a table please."]
    assert rows[2]["context"] == [
        "SYSTEM: Where?",
        "USER: Paris.",
        "SYSTEM: At what time?",
        "USER: 8 pm.",
    ]
    assert rows[2]["response"] == "Done." and {r["service"] for r in rows} == {"Restaurants_1"}


def test_a_cache_where_no_lock_can_be_taken_still_serves_what_it_holds(dirs, monkeypatch):
    """Inside the grader's sandbox the cache is read-only and so is its lock folder: a
    missing optional file is simply absent (ECG5000's test file), a missing required one
    gets the message that says why, and nothing waits for a lock."""
    from filelock import FileLock

    cache, mirror = dirs
    spec = parquet_spec(mirror)
    optional = replace(spec, path="toy/optional.parquet", required=False)

    def read_only(self, *args, **kwargs):
        raise PermissionError(13, "the grader's sandbox does not allow writing", self.lock_file)

    monkeypatch.setattr(FileLock, "acquire", read_only)
    assert fetch_file("toy", optional, progress=False) is None
    with pytest.raises(DataError, match="cannot write to the data cache"):
        fetch_file("toy", spec, progress=False)


def test_utils_data_fetch_is_the_function_whatever_was_imported_before():
    """The module that fetches is ``utils.data.download``: were it ``utils.data.fetch``,
    importing it would replace the function ``utils.data.fetch`` by the module."""
    import utils.data
    import utils.data.download

    assert utils.data.fetch is utils.data.download.fetch and callable(utils.data.fetch)
