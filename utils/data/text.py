"""Text helpers: tokenizers, a vocabulary, padded batches and length buckets.

Which tokenizer for which chapter:

| use | tokenizer | example |
| --- | --- | --- |
| sentiment (IMDB) | :func:`tokenize_words` (drops ``<br />``, lower-cases) | ``"Great film!<br />"`` -> ``["great", "film", "!"]`` |
| translation (eng-fra) | :func:`tokenize_words` (keeps accents, splits ``'``) | ``"J'ai froid."`` -> ``["j'", "ai", "froid", "."]`` |
| NER (WikiANN) | none: the data is already a list of tokens | ``["R.H.", "Saunders"]`` |
| generation (Shakespeare) | :func:`tokenize_chars` | ``"To be"`` -> ``["T", "o", " ", "b", "e"]`` |
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Sampler

PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
SPECIALS = (PAD, UNK, SOS, EOS)
"""The special tokens; their ids are 0, 1, 2, 3 in every :class:`Vocab`."""

_WORD = re.compile(r"\w+'|\w+(?:[-.]\w+)*|[^\w\s]")


def tokenize_words(text: str, lower: bool = True) -> list[str]:
    """Split text into words and punctuation marks.

    HTML line breaks (``<br />``) become spaces, words keep accents and inner
    hyphens, an elided article keeps its apostrophe (``"j'"``), each punctuation
    mark is its own token.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = re.sub(r"<br\s*/?>", " ", text)
    return _WORD.findall(text.lower() if lower else text)


