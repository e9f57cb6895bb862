"""Small synthetic stand-ins for the real datasets: for FAST experiments and teaching.

Each stand-in has the type and the fields of the real dataset (see
:mod:`utils.data.loaders`), is deterministic, and announces itself with a
``[SYNTHETIC STAND-IN]`` line; Hugging Face stand-ins also carry it in
``info.description`` and pandas ones in ``series.attrs["synthetic"]``. They are
returned only by ``load_dataset(name, stand_in=True)``, never in place of a
real dataset that failed to load.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BANNER = "[SYNTHETIC STAND-IN] {name}: {what}. Not the real dataset: numbers on it say nothing about the real one."

_POS = ["great", "wonderful", "moving", "brilliant", "funny", "beautiful"]
_NEG = ["boring", "awful", "dull", "terrible", "silly", "predictable"]
_NOUNS = ["film", "movie", "story", "plot", "cast", "ending"]
_PER = [["Ada", "Lovelace"], ["Alan", "Turing"], ["Grace", "Hopper"], ["Marie", "Curie"]]
_ORG = [["Acme", "Corp"], ["Globex"], ["Initech", "Labs"], ["Umbrella", "Group"]]
_LOC = [["Paris"], ["New", "York"], ["Lagos"], ["Buenos", "Aires"]]
NER_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
_SUBJ = [("i am", "je suis", "je ne suis pas"), ("you are", "tu es", "tu n'es pas"),
         ("he is", "il est", "il n'est pas"), ("she is", "elle est", "elle n'est pas")]  # fmt: skip
_ADJ = [("calm", "calme"), ("sad", "triste"), ("ill", "malade"), ("young", "jeune"),
        ("rich", "riche"), ("poor", "pauvre"), ("free", "libre"), ("fast", "rapide"),
        ("shy", "timide"), ("honest", "honnete")]  # fmt: skip


def _review(rng, label: int) -> str:
    good, bad = (_POS, _NEG) if label else (_NEG, _POS)
    noun = rng.choice(_NOUNS)
    return (f"This {noun} was {rng.choice(good)}. The {rng.choice(_NOUNS)} felt "
            f"{rng.choice(good)}, not {rng.choice(bad)}.<br />{rng.choice(good).capitalize()}!")  # fmt: skip


def _imdb(rng):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})  # fmt: skip
    out = {}
    for split, n in (("train", 200), ("test", 100)):
        labels = [i % 2 for i in range(n)]
        out[split] = {"text": [_review(rng, y) for y in labels], "label": labels}
    return out, features, "300 template reviews (words like 'great' vs 'boring')"


def _wikiann(rng):
    import datasets

    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=NER_TAGS)),
        "langs": datasets.Sequence(datasets.Value("string")),
        "spans": datasets.Sequence(datasets.Value("string")),
    })  # fmt: skip
    out = {}
    for split, n in (("train", 200), ("validation", 50), ("test", 50)):
        rows = {k: [] for k in features}
        for _ in range(n):
            parts = [(_PER[rng.integers(4)], 1), (["works", "for"], 0),
                     (_ORG[rng.integers(4)], 3), (["in"], 0), (_LOC[rng.integers(4)], 5), (["."], 0)]  # fmt: skip
            tokens, tags, spans = [], [], []
            for words, b in parts:
                tokens += words
                tags += [0] * len(words) if b == 0 else [b] + [b + 1] * (len(words) - 1)
                if b:
                    spans.append(f"{NER_TAGS[b][2:]}: {' '.join(words)}")
            for key, value in zip(rows, (tokens, tags, ["en"] * len(tokens), spans)):
                rows[key].append(value)
        out[split] = rows
    return out, features, "300 sentences 'PER works for ORG in LOC .'"


def _sgd(rng):
    out = {}
    for split, n in (("train", 200), ("validation", 50), ("test", 50)):
        rows = {k: [] for k in ("dialogue_id", "turn_index", "service", "context", "response")}
        for i in range(n):
            city = " ".join(_LOC[rng.integers(4)])
            time = f"{rng.integers(5, 10)} pm"
            rows["dialogue_id"].append(f"syn_{i:05d}")
            rows["turn_index"].append(1)
            rows["service"].append("Restaurants_1")
            rows["context"].append([f"USER: I want a table in {city} at {time}."])
            rows["response"].append(f"Booked: a table in {city} at {time}.")
        out[split] = rows
    return out, None, "300 one-turn restaurant bookings"


def _pairs(rng):
    pairs = [(f"{e}{' not' * neg} {'very ' * very}{a} .",
              f"{(fn if neg else f)} {'tres ' * very}{fa} .")
             for e, f, fn in _SUBJ for neg in (0, 1) for very in (0, 1) for a, fa in _ADJ]  # fmt: skip
    rng.shuffle(pairs)
    return pairs, "160 pairs like 'i am not sad .' -> 'je ne suis pas triste .'"


def _ecg(rng):
    t = np.linspace(0, 1, 140)

    def beats(n, label):
        bump = lambda c, w, a: a * np.exp(-((t - c) ** 2) / (2 * w**2))  # noqa: E731
        base = (
            bump(0.2, 0.03, 0.3)
            + bump(0.4, 0.015, 2.5)
            - bump(0.45, 0.02, 0.6)
            + bump(0.7, 0.05, 0.5)
        )
        if label == 2:
            base = base - bump(0.55, 0.08, 1.2)  # an extra dip after the QRS complex
        X = base + rng.normal(0, 0.1, (n, 140)) + rng.normal(0, 0.2, (n, 1))
        return X.astype(np.float32)

    out = {}
    for split in ("train", "test"):
        y = np.array([1] * 80 + [2] * 20, dtype=np.int64)
        out[split] = (np.concatenate([beats(80, 1), beats(20, 2)]), y)
    return out, "200 beats: class 1 normal, class 2 with an extra dip"


def _shakespeare(rng):
    names = ["ROMEO", "JULIET", "HAMLET", "OPHELIA"]
    verbs = ["love", "fear", "seek", "know", "keep"]
    things = ["the night", "my lord", "thy heart", "the crown", "this day"]
    lines = [f"{rng.choice(names)}:\nI {rng.choice(verbs)} {rng.choice(things)}, "
             f"and {rng.choice(things)} doth {rng.choice(verbs)} me.\n" for _ in range(400)]  # fmt: skip
    return "\n".join(lines), "400 template speeches (about 25,000 characters)"


def _series(rng, name):
    if name == "airline":
        i = np.arange(144)
        values = (120 + 2.5 * i) * (1 + 0.15 * np.sin(2 * np.pi * (i - 3) / 12))
        return pd.date_range("1949-01-01", periods=144, freq="MS"), values + rng.normal(0, 5, 144)
    if name == "co2":
        i = np.arange(526)
        values = 315 + 0.11 * i + 3 * np.sin(2 * np.pi * i / 12)
        return pd.date_range("1958-03-01", periods=526, freq="MS"), values + rng.normal(0, 0.3, 526)
    yearly = name == "sunspots-yearly"
    n, period = (309, 11.0) if yearly else (3126, 132.0)
    values = 80 * np.abs(np.sin(np.pi * np.arange(n) / period)) + rng.gamma(2.0, 5.0, n)
    start, freq = ("1700-01-01", "YS") if yearly else ("1749-01-01", "MS")
    return pd.date_range(start, periods=n, freq=freq), values


def stand_in(name: str, seed: int = 0):
    """The synthetic stand-in of dataset ``name`` (same type and fields as the real one)."""
    rng = np.random.default_rng(seed)
    if name in ("imdb", "wikiann-en", "sgd"):
        import datasets

        splits, features, what = {"imdb": _imdb, "wikiann-en": _wikiann, "sgd": _sgd}[name](rng)
        result = datasets.DatasetDict()
        for split, rows in splits.items():
            result[split] = datasets.Dataset.from_dict(rows, features=features)
            result[split].info.description = BANNER.format(name=name, what=what)
    elif name in ("eng-fra", "ecg5000", "tinyshakespeare"):
        result, what = {"eng-fra": _pairs, "ecg5000": _ecg, "tinyshakespeare": _shakespeare}[name](
            rng
        )
    elif name in ("sunspots-yearly", "sunspots-monthly", "co2", "airline"):
        index, values = _series(rng, name)
        what = f"{len(values)} values of a smooth curve plus noise"
        result = pd.Series(values.astype(np.float64), index=index, name=name)
        result.attrs["synthetic"] = True
    else:
        raise ValueError(f"no stand-in for {name!r}")
    print(BANNER.format(name=name, what=what))
    return result
