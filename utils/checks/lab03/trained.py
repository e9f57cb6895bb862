"""Lab 3: the check of the trained sentiment model, ``predict_positive(texts)``.

The model the notebook trained lives in the student's kernel, so the grader calls this
function there (the lab lists it in ``kernel_functions``). The check sends reviews of the
IMDB **test** split (never trained on), keeps their labels, and computes the accuracy
itself from the probabilities that come back.

Before the reviews go out, 3 % of their words are replaced by random words of the review
itself and the order of their sentences is rotated (drawn with ``seeded``, so they change
with every grading run): a function that looks the review up in the data file finds
nothing, while a model that reads sentiment barely notices. The check also holds the
function to what a classifier must do: one probability in [0, 1] per review, the same
answer twice (dropout off), and each review's answer independent of the others in the
call (a function that sorts reviews by length for its batches must put them back).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import check_finite, passed, seeded
from utils.checks.engine import call_unchanged, describe, fail

__all__ = ["check_predict_positive", "imdb_test"]


@functools.cache
def imdb_test() -> tuple[tuple[str, ...], np.ndarray]:
    """The IMDB test split's reviews and labels (1: positive)."""
    from utils.data import load_dataset

    test = load_dataset("imdb", progress=False)["test"]
    return tuple(test["text"]), np.asarray(test["label"])


def _perturbed(text: str, rng: np.random.Generator) -> str:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
    if len(sentences) > 1:
        k = int(rng.integers(1, len(sentences)))
        sentences = sentences[k:] + sentences[:k]
    words = " ".join(sentences).split(" ")
    swap = rng.choice(len(words), size=max(1, len(words) * 3 // 100), replace=False)
    for i in swap:
        words[i] = words[int(rng.integers(len(words)))]
    return " ".join(words)


def _probabilities(fn: Callable, texts: list[str]) -> np.ndarray:
    out = call_unchanged(fn, "predict_positive", texts)
    if isinstance(out, list | tuple):
        out = np.asarray(out, dtype=float) if all(np.isscalar(v) for v in out) else out
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().double().numpy()
    if not isinstance(out, np.ndarray):
        raise fail(f"predict_positive(texts) returned a {describe(out)}, expected a tensor of "
                   f"{len(texts)} probabilities.", "Did it forget to `return` them?" if out is None else None)  # fmt: skip
    out = out.astype(np.float64)
    if out.shape != (len(texts),):
        raise fail(f"predict_positive(texts) has shape {out.shape}, expected ({len(texts)},): one "
                   "probability per review.", "Squeeze the model's (N, 1) output to (N,).")  # fmt: skip
    check_finite("predict_positive(texts)", out)
    if out.min() < 0 or out.max() > 1:
        raise fail(f"predict_positive(texts) returned values from {out.min():.3g} to {out.max():.3g}, "
                   "expected probabilities in [0, 1].", "Apply torch.sigmoid to the model's logits.")  # fmt: skip
    return out


def _not_probabilities(p: np.ndarray) -> None:
    """Fail for outputs in [0, 1] that are not each review's probability of being positive."""
    what = f"predict_positive(texts) for {len(p)} reviews"
    if abs(p.sum() - 1) < 1e-3:
        raise fail(f"{what} sum to 1 over the reviews.", "That is a softmax over the reviews (the "
                   "model gives one logit per review): apply torch.sigmoid to each logit.")  # fmt: skip
    if np.isin(p, (0.0, 1.0)).all():
        raise fail(f"{what} are all 0 or 1: labels, not probabilities.", "Return "
                   "torch.sigmoid(logits) itself, without a threshold.")  # fmt: skip
    if p.min() >= 0.5 and p.max() <= 1 / (1 + np.exp(-1)) + 1e-6 and np.ptp(p) > 1e-3:
        raise fail(f"{what} all lie between 0.5 and sigmoid(1) = 0.731.", "That is the sigmoid of "
                   "a probability: apply torch.sigmoid once, to the logits (does the model "
                   "already return probabilities?).")  # fmt: skip


def check_predict_positive(fn: Callable, *, n: int = 600, seed: int = 0,
                           min_accuracy: float | None = None) -> None:  # fmt: skip
    """Check ``predict_positive(texts) -> (N,)`` probabilities that each review is positive,
    on ``n`` reviews of the IMDB test split with perturbations; with ``min_accuracy``, the
    accuracy at a threshold of 0.5 must reach it."""
    texts, labels = imdb_test()
    rng = seeded(seed)
    picks = rng.choice(len(texts), size=n, replace=False)
    sent = [_perturbed(texts[i], rng) for i in picks]
    p = _probabilities(fn, sent)
    _not_probabilities(p)
    once, again = _probabilities(fn, sent[:8]), _probabilities(fn, sent[:8])
    if not np.allclose(again, once, atol=1e-5):
        raise fail("predict_positive gave different probabilities for the same reviews on a second "
                   f"call: {once[:3].round(4).tolist()} then {again[:3].round(4).tolist()}.",
                   "Put the model in eval mode (model.eval()) so that dropout is off.")  # fmt: skip
    order = rng.permutation(16)
    shuffled = _probabilities(fn, [sent[i] for i in order])
    alone = _probabilities(fn, sent[:1])
    parts = ((shuffled, p[:16][order]), (alone, p[:1]), (once, p[:8]))
    if not all(np.allclose(a, b, atol=1e-4) for a, b in parts):
        raise fail("a review's probability changed with the other reviews of the call (their order "
                   "or their number).", "If you sort the reviews by length to batch them, put the "
                   "probabilities back in the order of `texts`; pad each batch only to its own "
                   "longest review and mask the padding.")  # fmt: skip
    accuracy = float(((p > 0.5) == labels[picks]).mean())
    where = (
        f"{n} reviews of the test split with 3 % of their words swapped and their sentences rotated"
    )
    if min_accuracy is not None and accuracy < min_accuracy:
        hint = ("It is below chance: are the labels the right way round (1 = positive)?" if accuracy < 0.45
                else "Is the trained model used, with the vocabulary and tokenizer it was trained with?")  # fmt: skip
        raise fail(
            f"predict_positive: accuracy {accuracy:.3f} on {where}, below {min_accuracy}.", hint
        )
    bar = f" (pass at {min_accuracy})" if min_accuracy is not None else ""
    passed(f"predict_positive: one probability per review, the same on a second call and in any "
           f"order; accuracy {accuracy:.3f}{bar} on {where}.")  # fmt: skip
