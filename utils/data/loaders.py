"""``load_dataset(name)``: one call from a notebook to a verified, ready dataset.

| name | returns |
| --- | --- |
| ``imdb``, ``wikiann-en``, ``sgd`` | ``datasets.DatasetDict`` (in memory, features from the Hub metadata) |
| ``eng-fra`` | ``list[tuple[str, str]]`` of (english, french) pairs |
| ``ecg5000`` | ``{"train": (X, y), "test": (X, y)}``, ``X: (N, 140)`` float32, ``y: (N,)`` int64 in 1..5 |
| ``tinyshakespeare`` | ``str`` |
| ``sunspots-yearly``, ``sunspots-monthly``, ``co2``, ``airline`` | ``pandas.Series`` with a DatetimeIndex |

``stand_in=True`` returns a small synthetic stand-in instead (see
:mod:`utils.data.synthetic`); it is never returned unless asked for.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from utils.data.errors import CorruptFileError
from utils.data.download import fetch
from utils.data.registry import get_spec


def _dataset_dict(paths: dict[str, Path]):
    import datasets
    import pyarrow.parquet as pq

    splits = {Path(key).stem: datasets.Dataset(pq.read_table(path)) for key, path in paths.items()}
    return datasets.DatasetDict(splits)


def _pairs(paths):
    text = paths["eng-fra/eng-fra.txt"].read_text(encoding="utf-8")
    return [tuple(line.split("\t")[:2]) for line in text.splitlines() if line]


def _ecg(paths):
    out = {}
    for key, path in paths.items():
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
        split = "train" if key.endswith("_TRAIN.txt") else "test"
        out[split] = (table[:, 1:].astype(np.float32), table[:, 0].astype(np.int64))
    return out


def _shakespeare(paths):
    return paths["tinyshakespeare/input.txt"].read_text(encoding="utf-8")


def _series(values, start: str, freq: str, name: str) -> pd.Series:
    index = pd.date_range(start, periods=len(values), freq=freq)
    return pd.Series(np.asarray(values, dtype=np.float64), index=index, name=name)


def _check_length(series: pd.Series, name: str, path: Path) -> pd.Series:
    expected = get_spec(name).files[0].rows
    if len(series) != expected:
        raise CorruptFileError(f"{path} gave {len(series)} values for {name}, expected {expected}")
    return series


def _sunspots_yearly(paths):
    path = paths["sunspots-yearly"]
    frame = pd.read_csv(path)
    series = _series(frame["SUNACTIVITY"], f"{int(frame['YEAR'].iloc[0])}-01-01", "YS", "sunspots")
    return _check_length(series, "sunspots-yearly", path)


def _sunspots_monthly(paths):
    path = paths["sunspots-monthly"]
    values, first_year = [], None
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and re.fullmatch(r"\d{4}", fields[0]):  # "1749  58.0  62.6 ..."
            first_year = first_year or fields[0]
            values += [float(v) for v in fields[1:]]
    series = _series(values, f"{first_year}-01-01", "MS", "sunspots")
    return _check_length(series, "sunspots-monthly", path)


def _co2(paths):
    path = paths["co2"]
    weekly = pd.read_csv(path, index_col=0, parse_dates=True)["co2"]
    _check_length(weekly, "co2", path)
    monthly = weekly.resample("MS").mean().interpolate()
    monthly.name = "co2"
    return monthly


def _airline(paths):
    path = paths["airline"]
    frame = pd.read_csv(path)
    series = _series(frame["Passengers"], frame["Date"].iloc[0] + "-01", "MS", "passengers")
    return _check_length(series, "airline", path)


LOADERS = {
    "imdb": _dataset_dict,
    "wikiann-en": _dataset_dict,
    "sgd": _dataset_dict,
    "eng-fra": _pairs,
    "ecg5000": _ecg,
    "tinyshakespeare": _shakespeare,
    "sunspots-yearly": _sunspots_yearly,
    "sunspots-monthly": _sunspots_monthly,
    "co2": _co2,
    "airline": _airline,
}


def load_dataset(
    name: str,
    *,
    stand_in: bool = False,
    cache: str | Path | None = None,
    use_upstream: bool = True,
    progress: bool = True,
):
    """Load dataset ``name`` from the registry, fetching and verifying it first when needed.

    Args:
        name: a registry name, e.g. ``"imdb"`` (``python -m utils.data status`` lists them).
        stand_in: return the small synthetic stand-in instead (prints a banner
            saying so); never done unless asked for.
        cache: the cache folder (default ``$WORKBOOK_DATA`` or ``data/``).
        use_upstream: allow downloading from the upstream when cache and mirror fail.
        progress: show progress bars while copying or downloading.

    Returns:
        The type given in the module docstring for ``name``.

    Raises:
        UnknownDatasetError: ``name`` is not in the registry.
        DatasetUnavailableError: no source had a verified copy (the message lists
            every source tried and the fix).
    """
    spec = get_spec(name)
    if stand_in:
        from utils.data.synthetic import stand_in as make_stand_in

        return make_stand_in(spec.name)
    paths = fetch(spec.name, cache=Path(cache) if cache else None, use_upstream=use_upstream,
                  fetch_optional=False, progress=progress)  # fmt: skip
    return LOADERS[spec.name](paths)
