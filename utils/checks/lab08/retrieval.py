"""The project (a retrieval chatbot): checks of the negatives sampler,
``sample_negatives(text_id, k, seed)``, and of the metric, ``recall_at_k(scores, k)``.

The sampler is checked on a pool shaped like SGD's responses: a few templated texts
repeated many times ("Have a great day.") among many single ones. Its output must hold
only negatives (no response with the positive's text, at any index), no text twice in a
row, and it must draw from a generator seeded with ``seed``, so a seed reproduces it. Recall@k is
checked on a case worked by hand (ties included) and against a ranking computed here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import passed, seeded
from utils.checks.engine import Cause, as_array, call_unchanged, compare, describe, fail, number

__all__ = ["check_recall_at_k", "check_sample_negatives"]


def _pool(rng, n: int) -> np.ndarray:
    templated = rng.integers(0, 4, size=n)  # 4 texts repeated ...
    single = 4 + np.arange(n)  # ... among texts seen once
    return np.where(rng.random(n) < 0.5, templated, single).astype(np.int64)


def _check_every_index(fn: Callable, seed: int, n: int = 7, k: int = 5) -> None:
    """A small pool of n different texts: each row takes k of its n - 1 others, so every
    index, the first and the last included, is someone's negative (a correct sampler misses
    one with a chance of about 1e-8 over two seeds)."""
    drawn = set()
    for s in (seed, seed + 1):
        out = as_array("sample_negatives(text_id, k, seed)",
                       call_unchanged(fn, "sample_negatives", np.arange(n), k, s))  # fmt: skip
        drawn |= {int(j) for j in out.ravel()}
    missing = sorted(set(range(n)) - drawn)
    if missing:
        raise fail(f"in a pool of {n} responses with {n} different texts (k = {k}, seeds {seed} "
                   f"and {seed + 1}), index {missing[0]} was never drawn as a negative.",
                   "Every response can be a negative: draw j from 0 to N - 1 with "
                   "rng.integers(N) (its upper end is excluded), not rng.integers(N - 1) or "
                   "rng.integers(1, N).")  # fmt: skip


def check_sample_negatives(fn: Callable, *, n: int = 200, k: int = 5, seed: int = 0) -> None:
    """Check ``sample_negatives(text_id, k, seed) -> (N, k) int64`` indices: each row's
    negatives have texts other than its own and other than each other, drawn from a
    generator seeded with ``seed``."""
    text_id = _pool(seeded(seed), n)
    out = call_unchanged(fn, "sample_negatives", text_id, k, seed)
    got = as_array("sample_negatives(text_id, k, seed)", out)
    if got.shape != (n, k):
        raise fail(f"sample_negatives returned shape {got.shape}, expected ({n}, {k}): k "
                   "indices for each of the N responses.")  # fmt: skip
    if got.dtype.kind not in "iu":
        raise fail(f"sample_negatives returned {got.dtype} values, expected integer indices.",
                   "Return indices into the pool (np.int64), not texts or scores.")  # fmt: skip
    if got.min() < 0 or got.max() >= n:
        raise fail(f"sample_negatives returned indices from {got.min()} to {got.max()}; the "
                   f"pool has {n} responses (0 to {n - 1}).")  # fmt: skip
    own = got == np.arange(n)[:, None]
    if own.any():
        i = int(np.argwhere(own)[0][0])
        raise fail(f"row {i} has itself among its negatives.",
                   "A response is never its own negative: skip its own index.")  # fmt: skip
    same = text_id[got] == text_id[:, None]
    if same.any():
        i, j = (int(v) for v in np.argwhere(same)[0])
        raise fail(f"row {i} (text {text_id[i]}) has a negative with the same text, at index "
                   f"{got[i, j]}.", "Compare texts (text_id), not indices: in SGD 'Have a "
                   "great day.' appears hundreds of times, and another copy of it is not a "
                   "negative.")  # fmt: skip
    repeated = [i for i in range(n) if len(set(text_id[got[i]])) < k]
    if repeated:
        i = repeated[0]
        raise fail(f"row {i} has two negatives with the same text ({sorted(text_id[got[i]])}).",
                   "Each of a row's k negatives must be a different text: keep a set of the "
                   "texts already taken.")  # fmt: skip
    again = as_array("a second call", call_unchanged(
        fn, "sample_negatives", text_id, k, seed))  # fmt: skip
    if not np.array_equal(got, again):
        raise fail("two calls with generators seeded alike returned different negatives.",
                   "Draw only from rng = np.random.default_rng(seed) (rng.integers, "
                   "rng.choice), not from np.random or random: a seed must reproduce a run.")  # fmt: skip
    other = as_array("a call with another seed", call_unchanged(
        fn, "sample_negatives", text_id, k, seed + 1))  # fmt: skip
    if np.array_equal(got, other):
        raise fail("generators seeded differently gave the same negatives.",
                   "The negatives must be random: draw them from np.random.default_rng(seed).")  # fmt: skip
    if len(np.unique(got)) < n // 2:
        raise fail(f"only {len(np.unique(got))} distinct responses were drawn for {n} rows.",
                   "Draw from the whole pool, not from a fixed few.")  # fmt: skip
    _check_every_index(fn, seed)
    passed(f"sample_negatives: {n} x {k} negatives, none with its row's text, no text twice in "
           "a row, reproducible from the seed.")  # fmt: skip


HAND = (  # scores of 4 contexts against 4 candidates (column 0 the true response)
    np.array([[0.9, 0.1, 0.2, 0.3],   # first: rank 0
              [0.5, 0.7, 0.1, 0.2],   # one above it: rank 1
              [0.4, 0.4, 0.9, 0.1],   # a tie and one above: rank 2 (a tie counts against)
              [0.0, 0.1, 0.2, 0.3]]),  # last: rank 3
    {1: 0.25, 2: 0.5, 3: 0.75, 4: 1.0},
)  # fmt: skip


def _reference(scores: np.ndarray, k: int) -> float:
    rank = (scores[:, 1:] >= scores[:, :1]).sum(1)
    return float((rank < k).mean())


def check_recall_at_k(fn: Callable, *, seed: int = 0) -> None:
    """Check ``recall_at_k(scores, k) -> float``: the share of rows whose column 0 ranks in
    the top k, a tie counting against it."""
    rng = seeded(seed)
    scores, want = HAND
    for k, w in want.items():
        got = number(f"recall_at_k(scores, {k})",
                     call_unchanged(fn, "recall_at_k", torch.from_numpy(scores), k))  # fmt: skip
        if abs(got - w) > 1e-12:
            ranks = "ranks 0, 1, 2 (a tie and one above) and 3"
            optimistic = float(((scores[:, 1:] > scores[:, :1]).sum(1) < k).mean())
            off = float(((scores[:, 1:] >= scores[:, :1]).sum(1) <= k).mean())
            why = ("A tie was counted for the true response: count the candidates scored at "
                   "least as high (>=), so a constant score gets no credit."
                   if abs(got - optimistic) < 1e-12 else
                   "Off by one: the true response is in the top k when fewer than k "
                   "candidates are ranked above it (rank < k, ranks from 0)."
                   if abs(got - off) < 1e-12 else
                   f"The 4 rows' true responses are at {ranks}.")  # fmt: skip
            raise fail(f"recall_at_k on the worked example with k = {k}: got {got}, expected {w}.",
                       why)  # fmt: skip
    for k in (1, 9):  # with k = 9 of 10, topk or a sort keeps column 0 among the tied
        const = number(f"recall_at_k(constant scores, {k})",
                       call_unchanged(fn, "recall_at_k", torch.zeros(5, 10), k))  # fmt: skip
        if const != 0:
            raise fail(f"recall_at_k gives {const} to a scorer that scores every candidate the "
                       f"same (k = {k} of 10 candidates).", "A tie counts against the true "
                       "response (>=): count the candidates scored at least as high as column "
                       "0; torch.topk and sorting break ties in any order.")  # fmt: skip
    big = rng.normal(size=(300, 10))
    for k in (1, 2, 5):
        got = number(f"recall_at_k(scores, {k})",
                     call_unchanged(fn, "recall_at_k", torch.from_numpy(big), k))  # fmt: skip
        compare(f"recall_at_k(scores (300, 10), {k})", np.array(got), np.array(_reference(big, k)),
                threshold=1e-12, causes=[
                    Cause(np.array(_reference(-big, k)), "The order is reversed: a higher score "
                          "is a better match.")],
                hint="rank = number of candidates scored >= column 0; in the top k when rank "
                     "< k.")  # fmt: skip
    numpy_ok = call_unchanged(fn, "recall_at_k", big, 1)
    if numpy_ok is None or isinstance(numpy_ok, str):
        raise fail(f"recall_at_k of a NumPy array returned a {describe(numpy_ok)}.")
    passed(
        "recall_at_k: the worked example (ties count against), constant scores get 0, and "
        "300 random rows for k = 1, 2, 5."
    )
