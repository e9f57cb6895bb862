"""Schema-Guided Dialogue as context/response pairs, and the fixed 1-of-N test sets.

``load_pairs()`` reads the dataset through :mod:`utils.data` (the course's verified
cache; the mirror holds about 75 % of the dialogues, see ``data/README.md``). The
splits are SGD's own, which divide the corpus **by dialogue**: no dialogue has turns in
two splits. (SGD numbers dialogues per split, so ``1_00000`` in train and ``1_00000`` in
test are different dialogues; a dialogue is keyed by its split and id.)

The evaluation sets are fixed by a seed so that every model is scored on the same
candidates: for each test pair, the true response and ``n - 1`` others drawn from the
same split's responses, all with different texts (a templated reply such as "Have a
great day." cannot be its own distractor).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from chatbot.text import tokenize, tokenize_turns

SPLITS = ("train", "validation", "test")


@dataclass
class Pairs:
    """One split's pairs. ``text_id[i]`` numbers ``responses[i]``'s text: equal texts
    share an id, so duplicates can be found without comparing strings."""

    split: str
    dialogue: list[str]
    contexts: list[list[str]]
    responses: list[str]
    text_id: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.responses)

    def context_tokens(self) -> list[list[str]]:
        return [tokenize_turns(c) for c in self.contexts]

    def response_tokens(self) -> list[list[str]]:
        return [tokenize(r) for r in self.responses]

    def subset(self, index) -> Pairs:
        index = np.asarray(index)
        return Pairs(
            self.split,
            [self.dialogue[i] for i in index],
            [self.contexts[i] for i in index],
            [self.responses[i] for i in index],
            self.text_id[index],
        )


def text_ids(texts: list[str]) -> np.ndarray:
    """Equal strings -> equal ids (numbered in order of first appearance)."""
    seen: dict[str, int] = {}
    return np.array([seen.setdefault(t, len(seen)) for t in texts], dtype=np.int64)


def load_pairs(ds=None, *, stand_in: bool = False, progress: bool = False) -> dict[str, Pairs]:
    """train / validation / test pairs of SGD: from ``ds`` (what ``load_dataset("sgd")``
    returned) or loaded here (``stand_in=True``: a small synthetic stand-in; loaded once
    per process, as the commands of ``python -m chatbot`` share it)."""
    if ds is None:
        return _loaded(stand_in, progress)
    out = {}
    for split in SPLITS:
        d = ds[split]
        responses = list(d["response"])
        out[split] = Pairs(
            split,
            [f"{split}/{x}" for x in d["dialogue_id"]],
            [list(c) for c in d["context"]],
            responses,
            text_ids(responses),
        )
    shared = set(out["train"].dialogue) & (
        set(out["validation"].dialogue) | set(out["test"].dialogue)
    )
    assert not shared, "a dialogue in two splits"
    return out


@functools.cache
def _loaded(stand_in: bool, progress: bool) -> dict[str, Pairs]:
    from utils.data import load_dataset

    return load_pairs(load_dataset("sgd", stand_in=stand_in, progress=progress))


def one_of_n(pairs: Pairs, n: int = 10, *, seed: int = 0, limit: int | None = None) -> np.ndarray:
    """Candidate sets for the 1-of-``n`` test of Lowe et al. (2015): ``(N, n)`` indices into
    ``pairs.responses``. Column 0 is the pair being scored (its context and its true
    response); columns 1..n-1 are distractors from the same split whose texts differ from
    the truth and from each other.

    ``limit``: score only the first ``limit`` pairs of a seeded shuffle (a quick run).
    """
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(pairs))[:limit] if limit else np.arange(len(pairs))
    # one index per distinct text, so each draw is a different text
    first = np.unique(pairs.text_id, return_index=True)[1]
    if len(first) < n:
        raise ValueError(
            f"1-of-{n} needs at least {n} distinct responses; the split has {len(first)}"
        )
    out = np.empty((len(rows), n), dtype=np.int64)
    for r, i in enumerate(rows):
        picked = [i]
        texts = {pairs.text_id[i]}
        while len(picked) < n:
            for j in first[rng.integers(len(first), size=2 * n)]:
                if pairs.text_id[j] not in texts and len(picked) < n:
                    picked.append(j)
                    texts.add(pairs.text_id[j])
        out[r] = picked
    return out
