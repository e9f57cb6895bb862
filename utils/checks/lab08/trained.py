"""The project (a retrieval chatbot): the check of the trained model,
``rank_responses(contexts, candidates)``.

The model lives in the student's kernel, so the grader calls this function there (the
project lists it in ``kernel_functions``). The check sends contexts of SGD's **test** split
(no dialogue of it is trained on), each with its true response and 9 distractors in a
random order, and computes Recall@1 itself from the scores that come back.

The contexts are changed a little before they go out (the oldest turn dropped from some,
one word swapped for another of the same context), with a seed that changes with every
grading run, so a lookup in the data file finds nothing while a model barely notices.
The scores must be finite, one per candidate, the same when asked twice, and they must
follow the candidates when their order changes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import check_finite, passed, seeded
from utils.checks.engine import call_unchanged, describe, fail

__all__ = ["check_rank_responses", "sgd_test"]


@functools.cache
def sgd_test() -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]:
    """SGD's test split: the contexts (tuples of turns) and their responses."""
    from utils.data import load_dataset

    test = load_dataset("sgd", progress=False)["test"]
    return tuple(tuple(c) for c in test["context"]), tuple(test["response"])


def _perturbed(turns: tuple[str, ...], rng: np.random.Generator) -> list[str]:
    turns = list(turns)
    if len(turns) >= 3 and rng.random() < 0.5:
        turns = turns[1:]
    t = int(rng.integers(len(turns)))
    head, _, rest = turns[t].partition(" ")
    words = rest.split(" ")
    if len(words) > 2:
        words[int(rng.integers(len(words)))] = words[int(rng.integers(len(words)))]
    turns[t] = f"{head} {' '.join(words)}"
    return turns


def _draw(n: int, rng: np.random.Generator):
    contexts, responses = sgd_test()
    rows = rng.choice(len(responses), size=n, replace=False)
    texts = sorted(set(responses))
    ctx, cands, truth = [], [], []
    for i in rows:
        others = set()
        while len(others) < 9:
            t = texts[int(rng.integers(len(texts)))]
            if t != responses[i]:
                others.add(t)
        c = [responses[i], *sorted(others)]
        order = rng.permutation(10)
        cands.append([c[j] for j in order])
        truth.append(int(np.argmin(order)))  # where the true response went
        ctx.append(_perturbed(contexts[i], rng))
    return ctx, cands, np.array(truth)


def _scores(fn: Callable, contexts, candidates) -> np.ndarray:
    out = call_unchanged(fn, "rank_responses", contexts, candidates)
    if out is None:
        raise fail("rank_responses(contexts, candidates) returned None, expected a tensor (N, n) "
                   "of scores.", "Did it forget to `return`?")  # fmt: skip
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().double().numpy()
    if isinstance(out, list):
        try:
            out = np.asarray(out, dtype=float)
        except (TypeError, ValueError):
            pass
    if not isinstance(out, np.ndarray) or out.dtype.kind not in "fiu":
        raise fail(f"rank_responses(contexts, candidates) returned a {describe(out)}, expected "
                   "a tensor (N, n) of scores: one per candidate.")  # fmt: skip
    shape = (len(contexts), len(candidates[0]))
    if out.shape != shape:
        raise fail(f"rank_responses returned shape {tuple(out.shape)}, expected {shape}: one "
                   "score per candidate of each context.")  # fmt: skip
    check_finite("rank_responses' scores", out)
    return out.astype(np.float64)


def check_rank_responses(fn: Callable, *, n: int = 200, seed: int = 0,
                         min_recall: float = 0.0) -> None:  # fmt: skip
    """Check ``rank_responses(contexts, candidates) -> (N, n)`` scores on SGD test contexts:
    consistent, following the candidates' order, and Recall@1 of 10 at least
    ``min_recall``."""
    rng = seeded(seed)
    contexts, candidates, truth = _draw(n, rng)
    S = _scores(fn, contexts, candidates)
    again = _scores(fn, contexts[:20], candidates[:20])
    if not np.allclose(again, S[:20], rtol=1e-4, atol=1e-5):
        raise fail(
            "rank_responses gave different scores for the same contexts the second time.",
            "Put the model in eval mode (dropout off) and score under torch.no_grad().",
        )
    flipped = [c[::-1] for c in candidates[:20]]
    S_flip = _scores(fn, contexts[:20], flipped)
    if not np.allclose(S_flip[:, ::-1], S[:20], rtol=1e-4, atol=1e-5):
        raise fail(
            "with the candidates in reverse order the scores did not follow them.",
            "Score each candidate on its own text: score j belongs to candidate j.",
        )
    true_score = S[np.arange(n), truth]
    above = (S >= true_score[:, None]).sum(1) - 1  # candidates at least as good, truth aside
    recall = float((above == 0).mean())
    if recall < min_recall:
        raise fail(f"Recall@1 of 10 on {n} SGD test contexts is {recall:.3f}; at least "
                   f"{min_recall:.2f} is expected.", "Train the model further (Milestone 4), "
                   "and check that rank_responses scores with the trained model.")  # fmt: skip
    passed(f"rank_responses: {n} SGD test contexts, 10 candidates each: Recall@1 "
           f"{recall:.3f} (at least {min_recall:.2f}); consistent, and the scores follow the "
           "candidates.")  # fmt: skip
