"""Words in, ids out: the chatbot's tokeniser and vocabulary.

A context is the last few turns of a dialogue, each written ``"USER: ..."`` or
``"SYSTEM: ..."``; the speaker becomes a token of its own (``__user__``,
``__system__``) so the encoder knows who said what. Words are lower-cased; a
word, a number or a single punctuation mark is one token.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

PAD, UNK, USER, SYSTEM = "<pad>", "<unk>", "__user__", "__system__"
SPECIALS = (PAD, UNK, USER, SYSTEM)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_SPEAKER = {"USER:": USER, "SYSTEM:": SYSTEM}


def tokenize(text: str) -> list[str]:
    """``"Book it for 7 pm, please."`` -> ``['book', 'it', 'for', '7', 'pm', ',', 'please', '.']``."""
    return _TOKEN.findall(text.lower())


def tokenize_turns(turns: Sequence[str]) -> list[str]:
    """The tokens of a context: each turn's speaker token, then its words.

    ``["USER: I'm hungry.", "SYSTEM: Where?"]`` ->
    ``['__user__', "i'm", 'hungry', '.', '__system__', 'where', '?']``. A turn without a
    speaker prefix is the user's (what a person types into the service).
    """
    tokens = []
    for turn in turns:
        head, _, rest = turn.partition(" ")
        if head in _SPEAKER:
            tokens.append(_SPEAKER[head])
            tokens += tokenize(rest)
        else:
            tokens.append(USER)
            tokens += tokenize(turn)
    return tokens


class Vocab:
    """Token <-> id. Id 0 is padding and id 1 stands for every unknown word."""

    def __init__(self, tokens: Sequence[str]):
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("a vocabulary lists each token once")

    @classmethod
    def build(cls, texts: Iterable[list[str]], min_count: int = 2) -> Vocab:
        """The tokens seen at least ``min_count`` times in ``texts`` (token lists), most
        frequent first (ties in order of first appearance)."""
        counts = Counter(t for tokens in texts for t in tokens)
        kept = [t for t, c in counts.most_common() if c >= min_count and t not in SPECIALS]
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        unk = self.stoi[UNK]
        return [self.stoi.get(t, unk) for t in tokens]

    def unknown(self, tokens: Sequence[str]) -> list[str]:
        """The tokens this vocabulary does not know, in order, each once."""
        return list(dict.fromkeys(t for t in tokens if t not in self.stoi))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.itos, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocab:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))


def pad_batch(
    seqs: Sequence[Sequence[int]], max_len: int, *, keep: str = "start"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Id lists -> ``x`` (N, T) padded with 0 and ``lengths`` (N,), T the longest kept length.

    Each sequence is cut to ``max_len`` ids, keeping its ``"start"`` (a response) or its
    ``"end"`` (a context: the most recent turns matter most). An empty sequence keeps
    one padding id and length 1, so every row has something to read.
    """
    if keep not in ("start", "end"):
        raise ValueError("keep is 'start' or 'end'")
    cut = [list(s[:max_len] if keep == "start" else s[-max_len:]) or [0] for s in seqs]
    lengths = torch.tensor([len(s) for s in cut], dtype=torch.long)
    x = torch.zeros(len(cut), int(lengths.max()) if cut else 1, dtype=torch.long)
    for i, s in enumerate(cut):
        x[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return x, lengths
