"""Datasets through one registry, with verified downloads, a mirror, and honest offline errors.

In a notebook::

    from utils.data import load_dataset
    imdb = load_dataset("imdb")            # datasets.DatasetDict: train, test
    text = load_dataset("tinyshakespeare") # str

From a shell: ``make data`` (fetch everything), ``python -m utils.data status``,
``python -m utils.data verify``. Where the data comes from and in which order:
:mod:`utils.data.download`; what each name returns: :mod:`utils.data.loaders`;
the datasets themselves: :mod:`utils.data.registry` and ``data/README.md``.

Modules: ``registry`` (one entry per dataset), ``verify`` (file checks),
``download`` (cache -> mirror -> upstream), ``upstream`` (network),
``loaders`` (files -> Python objects), ``text`` (tokenizers, Vocab, collate,
bucketing), ``translation`` (Lab 5's eng-fra pairs and held-out split),
``synthetic`` (stand-ins), ``report`` (status and verify tables).
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
from utils.data.registry import REGISTRY, get_spec

# The rest needs NumPy, pandas or torch: imported on first use, so the registry
# (and ``python -m utils.data status``) loads without them.
_LAZY = {
    "cache_dir": "utils.data.download",
    "fetch": "utils.data.download",
    "load_dataset": "utils.data.loaders",
    **dict.fromkeys(
        ("EOS", "PAD", "SOS", "UNK", "BucketBatchSampler", "Vocab", "pad_collate",
         "tokenize_chars", "tokenize_words"),
        "utils.data.text",
    ),
}  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'utils.data' has no attribute {name!r}")


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
