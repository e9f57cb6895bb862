"""Lab 3: the check of attention pooling over a padded batch of encoder outputs,
``attention_pool(outputs, scores, mask)``.

The inputs are built so that pooling over padding shows: the outputs at padding positions
hold large random values, not zeros, and the scores there are the largest of their row.
The reference is ``torch.softmax`` over the scores with the padding set to ``-inf``, and the
weighted sum; gradients come from autograd. Known wrong answers (the padding given weight,
the mask applied after the softmax, padding scores set to 0, a softmax over the batch, the
scores divided by sqrt(D), the sum divided by the lengths) are the same reference with one
thing changed; non-finite weights are told apart (an inverted mask, log-probabilities, an
overflow of exp).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import passed, seeded
from utils.checks.engine import Cause, call_unchanged, compare, fail, keeps_graph, tensor, unpack
from utils.checks.lab03.common import lengths_for, mask_of

__all__ = ["check_attention_pool"]

THRESHOLD = 1e-9


def _batch(rng: np.random.Generator, B: int, T: int, D: int):
    lengths = lengths_for(rng, B, T)
    mask = mask_of(lengths, T)
    outputs = torch.from_numpy(rng.normal(size=(B, T, D)))
    outputs = torch.where(mask.unsqueeze(-1), outputs, 5.0 + 3.0 * outputs)
    return lengths, mask, outputs


def _grad(value, wrt: list[torch.Tensor], R: torch.Tensor) -> np.ndarray:
    if not (isinstance(value, torch.Tensor) and value.requires_grad):
        return np.zeros(sum(w.numel() for w in wrt))
    grads = torch.autograd.grad((value * R).sum(), wrt, allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(w)).reshape(-1) for g, w in zip(grads, wrt)]
    ).numpy()


def _non_finite(weights: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor) -> None:
    """Fail for weights with NaN or inf, naming the likely cause."""
    bad = ~torch.isfinite(weights)
    rows = sorted(set(bad.nonzero()[:, 0].tolist()))
    inverted = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=1)
    logs = torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    if torch.equal(bad, inverted.isnan()) and torch.allclose(weights[~bad], inverted[~bad]):
        raise fail(f"weights has NaN in row(s) {rows}, whose positions are all real, and weight "
                   "only on padding elsewhere: the mask is inverted.", "mask is True on the real "
                   "positions: fill the others, masked_fill(~mask, float('-inf')).")  # fmt: skip
    if torch.equal(bad, ~mask) and torch.allclose(weights[mask], logs[mask]):
        raise fail("weights is -inf at every padding position: these are log-probabilities.",
                   "Use torch.softmax (not log_softmax): the weights are probabilities.")  # fmt: skip
    if rows == [0]:
        raise fail("weights has non-finite values (NaN or inf) in the row whose scores are near "
                   "1,000.", "exp(1000) overflows: use torch.softmax, or subtract each row's "
                   "largest real score before exp().")  # fmt: skip
    raise fail(f"weights has non-finite values (NaN or inf) in row(s) {rows}.",
               "A softmax of a row where every score is -inf gives NaN, and exp() of scores "
               "near 1,000 overflows: mask only the padding (~mask), then torch.softmax.")  # fmt: skip


def check_attention_pool(
    fn: Callable, *, B: int = 5, T: int = 6, D: int = 4, seed: int = 0
) -> None:
    """Check ``attention_pool(outputs, scores, mask) -> (pooled (B, D), weights (B, T))``:
    weights = softmax of the scores over each row's real positions (0 at padding), pooled =
    the weighted sum of the outputs; scores of 1,000 must not overflow."""
    rng = seeded(seed)
    lengths, mask, outputs = _batch(rng, B, T, D)
    scores = torch.from_numpy(rng.normal(size=(B, T)))
    scores = torch.where(mask, scores, 4.0 + scores.abs())  # padding would take most of the weight
    scores[0] = scores[0] + 1000.0  # a row of large scores: exp() overflows unless shifted
    outputs.requires_grad_(True)
    scores.requires_grad_(True)
    out = unpack(call_unchanged(fn, "attention_pool", outputs, scores, mask),
                 "attention_pool(outputs, scores, mask)", ("pooled", "weights"))  # fmt: skip
    pooled = tensor("pooled", out[0], (B, D), "pooled is (B, D): one weighted sum per row.")
    weights = tensor("weights", out[1], (B, T), "weights is (B, T): one weight per position.")
    if not torch.isfinite(weights).all():
        _non_finite(weights, scores.detach(), mask)
    masked = scores.masked_fill(~mask, float("-inf"))
    want_w = torch.softmax(masked, dim=1)
    want_p = (want_w.unsqueeze(-1) * outputs).sum(1)
    plain = torch.softmax(scores, dim=1)
    zeroed = torch.softmax(scores.masked_fill(~mask, 0.0), dim=1)
    by_batch = torch.softmax(masked, dim=0)
    causes_w = [
        Cause(plain.detach().numpy(), "The padding positions took weight: set their scores to "
              "-inf (masked_fill(~mask, float('-inf'))) before the softmax."),
        Cause((plain * mask).detach().numpy(), "The weights were masked after the softmax, so a "
              "row no longer sums to 1: mask the scores before it."),
        Cause(zeroed.detach().numpy(), "The padding scores were set to 0, and exp(0) = 1 still "
              "gives them weight: set them to -inf."),
        Cause(by_batch.detach().numpy().clip(0), "The softmax ran over the batch (dim 0): take "
              "it over time, dim 1."),
        Cause(torch.softmax(masked / D**0.5, dim=1).detach().numpy(), "The scores were divided by "
              "sqrt(D) (as in a transformer's dot-product attention): here the scores come "
              "already made; take the softmax of them as they are."),
    ]  # fmt: skip
    compare("weights", weights, want_w.detach().numpy(), threshold=THRESHOLD, causes=causes_w,
            hint="weights[b] = softmax(scores[b]) over the real positions, 0 at padding.")  # fmt: skip
    causes_p = [
        Cause((want_w.unsqueeze(-1) * outputs).mean(1).detach().numpy(), "pooled is the mean of "
              "the weighted outputs: it is their sum (the weights already sum to 1)."),
        Cause(torch.einsum("bt,btd->bd", plain, outputs).detach().numpy(), "pooled used the "
              "weights before masking: use the masked weights."),
        Cause((want_p / mask.sum(1, keepdim=True)).detach().numpy(), "pooled was divided by each "
              "row's length, as in mean pooling: the weights already sum to 1, so the "
              "weighted sum is the answer."),
    ]  # fmt: skip
    compare("pooled", pooled, want_p.detach().numpy(), threshold=THRESHOLD, causes=causes_p,
            hint="pooled[b] = sum over t of weights[b, t] * outputs[b, t].")  # fmt: skip
    if not keeps_graph(fn):  # the grader's stand-in returns values only
        passed(f"attention_pool: weights ({B}, {T}) a softmax over each row's real positions (0 "
               f"on padding, no overflow at scores of 1,000), pooled ({B}, {D}) their weighted "
               "sum (gradient checked in the notebook).")  # fmt: skip
        return
    R = torch.from_numpy(rng.normal(size=(B, D)))
    compare("the gradient of pooled with respect to outputs and scores",
            _grad(out[0], [outputs, scores], R), _grad(want_p, [outputs, scores], R), threshold=1e-7,
            hint="The values are right but the gradient is not: no detach, .data or argmax "
                 "inside attention_pool; the scores must learn through the softmax.")  # fmt: skip
    passed(f"attention_pool: weights ({B}, {T}) a softmax over each row's real positions (0 on "
           f"padding, no overflow at scores of 1,000), pooled ({B}, {D}) their weighted sum, "
           "with its gradient.")  # fmt: skip
