"""The project (a retrieval chatbot): checks of the attention matching layer,
``attention_match(C, mask, q)``, and of the contrastive loss, ``info_nce_loss(S, positive,
same_text)``.

References are ``torch.softmax`` and ``F.cross_entropy`` with autograd for gradients. The
inputs are built so the usual mistakes show: context states at padding positions hold large
values and would get most of the weight unmasked; every row has candidates with the same
text as its true response, which must be left out of the loss, not counted as negatives.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from utils.checks.core import passed, seeded
from utils.checks.engine import (
    Cause,
    call_unchanged,
    compare,
    fail,
    keeps_graph,
    number,
    tensor,
    unpack,
)

__all__ = ["check_attention_match", "check_info_nce_loss"]

THRESHOLD = 1e-9


def _grad(value, wrt, R=None) -> np.ndarray:
    if not (isinstance(value, torch.Tensor) and value.requires_grad):
        return np.zeros(sum(w.numel() for w in wrt))
    out = value if R is None else (value * R).sum()
    grads = torch.autograd.grad(out, wrt, allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(w)).reshape(-1) for g, w in zip(grads, wrt)]
    ).numpy()


def _mask(rng, N: int, T: int) -> torch.Tensor:
    lengths = rng.integers(1, T + 1, size=N)
    lengths[0], lengths[-1] = T, 1  # a full row and a row of one token
    return torch.arange(T)[None, :] < torch.from_numpy(lengths)[:, None]


def check_attention_match(
    fn: Callable, *, N: int = 3, M: int = 4, T: int = 6, H: int = 5, seed: int = 0
) -> None:
    """Check ``attention_match(C, mask, q) -> (pooled (N, M, H), a (N, M, T))``:
    a[n, m] = softmax over context n's real positions of C[n] q[n, m] / sqrt(H), and
    pooled[n, m] = sum over t of a[n, m, t] C[n, t]."""
    rng = seeded(seed)
    mask = _mask(rng, N, T)
    C = torch.from_numpy(rng.normal(size=(N, T, H)))
    C = torch.where(mask[..., None], C, 4.0 + 2.0 * C.abs())  # padding: large, would dominate
    q = torch.from_numpy(rng.normal(size=(N, M, H)))
    C.requires_grad_(True)
    q.requires_grad_(True)
    out = unpack(call_unchanged(fn, "attention_match", C, mask, q),
                 "attention_match(C, mask, q)", ("pooled", "a"))  # fmt: skip
    pooled = tensor("pooled", out[0], (N, M, H), "pooled is (N, M, H): context n seen by each "
                    "of its M candidates.")  # fmt: skip
    a = tensor("a", out[1], (N, M, T), "a is (N, M, T): for each context and candidate, one "
               "weight per position of the context.")  # fmt: skip
    raw = torch.einsum("nth,nmh->nmt", C, q)
    scores = raw / H**0.5
    want_a = torch.softmax(scores.masked_fill(~mask[:, None], float("-inf")), dim=-1)
    want_p = torch.einsum("nmt,nth->nmh", want_a, C)
    unmasked = torch.softmax(scores, dim=-1)
    causes_a = [
        Cause(unmasked.detach().numpy(), "The padding positions took weight: set their scores "
              "to -inf (masked_fill(~mask[:, None, :], float('-inf'))) before the softmax."),
        Cause((unmasked * mask[:, None]).detach().numpy(), "The weights were masked after the "
              "softmax, so they no longer sum to 1: mask the scores before it."),
        Cause(torch.softmax(raw.masked_fill(~mask[:, None], float("-inf")), -1).detach().numpy(),
              "The scores were not divided by sqrt(H) (scaled dot-product attention)."),
        Cause(torch.softmax(scores.masked_fill(~mask[:, None], float("-inf")), 1).nan_to_num()
              .detach().numpy(), "The softmax ran over the candidates (dim 1): take it over the "
              "context's positions, the last dim."),
    ]  # fmt: skip
    compare("a", a, want_a.detach().numpy(), threshold=THRESHOLD, causes=causes_a,
            hint="a[n, m] = softmax(C[n] @ q[n, m] / sqrt(H)) over the real positions of "
                 "context n, 0 at its padding.")  # fmt: skip
    causes_p = [
        Cause(torch.einsum("nmt,nth->nmh", unmasked, C).detach().numpy(),
              "pooled used unmasked weights: use a."),
        Cause((want_p / T).detach().numpy(), "pooled is the weighted sum, not a mean over T."),
    ]  # fmt: skip
    compare("pooled", pooled, want_p.detach().numpy(), threshold=THRESHOLD, causes=causes_p,
            hint="pooled[n, m] = sum over t of a[n, m, t] * C[n, t].")  # fmt: skip
    if not keeps_graph(fn):
        passed(f"attention_match: a ({N}, {M}, {T}) a scaled, masked softmax over each context's "
               f"positions, pooled ({N}, {M}, {H}) the weighted sums (gradient checked in the "
               "notebook).")  # fmt: skip
        return
    R = torch.from_numpy(rng.normal(size=(N, M, H)))
    compare("the gradient of pooled with respect to C and q", _grad(out[0], [C, q], R),
            _grad(want_p, [C, q], R), threshold=1e-7,
            hint="The values are right but the gradient is not: no detach, .data or argmax "
                 "inside attention_match; the queries must learn through the softmax.")  # fmt: skip
    passed(f"attention_match: a ({N}, {M}, {T}) a scaled, masked softmax over each context's "
           f"positions, pooled ({N}, {M}, {H}) the weighted sums, with their gradient.")  # fmt: skip


def _nce_value(fn: Callable, name: str, S, positive, same) -> float:
    got = call_unchanged(fn, "info_nce_loss", S, positive, same)
    return number(name, got.detach() if isinstance(got, torch.Tensor) else got)


def _check_nce_scale_and_positions(fn: Callable, rng, S, positive, same, want: float) -> None:
    """Two more cases, checked silently: the scores shifted by about 1000 (the loss is the
    same; exp overflows), and positives off the diagonal with two rows sharing their true
    text (each row keeps only its own positive)."""
    N, M = S.shape
    shifted = S + 1000.0 + 100.0 * torch.arange(N, dtype=S.dtype)[:, None]
    value = _nce_value(fn, "info_nce_loss for scores around 1000", shifted, positive, same)
    if not np.isfinite(value):
        raise fail(f"info_nce_loss is {value} for scores around 1000 (the loss does not change "
                   "when a row's scores move together): exp overflowed.", "Use F.cross_entropy "
                   "(or log_softmax / logsumexp), which subtracts each row's largest score; not "
                   "exp, sum and log by hand.")  # fmt: skip
    compare("info_nce_loss for scores around 1000", np.array(value), np.array(want),
            threshold=1e-9, hint="The loss does not change when a row's scores move together: "
            "compute it with F.cross_entropy or log_softmax.")  # fmt: skip
    pos = torch.from_numpy(rng.permutation(M)[:N])  # anywhere, not on the diagonal
    text = torch.from_numpy(rng.integers(0, N + 2, size=M))
    text[pos] = torch.from_numpy(rng.permutation(N + 2)[:N])
    text[pos[1]] = text[pos[0]]  # rows 0 and 1 share their true text
    same = text[None, :] == text[pos][:, None]
    S = torch.from_numpy(rng.normal(size=(N, M)) * 3)
    name = f"info_nce_loss with the positives at columns {pos.tolist()}"
    value = _nce_value(fn, name, S, pos, same)
    drop, rows = same.clone(), torch.arange(N)
    drop[rows, pos] = False
    want = F.cross_entropy(S.masked_fill(drop, float("-inf")), pos).item()
    kept, diagonal = same.clone(), same.clone()
    kept[:, pos] = False
    diagonal[rows, rows] = False
    hint = ("positive[n] is the column of row n's true response (here not n), and only that "
            "column of row n is kept among its same-text candidates: drop[torch.arange(N), "
            "positive] = False.")  # fmt: skip
    if not np.isfinite(value):
        raise fail(f"{name} (rows 0 and 1 share their true text) is {value}.", hint)
    causes = [
        Cause(np.array(F.cross_entropy(S.masked_fill(kept, float("-inf")), pos).item()),
              "Row 0 kept row 1's positive, a copy of its own true text, as a negative: keep "
              "only each row's own positive, drop[torch.arange(N), positive] = False, not "
              "drop[:, positive] = False."),
        Cause(np.array(F.cross_entropy(S.masked_fill(diagonal, float("-inf")), rows).item()),
              "The positives were taken on the diagonal (column n for row n): row n's true "
              "response is in column positive[n]."),
    ]  # fmt: skip
    compare(name, np.array(value), np.array(want), threshold=1e-9, causes=causes, hint=hint)


def check_info_nce_loss(fn: Callable, *, N: int = 4, k: int = 3, seed: int = 0) -> None:
    """Check ``info_nce_loss(S, positive, same_text) -> loss``: the mean over rows of
    -log softmax(S[n])[positive[n]], the softmax over the candidates except those that share
    the true response's text (other than the positive itself)."""
    rng = seeded(seed)
    M = N * (1 + k)
    S = torch.from_numpy(rng.normal(size=(N, M)) * 3)
    positive = torch.arange(N)
    text = rng.integers(0, N + 2, size=M)  # few texts: duplicates of the positives
    text[:N] = rng.permutation(N + 2)[:N]
    for n in range(N):  # every row has another copy of its true text among the candidates
        text[N + k * n] = text[n]
    text_t = torch.from_numpy(text)
    same = text_t[None, :] == text_t[positive][:, None]
    S.requires_grad_(True)
    got = call_unchanged(fn, "info_nce_loss", S, positive, same)
    if isinstance(got, torch.Tensor) and got.numel() != 1:
        raise fail(f"info_nce_loss returned a tensor of shape {tuple(got.shape)}, expected one "
                   "number.", "Average over the rows: the loss is a scalar.")  # fmt: skip
    value = number("info_nce_loss", got.detach() if isinstance(got, torch.Tensor) else got)
    drop = same.clone()
    drop[torch.arange(N), positive] = False
    want = F.cross_entropy(S.masked_fill(drop, float("-inf")), positive)
    S_d = S.detach()
    causes = [
        Cause(np.array(F.cross_entropy(S_d, positive).item()), "Candidates with the same text "
              "as the true response were counted as negatives: leave them out (score -inf), "
              "all but the positive itself."),
        Cause(np.array(F.cross_entropy(S_d.masked_fill(drop, float("-inf")), positive,
                                       reduction="sum").item()),
              "The loss is summed over the rows: take the mean."),
        Cause(np.array(F.cross_entropy(S_d.masked_fill(drop, float("-inf")).T,
                                       positive.new_tensor([0] * M), reduction="none")
                       .mean().item()),
              "The softmax ran over the contexts (dim 0): take it over each row's candidates."),
    ]  # fmt: skip
    compare("info_nce_loss", np.array(value), np.array(want.item()), threshold=1e-9,
            causes=causes, hint="loss = mean over n of -log( exp(S[n, p]) / sum over the kept "
            "candidates j of exp(S[n, j]) ), p = positive[n].")  # fmt: skip
    _check_nce_scale_and_positions(fn, rng, S_d, positive, same, want.item())
    if keeps_graph(fn):
        compare("the gradient of the loss with respect to S", _grad(got, [S]), _grad(want, [S]),
                threshold=1e-7, hint="The value is right but not its gradient: compute it "
                "with torch operations on S (no .item(), no NumPy).")  # fmt: skip
    passed(f"info_nce_loss: {N} contexts against {M} candidates, duplicates of each true "
           f"response left out, mean cross-entropy {want.item():.4f}"
           + (", with its gradient." if keeps_graph(fn) else "."))  # fmt: skip
