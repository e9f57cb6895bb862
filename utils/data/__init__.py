"""Datasets through one registry, with verified downloads, a mirror, and honest offline errors.

In a notebook::

    from utils.data import load_dataset
    imdb = load_dataset("imdb")            # datasets.DatasetDict: train, test
    text = load_dataset("tinyshakespeare") # str

From a shell: ``make data`` (fetch everything), ``python -m utils.data status``,
``python -m utils.data verify``. Where the data comes from and in which order:
:mod:`utils.data.fetch`; what each name returns: :mod:`utils.data.loaders`;
the datasets themselves: :mod:`utils.data.registry` and ``data/README.md``.

Modules: ``registry`` (one entry per dataset), ``verify`` (file checks),
``fetch`` (cache -> mirror -> upstream), ``upstream`` (network),
``loaders`` (files -> Python objects), ``text`` (tokenizers, Vocab, collate,
bucketing), ``synthetic`` (stand-ins), ``report`` (status and verify tables).
"""

from utils.data.errors import (
    ChecksumError,
    CorruptFileError,
    DataError,
    DatasetUnavailableError,
    EmptyFileError,
    MirrorMissingError,
    OfflineError,
    RowCountError,
    SchemaError,
    SourceError,
    TruncatedFileError,
    UnknownDatasetError,
    UnreadableFileError,
    VerificationError,
)
from utils.data.fetch import cache_dir, fetch
from utils.data.loaders import load_dataset
from utils.data.registry import REGISTRY, get_spec
from utils.data.text import (
    EOS,
    PAD,
    SOS,
    UNK,
    BucketBatchSampler,
    Vocab,
    pad_collate,
    tokenize_chars,
    tokenize_words,
)

__all__ = [
    "EOS",
    "PAD",
    "REGISTRY",
    "SOS",
    "UNK",
    "BucketBatchSampler",
    "ChecksumError",
    "CorruptFileError",
    "DataError",
    "DatasetUnavailableError",
    "EmptyFileError",
    "MirrorMissingError",
    "OfflineError",
    "RowCountError",
    "SchemaError",
    "SourceError",
    "TruncatedFileError",
    "UnknownDatasetError",
    "UnreadableFileError",
    "VerificationError",
    "Vocab",
    "cache_dir",
    "fetch",
    "get_spec",
    "load_dataset",
    "pad_collate",
    "tokenize_chars",
    "tokenize_words",
]