def tokenize_chars(text: str) -> list[str]:
    """Split text into characters (spaces and newlines included)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return list(text)


class Vocab:
    """A token <-> id mapping with ``<pad>`` = 0, ``<unk>`` = 1, ``<sos>`` = 2, ``<eos>`` = 3.

    Build it from tokenized texts: ``vocab = Vocab.build(token_lists, min_freq=2)``.
    Tokens are ordered by frequency (ties alphabetically), so ids are reproducible.
    Unknown tokens map to ``<unk>``.
    """

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tokens[: len(SPECIALS)] != list(SPECIALS):
            tokens = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        if len(set(tokens)) != len(tokens):
            raise ValueError("Vocab tokens must be distinct")
        self.itos: list[str] = tokens
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.pad_id, self.unk_id, self.sos_id, self.eos_id = 0, 1, 2, 3

    @classmethod
    def build(cls, texts: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None):
        """A vocabulary of the tokens seen at least ``min_freq`` times (at most ``max_size``,
        specials included)."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of token lists, not one string")
        counts = Counter(token for tokens in texts for token in tokens)
        ranked = sorted((t for t, c in counts.items() if c >= min_freq and t not in SPECIALS),
                        key=lambda t: (-counts[t], t))  # fmt: skip
        if max_size is not None:
            if max_size < len(SPECIALS):
                raise ValueError(f"max_size must be at least {len(SPECIALS)} (the specials)")
            ranked = ranked[: max_size - len(SPECIALS)]
        return cls(list(SPECIALS) + ranked)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, self.unk_id)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self.itos[4:9]})"

    def encode(
        self, tokens: Sequence[str], add_sos: bool = False, add_eos: bool = False
    ) -> torch.Tensor:
        """Token ids of ``tokens``: returns ``(T,)`` int64 (``T`` counts added ``<sos>``/``<eos>``)."""
        ids = [self.sos_id] * add_sos + [self[t] for t in tokens] + [self.eos_id] * add_eos
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids, strip_specials: bool = True) -> list[str]:
        """Tokens of ``ids: (T,)``; stops at ``<eos>`` and drops ``<pad>``/``<sos>`` when stripping."""
        tokens = []
        for i in torch.as_tensor(ids).tolist():
            if not 0 <= i < len(self):
                raise ValueError(f"id {i} is outside the vocabulary (size {len(self)})")
            if strip_specials and i == self.eos_id:
                break
            if not (strip_specials and i in (self.pad_id, self.sos_id)):
                tokens.append(self.itos[i])
        return tokens

    def save(self, path: str | Path) -> None:
        """Write the tokens, in id order, as JSON."""
        Path(path).write_text(json.dumps(self.itos, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        return cls(json.loads(Path(path).read_text()))


def pad_collate(batch, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Collate variable-length sequences into one padded batch.

    ``batch`` is a list of ``N`` items, each ``x`` or ``(x, y)``: ``x: (T_i,)`` token
    ids (tensor or list), ``y`` a label (int) or a sequence ``(T_i',)``.

    Returns a dict with ``X: (N, T)`` int64 padded with ``pad_id``, ``lengths: (N,)``
    int64, ``mask: (N, T)`` bool (True on real tokens) and, when items have
    targets, ``Y: (N,)`` for labels or ``(N, T')`` padded with ``pad_id`` plus
    ``Y_lengths`` and ``Y_mask`` for sequences. Use it as
    ``DataLoader(data, collate_fn=pad_collate)``.
    """
    if len(batch) == 0:
        raise ValueError("pad_collate got an empty batch")
    pairs = isinstance(batch[0], tuple | list) and len(batch[0]) == 2 and not _is_ids(batch[0])
    xs = [item[0] for item in batch] if pairs else list(batch)
    out = dict(zip(("X", "lengths", "mask"), _pad(xs, pad_id, "x")))
    if pairs:
        ys = [item[1] for item in batch]
        if all(torch.as_tensor(y).dim() == 0 for y in ys):
            out["Y"] = torch.as_tensor([torch.as_tensor(y).item() for y in ys])
        else:
            out["Y"], out["Y_lengths"], out["Y_mask"] = _pad(ys, pad_id, "y")
    return out


def _is_ids(item) -> bool:
    """True when ``item`` is a plain sequence of two token ids rather than an (x, y) pair."""
    return all(isinstance(v, int) for v in item)


def _pad(seqs, pad_id: int, what: str):
    seqs = [torch.as_tensor(s, dtype=torch.long) for s in seqs]
    for i, s in enumerate(seqs):
        if s.dim() != 1:
            raise ValueError(
                f"item {i}: {what} must be a 1-D sequence of ids, got shape {tuple(s.shape)}"
            )
    lengths = torch.tensor([len(s) for s in seqs])
    if (lengths == 0).any():
        raise ValueError(f"item {int((lengths == 0).nonzero()[0])}: {what} is empty (length 0)")
    padded = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    mask = torch.arange(padded.shape[1])[None, :] < lengths[:, None]
    return padded, lengths, mask


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices whose sequences have similar lengths (less padding).

    The indices are shuffled, cut into pools of ``batch_size * pool_factor``,
    each pool is sorted by length and cut into batches, and the batches are
    shuffled. Deterministic for a given ``seed`` and epoch (call
    :meth:`set_epoch` to get a new order each epoch). With ``shuffle=False`` the
    batches follow sorted length order. Use it as
    ``DataLoader(data, batch_sampler=BucketBatchSampler(lengths, 32), collate_fn=pad_collate)``.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, *, shuffle: bool = True,
                 drop_last: bool = False, pool_factor: int = 50, seed: int = 0):  # fmt: skip
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if pool_factor < 1:
            raise ValueError(f"pool_factor must be at least 1, got {pool_factor}")
        self.lengths = [int(n) for n in lengths]
        if not self.lengths:
            raise ValueError("lengths is empty: nothing to batch")
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.pool_factor, self.seed, self.epoch = pool_factor, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Use a different (still deterministic) order for epoch ``epoch``."""
        self.epoch = epoch

    def __iter__(self):
        rng = random.Random(self.seed * 100_003 + self.epoch)
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
            pool = self.batch_size * self.pool_factor
        else:
            pool = len(order)
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: self.lengths[i])
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            rng.shuffle(batches)
        return iter(batches)

    def __len__(self) -> int:
        n, pool = len(self.lengths), self.batch_size * self.pool_factor
        pool = pool if self.shuffle else n
        sizes = [min(pool, n - start) for start in range(0, n, pool)]
        if self.drop_last:
            return sum(size // self.batch_size for size in sizes)
        return sum(-(-size // self.batch_size) for size in sizes)
