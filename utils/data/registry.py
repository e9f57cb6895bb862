"""The registry: one entry per dataset, with its source, license, citation and files.

Each :class:`DatasetSpec` lists the files it needs (:class:`FileSpec`), each with
what a good copy looks like: sha256 and size of the reference copy (the one the
mirror holds), its row count and columns, and where the upstream copy comes from.
Package-shipped time series (statsmodels, sktime/aeon) need no download.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from utils.data.errors import UnknownDatasetError


@dataclass(frozen=True)
class Upstream:
    """Where the upstream copy of one file comes from.

    ``kind`` is ``"hub"`` (``repo``, ``config``, ``split`` of a Hugging Face Hub
    dataset, saved as Parquet), ``"url"`` (``url``, and ``member`` when the URL is a
    zip archive) or ``"sgd"`` (built from the Schema-Guided Dialogue JSON files).
    ``same_bytes`` says the upstream file is byte-identical to the reference copy
    (so its sha256 must match); otherwise the copy is checked by format, columns
    and ``min_rows``, and its own sha256 is recorded for later checks.
    """

    kind: str
    url: str = ""
    member: str = ""
    repo: str = ""
    config: str | None = None
    split: str = ""
    same_bytes: bool = False


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset and the checks a copy must pass.

    ``path`` is relative to the cache (and to the mirror). ``fmt`` is one of
    ``parquet``, ``text``, ``pairs`` (tab-separated pairs), ``ucr`` (UCR numeric
    table). ``rows`` (and ``sha256``, ``size``) describe the reference copy;
    ``min_rows`` is the least a copy converted from the upstream must hold.
    """

    path: str
    fmt: str
    sha256: str | None = None
    size: int | None = None
    rows: int | None = None
    min_rows: int | None = None
    columns: tuple[str, ...] = ()
    required: bool = True
    upstream: Upstream | None = None
    package: tuple[tuple[str, str], ...] = ()  # (package, path inside it) candidates


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: what it is, where it comes from, what :func:`load_dataset` returns."""

    name: str
    title: str
    source: str
    license: str
    citation: str
    returns: str
    files: tuple[FileSpec, ...] = field(default_factory=tuple)

    @property
    def packaged(self) -> bool:
        """True when the data ships inside a Python package (no download)."""
        return all(f.package for f in self.files)


_HF = "https://huggingface.co/datasets/"
_SGD = "https://github.com/google-research-datasets/dstc8-schema-guided-dialogue"
_UCR = "https://www.timeseriesclassification.com/aeon-toolkit/ECG5000.zip"
_SHAKESPEARE = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)


def _parquet(name, split, sha, size, rows, columns, upstream, min_rows=None):
    return FileSpec(
        f"{name}/{split}.parquet", "parquet", sha, size, rows, min_rows, columns, True, upstream
    )


_IMDB_COLS = ("text", "label")
_WIKIANN_COLS = ("tokens", "ner_tags", "langs", "spans")
_SGD_COLS = ("dialogue_id", "turn_index", "service", "context", "response")

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        "imdb",
        "Large Movie Review Dataset (IMDB sentiment), 25,000 train + 25,000 test reviews",
        _HF + "stanfordnlp/imdb",
        "none stated; cite Maas et al. 2011",
        "Maas et al. 2011. Learning Word Vectors for Sentiment Analysis. ACL-HLT.",
        "datasets.DatasetDict: train, test; text (str), label (ClassLabel neg/pos)",
        (
            _parquet("imdb", "train", "81a998dcfef6563df646195f2997a9671d6f7165f9ab52fb2a7704a75052236a",
                     14_235_546, 25_000, _IMDB_COLS, Upstream("hub", repo="stanfordnlp/imdb", split="train")),
            _parquet("imdb", "test", "f2ae6a6f4c2c78372de50b65790d28899ee25c1e993b9e1f8884257832bc6542",
                     13_885_126, 25_000, _IMDB_COLS, Upstream("hub", repo="stanfordnlp/imdb", split="test")),
        ),
    ),
    DatasetSpec(
        "wikiann-en",
        "WikiANN English NER (Rahimi et al. splits): 20,000 / 10,000 / 10,000 sentences",
        _HF + "unimelb-nlp/wikiann",
        "none stated; text from Wikipedia (CC BY-SA)",
        "Pan et al. 2017. Cross-lingual Name Tagging and Linking for 282 Languages. ACL; "
        "Rahimi, Li, Cohn 2019. Massively Multilingual Transfer for NER. ACL.",
        "datasets.DatasetDict: train, validation, test; tokens, ner_tags "
        "(O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC), langs, spans",
        tuple(
            _parquet("wikiann-en", split, sha, size, rows, _WIKIANN_COLS,
                     Upstream("hub", repo="unimelb-nlp/wikiann", config="en", split=split))
            for split, sha, size, rows in (
                ("train", "e2150ea39a308a333fbf0c64fa72c979f3dd85120675fae31d9f36c6a68ea37b", 944_485, 20_000),
                ("validation", "ee6d7aaec0ce3e79f00ca6c625d6cb381e953b11e2438def3562d96513ea32e4", 496_492, 10_000),
                ("test", "aa2b835b0c4d5f0d4526820ec8c7ab697a7f54716e0bbc554d3ac578c8578417", 493_872, 10_000),
            )
        ),
    ),
    DatasetSpec(
        "eng-fra",
        "English-French sentence pairs from Tatoeba (PyTorch seq2seq tutorial format)",
        "https://www.manythings.org/anki/ (from https://tatoeba.org)",
        "CC BY 2.0 FR (Tatoeba)",
        "Tatoeba, https://tatoeba.org; manythings.org, https://www.manythings.org/anki/.",
        "list of (english, french) string pairs, in file order",
        (
            FileSpec("eng-fra/eng-fra.txt", "pairs",
                     "bb4c4c3e1bee0b51f9dd488df7f890f70a197f4ff73df026fafde48cf198d673",
                     11_694_805, 168_145, 100_000,
                     upstream=Upstream("url", "https://download.pytorch.org/tutorial/data.zip",
                                       member="data/eng-fra.txt")),
            FileSpec("eng-fra/ATTRIBUTION.md", "text",
                     "fa5086770355db97d889d3abf67b5914bf4db84e52f06377c7c65e9b510fc1ef",
                     2_096, required=False),
        ),
    ),
    DatasetSpec(
        "ecg5000",
        "ECG5000 heartbeats (UCR archive): class 1-5 and 140 samples per beat",
        "https://www.timeseriesclassification.com/description.php?Dataset=ECG5000",
        "none stated; cite the UCR archive",
        "Dau et al. 2019. The UCR Time Series Archive. IEEE/CAA J. Autom. Sinica 6(6); "
        "Chen et al. 2015. A general framework for never-ending learning from time series "
        "streams. DMKD 29(6); Goldberger et al. 2000. PhysioBank, PhysioToolkit, and "
        "PhysioNet. Circulation 101(23).",
        "dict split -> (X, y): X (N, 140) float32 numpy array, y (N,) int64 classes 1-5; "
        "'train' (500 beats) always, 'test' (4,500) when its file is present",
        (
            FileSpec("ecg5000/ECG5000_TRAIN.txt", "ucr",
                     "0d96aff193311a6dc6111bf0dbd2f7d2313987fbf7a1da4a383d92563876057b",
                     1_128_500, 500, 500, upstream=Upstream("url", _UCR, member="ECG5000_TRAIN.txt", same_bytes=True)),
            FileSpec("ecg5000/ECG5000_TEST.txt", "ucr", None, None, 4_500, 4_500, required=False,
                     upstream=Upstream("url", _UCR, member="ECG5000_TEST.txt")),
        ),
    ),
    DatasetSpec(
        "tinyshakespeare",
        "Tiny Shakespeare, the char-rnn input.txt (1,115,394 characters)",
        "https://github.com/karpathy/char-rnn",
        "public domain",
        "Karpathy 2015. char-rnn, https://github.com/karpathy/char-rnn; "
        "The Unreasonable Effectiveness of Recurrent Neural Networks (blog post).",
        "str: the whole text",
        (
            FileSpec("tinyshakespeare/input.txt", "text",
                     "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                     1_115_394, 40_000, 40_000, upstream=Upstream("url", _SHAKESPEARE, same_bytes=True)),
        ),
    ),
    DatasetSpec(
        "sgd",
        "Schema-Guided Dialogue context/response pairs (one row per system turn)",
        _SGD,
        "CC BY-SA 4.0",
        "Rastogi et al. 2020. Towards Scalable Multi-domain Conversational Agents: "
        "The Schema-Guided Dialogue Dataset. AAAI 34(05).",
        "datasets.DatasetDict: train, validation, test; dialogue_id, turn_index, service, "
        "context (list of 'USER: ...'/'SYSTEM: ...', at most 4), response",
        tuple(
            _parquet("sgd", split, sha, size, rows, _SGD_COLS, Upstream("sgd", _SGD, split=split),
                     min_rows=rows)
            for split, sha, size, rows in (
                ("train", "69cc8a591c43d732f489eb29c91dca5a355787a562ecb95d3ed916361aeb5030", 6_139_079, 111_878),
                ("validation", "5d00e9ec73b8325eec7f13fdfcbc18922b6f2efebcb23789d1c7f227527ee21c", 1_104_295, 19_384),
                ("test", "58444c07548662230a1ed6e0934be8821e5913eac555ae1041f61127aa87bfb1", 1_488_380, 24_861),
            )
        ),
    ),
    DatasetSpec(
        "sunspots-yearly",
        "Yearly mean sunspot numbers, 1700-2008 (309 values), shipped with statsmodels",
        "statsmodels.datasets.sunspots (SIDC / WDC-SILSO, Royal Observatory of Belgium)",
        "public domain",
        "WDC-SILSO, Royal Observatory of Belgium, Brussels; statsmodels sunspots dataset.",
        "pandas.Series of float64 indexed by year start (DatetimeIndex, freq YS)",
        (FileSpec("sunspots-yearly", "package", rows=309,
                  package=(("statsmodels", "datasets/sunspots/sunspots.csv"),)),),
    ),
    DatasetSpec(
        "sunspots-monthly",
        "Monthly mean sunspot numbers, 1749-01 to 2009-06 (3,126 values), shipped with statsmodels",
        "statsmodels.datasets.sunspots, file src/sunspots_monthly.dat (SIDC)",
        "public domain",
        "WDC-SILSO, Royal Observatory of Belgium, Brussels; statsmodels sunspots dataset.",
        "pandas.Series of float64 indexed by month start (DatetimeIndex, freq MS); "
        "values after 2008-12 are preliminary",
        (FileSpec("sunspots-monthly", "package", rows=3_126,
                  package=(("statsmodels", "datasets/sunspots/src/sunspots_monthly.dat"),)),),
    ),
    DatasetSpec(
        "co2",
        "Mauna Loa atmospheric CO2 (ppm), monthly means 1958-03 to 2001-12, from statsmodels",
        "statsmodels.datasets.co2 (Scripps CO2 program, weekly flask samples)",
        "public domain",
        "Keeling, Whorf and the Carbon Dioxide Research Group, Scripps Institution of "
        "Oceanography; statsmodels co2 dataset.",
        "pandas.Series of float64 indexed by month start (freq MS): the mean of each month's "
        "weekly values; the few months with none are linearly interpolated",
        (FileSpec("co2", "package", rows=2_284, package=(("statsmodels", "datasets/co2/co2.csv"),)),),
    ),
    DatasetSpec(
        "airline",
        "Monthly international airline passengers (thousands), 1949-01 to 1960-12 (144 values)",
        "Box & Jenkins series G, shipped as Airline.csv with sktime or aeon",
        "public domain",
        "Box, Jenkins and Reinsel 1976. Time Series Analysis, Forecasting and Control. "
        "Series G.",
        "pandas.Series of float64 indexed by month start (freq MS)",
        (FileSpec("airline", "package", "28af0eb869db6d9fbd31d5af03993a0cbf36c0857c3eb046a068c094b60da851",
                  1_744, 144,
                  package=(("sktime", "datasets/data/Airline/Airline.csv"),
                           ("aeon", "datasets/data/Airline/Airline.csv"))),),
    ),
)  # fmt: skip

REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in DATASETS}
"""Every dataset, by name."""


def get_spec(name: str) -> DatasetSpec:
    """The registry entry of ``name``; an unknown name gets the closest matches."""
    if not isinstance(name, str) or name not in REGISTRY:
        close = difflib.get_close_matches(str(name), REGISTRY, n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise UnknownDatasetError(
            f"Unknown dataset {name!r}.{hint} Known datasets: {', '.join(REGISTRY)}."
        )
    return REGISTRY[name]
