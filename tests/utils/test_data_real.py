"""Every real dataset loads with the expected counts and schema.

Tests marked ``data`` copy the files from ``$WORKBOOK_MIRROR`` (or, when that is
unset, from an existing cache) into a temporary cache, so the real cache is
never written; they are skipped, with the reason, when neither has the dataset.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from utils.data import REGISTRY, load_dataset
from utils.data.download import cache_dir


def _source_for(name: str) -> Path | None:
    """A folder holding every required file of ``name``: the mirror, else the real cache."""
    candidates = [os.environ.get("WORKBOOK_MIRROR", ""), str(cache_dir())]
    for folder in filter(None, candidates):
        if folder.startswith(("http://", "https://")):
            continue
        if all((Path(folder) / f.path).is_file() for f in REGISTRY[name].files if f.required):
            return Path(folder)
    return None


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """``real(name)`` loads ``name`` through a temporary cache filled from the mirror."""
    cache = tmp_path_factory.mktemp("cache")
    loaded = {}

    def load(name):
        source = _source_for(name)
        if source is None:
            pytest.skip(f"{name}: not in WORKBOOK_MIRROR nor in the cache (run `make data`)")
        if name not in loaded:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("WORKBOOK_MIRROR", str(source))
                mp.setenv("HF_HUB_OFFLINE", "1")  # never the network in tests
                loaded[name] = load_dataset(name, cache=cache, progress=False)
        return loaded[name]

    return load


@pytest.mark.data
def test_imdb(real):
    ds = real("imdb")
    assert {k: v.num_rows for k, v in ds.items()} == {"train": 25_000, "test": 25_000}
    assert ds["train"].features["label"].names == ["neg", "pos"]
    for split in ds.values():
        assert Counter(split["label"]) == {0: 12_500, 1: 12_500}
    assert isinstance(ds["test"][0]["text"], str) and len(ds["test"][0]["text"]) > 10


@pytest.mark.data
def test_wikiann(real):
    ds = real("wikiann-en")
    assert {k: v.num_rows for k, v in ds.items()} == {
        "train": 20_000,
        "validation": 10_000,
        "test": 10_000,
    }
    names = ds["train"].features["ner_tags"].feature.names
    assert names == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    tags = ds["train"]["ner_tags"]
    assert sum(map(len, tags)) == 160_394
    assert all(len(t) == len(k) for t, k in zip(tags[:500], ds["train"]["tokens"][:500]))


@pytest.mark.data
def test_eng_fra(real):
    pairs = real("eng-fra")
    assert len(pairs) == 168_145 and pairs[0] == ("Go.", "Va !")
    assert all(len(p) == 2 and p[0] and p[1] for p in pairs)


@pytest.mark.data
def test_ecg5000(real):
    ecg = real("ecg5000")
    X, y = ecg["train"]
    assert X.shape == (500, 140) and X.dtype == np.float32 and y.dtype == np.int64
    assert dict(Counter(y.tolist())) == {1: 292, 2: 177, 3: 10, 4: 19, 5: 2}
    assert np.isfinite(X).all()
    if "test" in ecg:
        assert ecg["test"][0].shape == (4_500, 140)


@pytest.mark.data
def test_tinyshakespeare(real):
    text = real("tinyshakespeare")
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")
    assert len(set(text)) == 65


@pytest.mark.data
def test_sgd(real):
    ds = real("sgd")
    assert {k: v.num_rows for k, v in ds.items()} == {
        "train": 111_878,
        "validation": 19_384,
        "test": 24_861,
    }
    sample = ds["validation"].select(range(2_000))
    assert max(map(len, sample["context"])) == 4 and all(sample["response"])
    assert all(c.startswith(("USER: ", "SYSTEM: ")) for ctx in sample["context"] for c in ctx)


@pytest.mark.parametrize(
    "name, length, start, end, first",
    [
        ("sunspots-yearly", 309, "1700-01-01", "2008-01-01", 5.0),
        ("sunspots-monthly", 3_126, "1749-01-01", "2009-06-01", 58.0),
        ("co2", 526, "1958-03-01", "2001-12-01", 316.1),
    ],
)
def test_package_time_series(name, length, start, end, first):
    series = load_dataset(name)
    assert len(series) == length and series.dtype == np.float64
    assert str(series.index[0].date()) == start and str(series.index[-1].date()) == end
    assert series.iloc[0] == pytest.approx(first) and not series.isna().any()


def test_monthly_sunspots_agree_with_yearly_means():
    """An independent check of the monthly parser: yearly means of the monthly file
    are close to the yearly file (the two are separate SIDC series)."""
    monthly, yearly = load_dataset("sunspots-monthly"), load_dataset("sunspots-yearly")
    means = monthly.groupby(monthly.index.year).mean()
    common = yearly[(yearly.index.year >= 1750) & (yearly.index.year <= 2008)]
    diff = np.abs(means.loc[common.index.year].to_numpy() - common.to_numpy())
    assert np.median(diff) < 2.0


def test_airline_or_a_clear_error():
    from utils.data import DatasetUnavailableError

    try:
        series = load_dataset("airline")
    except DatasetUnavailableError as err:
        assert "sktime is not installed" in str(err) and "pip install sktime" in str(err)
        pytest.skip("airline needs sktime or aeon, neither is installed")
    assert len(series) == 144 and series.iloc[0] == 112.0 and series.iloc[-1] == 432.0
