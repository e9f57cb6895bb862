"""English-French pairs as the translation lab (Lab 5) uses them: the filter of PyTorch's
seq2seq translation tutorial and one fixed held-out split.

The tutorial normalises both sides (:func:`normalize`: lower case, accents dropped, every
run of characters outside ``a-z ! ?`` one space) and keeps a pair when both sides have
fewer than ``MAX_WORDS`` words and the English side starts with one of ``ENG_PREFIXES``
("i am", "he is", ...): 13,643 pairs of the file, in file order. :func:`split_pairs`
shuffles their indices with ``random.Random(seed)`` and holds out the first tenth::

    pairs = tutorial_pairs(load_dataset("eng-fra"))
    train, test = split_pairs(pairs)          # 12,279 and 1,364 pairs

Each pair keeps the original French sentence too (accents, apostrophes, punctuation): a
model can learn to write it, and BLEU can be measured against what a reader sees.
"""

from __future__ import annotations

import random
import re
import unicodedata
from typing import NamedTuple

ENG_PREFIXES = (
    "i am ", "i m ", "he is", "he s ", "she is", "she s ", "you are", "you re ",
    "we are", "we re ", "they are", "they re ",
)  # fmt: skip
"""The English beginnings the tutorial keeps (after :func:`normalize`)."""

MAX_WORDS = 10
"""A kept pair has fewer than this many words on each side (after :func:`normalize`)."""


class TranslationPair(NamedTuple):
    """``english`` and ``french`` normalised (:func:`normalize`); ``french_original`` as in
    the file."""

    english: str
    french: str
    french_original: str


def unicode_to_ascii(s: str) -> str:
    """Drop the accents: ``"été"`` -> ``"ete"`` (NFD, combining marks removed)."""
    return "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn")


def normalize(s: str) -> str:
    """The tutorial's normalisation: ``"J'ai froid."`` -> ``"j ai froid"``, ``"Va !"`` -> ``"va !"``."""
    if not isinstance(s, str):
        raise TypeError(f"expected a str, got {type(s).__name__}")
    s = unicode_to_ascii(s.lower().strip())
    s = re.sub(r"([.!?])", r" \1", s)
    s = re.sub(r"[^a-zA-Z!?]+", r" ", s)
    return s.strip()


def keep(english: str, french: str) -> bool:
    """The tutorial's filter on a normalised pair."""
    return (
        len(english.split(" ")) < MAX_WORDS
        and len(french.split(" ")) < MAX_WORDS
        and english.startswith(ENG_PREFIXES)
    )


def tutorial_pairs(raw_pairs) -> list[TranslationPair]:
    """The pairs the tutorial keeps, in file order, from ``load_dataset("eng-fra")``'s
    ``(english, french)`` tuples."""
    out = []
    for i, pair in enumerate(raw_pairs):
        if len(pair) < 2 or not all(isinstance(x, str) for x in pair[:2]):
            raise ValueError(f"pair {i} is not two strings: {pair!r}")
        english, french = normalize(pair[0]), normalize(pair[1])
        if keep(english, french):
            out.append(TranslationPair(english, french, pair[1].strip()))
    if not out:
        raise ValueError("no pair passes the tutorial's filter: is this the eng-fra file?")
    return out


def split_pairs(pairs, seed: int = 0):
    """``(train, test)``: the indices shuffled by ``random.Random(seed)``, the first
    ``len(pairs) // 10`` held out as the test split, in that shuffled order."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_test = len(pairs) // 10
    return [pairs[i] for i in order[n_test:]], [pairs[i] for i in order[:n_test]]


_NO_SPACE_BEFORE = {".", ",", ")", "...", "…"}


def detokenize(tokens) -> str:
    """French tokens of :func:`utils.data.text.tokenize_words` back to a sentence: no space
    after an elided article (``"j'" "ai"`` -> ``"j'ai"``) or before ``. , )``; French
    typography keeps the space before ``! ? : ;``."""
    out = ""
    for token in tokens:
        glue = not out or out.endswith(("'", "(")) or token in _NO_SPACE_BEFORE
        out += token if glue else " " + token
    return out
