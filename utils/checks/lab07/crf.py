"""Lab 7, Part 1: checks of the linear-chain CRF (path score, log partition, Viterbi).

Each check compares the student's function with brute force: every tag path of a tiny
CRF (C = 3 or 4 tags, T <= 7) enumerated one by one, its score added up term by term,
log Z as the log-sum-exp of all scores (differentiated by autograd: the gradient with
respect to the emissions is the tag marginals), the best path as their argmax. Known
wrong answers (no transitions, the mask ignored, trans transposed, no start or end
scores, max instead of log-sum-exp, an argmax per token, a reversed path) are the
outputs of the same enumeration with one term changed. When a wrong answer comes out
right for every row given alone (cut to its length), the padding is the cause, and the
message says so. log Z is also computed with every emission raised by 300, where
exp() of a score overflows unless the log-sum-exp subtracts the max.

Conventions (tags ``0..C-1``; ``n_i`` real tokens first in row ``i`` of the mask)::

    score(y) = start[y_1] + sum_{t=1..n} E[t, y_t] + sum_{t=2..n} trans[y_{t-1}, y_t] + end[y_n]
    log Z = log sum_y exp score(y)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import CheckError, passed, rel_error, seeded
from utils.checks.engine import Cause, call_unchanged, compare, describe, fail, keeps_graph
from utils.checks.lab07.ner import THRESHOLD

__all__ = ["check_crf_log_partition", "check_crf_path_score", "check_viterbi_decode"]


def _random_crf(N: int, T: int, C: int, seed: int):
    """E (N, T, C), mask (N, T) with lengths T, 1 and random ones, trans (C, C), start, end (C,),
    all float64 tensors."""
    rng = seeded(seed)
    lengths = np.concatenate([[T, 1], rng.integers(1, T + 1, max(N - 2, 0))])[:N]
    mask = torch.from_numpy(np.arange(T)[None] < lengths[:, None])
    E, trans, start, end = (torch.tensor(rng.normal(size=s)) for s in ((N, T, C), (C, C), C, C))
    return E, mask, trans, start, end


def _all_paths(E, mask, trans, start, end, use=("trans", "start", "end"), full=False):
    """For each row: its tag paths over its real tokens (or all T with ``full``), every one
    of the C^n listed by itertools.product, and their scores (a differentiable tensor)."""
    N, T, C = E.shape
    out = []
    for i in range(N):
        n = T if full else int(mask[i].sum())
        paths = list(itertools.product(range(C), repeat=n))
        y = torch.tensor(paths)  # (C^n, n)
        s = E[i, torch.arange(n), y].sum(1)
        if "trans" in use:
            s = s + trans[y[:, :-1], y[:, 1:]].sum(1)
        if "trans_T" in use:
            s = s + trans[y[:, 1:], y[:, :-1]].sum(1)
        last = y[:, -1]
        if "star" in use:  # every transition (and end) from the first tag: an axis mixed up
            s, last = s + trans[y[:, :1], y[:, 1:]].sum(1), y[:, 0]
        s = s + (start[y[:, 0]] if "start" in use else 0) + (end[last] if "end" in use else 0)
        out.append((paths, s))
    return out


def _log_z(*crf, **kw) -> torch.Tensor:
    return torch.stack([torch.logsumexp(s, 0) for _, s in _all_paths(*crf, **kw)])


_PADDING = (
    "Each row alone, cut to its length (no padding), comes out right: the padded steps change "
    "the result. {}"
)


def _rows_alone(fn: Callable, label: str, E, mask, *rest, Y=None) -> list | None:
    """``fn`` on each row alone, cut to its n_i real tokens (no padding); None if that fails."""
    outs = []
    for i, n in enumerate(mask.sum(1).tolist()):
        row = (E[i : i + 1, :n].detach(),) + (() if Y is None else (Y[i : i + 1, :n],))
        try:
            outs.append(call_unchanged(fn, label, *row, mask[i : i + 1, :n], *rest))
        except (CheckError, NotImplementedError):
            return None
    return outs


def _alone_right(fn: Callable, label: str, want: np.ndarray, got, *crf, Y=None) -> bool:
    """Whether ``got`` (a tensor) is wrong while every row alone gives its value in ``want``."""
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != want.shape:
        return False
    if rel_error(got.detach().numpy(), want) < THRESHOLD:
        return False
    outs = _rows_alone(fn, label, *crf, Y=Y)
    try:
        alone = np.array([float(o.detach().reshape(())) for o in outs or []])
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return False
    return alone.shape == want.shape and rel_error(alone, want) < THRESHOLD


def _crf_array(label: str, out, N: int) -> np.ndarray:
    if not isinstance(out, torch.Tensor):
        raise fail(f"{label} returned a {describe(out)}, expected a tensor of shape ({N},).",
                   "Did it forget to `return`?" if out is None else "Stay in torch, so autograd "
                   "can train the CRF through it.")  # fmt: skip
    return out


def check_crf_path_score(fn: Callable, *, N: int = 4, T: int = 5, C: int = 3, seed: int = 4):
    """Check ``crf_path_score(E, Y, mask, trans, start, end) -> (N,)`` against the score of
    each row's tag path added up term by term."""
    E, mask, trans, start, end = _random_crf(N, T, C, seed)
    Y = torch.from_numpy(seeded(seed + 1).integers(0, C, (N, T)))
    lengths = mask.sum(1)

    def score(use=("trans", "start", "end"), full=False, last_pad=False):
        out = []
        for i in range(N):
            n = T if full else int(lengths[i])
            y = Y[i, :n].tolist()
            s = E[i, torch.arange(n), Y[i, :n]].sum()
            if "trans" in use:
                s = s + sum(float(trans[y[t - 1], y[t]]) for t in range(1, n))
            if "trans_T" in use:
                s = s + sum(float(trans[y[t], y[t - 1]]) for t in range(1, n))
            s = s + (float(start[y[0]]) if "start" in use else 0.0)
            s = s + (float(end[int(Y[i, -1]) if last_pad else y[-1]]) if "end" in use else 0.0)
            out.append(float(s))
        return np.array(out)

    got = _crf_array(
        "crf_path_score", call_unchanged(fn, "crf_path_score", E, Y, mask, trans, start, end), N
    )
    want = score()
    alone = _alone_right(fn, "crf_path_score", want, got, E, mask, trans, start, end, Y=Y)
    hint = (
        _PADDING.format(
            "Mask the emissions and the transitions into padded steps "
            "(mask[:, 1:]), and take end[] at the last real tag."
        )
        if alone
        else None
    )
    compare("path scores", got, want, threshold=THRESHOLD, hint=hint, causes=[
        Cause(score(full=True), "The padding is scored too: stop each row at its last real token."),
        Cause(score(last_pad=True), "end[] is taken at position T of the padded row: it belongs "
              "to the last real tag, Y[i, n_i - 1]."),
        Cause(score(use=("start", "end")), "The transition scores trans[y_{t-1}, y_t] are missing."),
        Cause(score(use=("trans_T", "start", "end")), "trans is used transposed: trans[i, j] is "
              "the score of tag i followed by tag j, so step t adds trans[y_{t-1}, y_t]."),
        Cause(score(use=("trans", "end")), "start[y_1] is missing."),
        Cause(score(use=("trans", "start")), "end[y_n] is missing."),
    ])  # fmt: skip
    passed("crf_path_score: the scores of the tag paths match a term-by-term sum (start, "
           "emissions, transitions, end), the padding left out.")  # fmt: skip


def _check_large_scores(fn: Callable, crf: tuple, want: np.ndarray, shift: float = 300.0) -> None:
    """log Z with every emission raised by ``shift`` is log Z + shift * n_i: exp() of the
    scores overflows (inf) unless the logsumexp subtracts the max."""
    E, mask, *rest = crf
    out = call_unchanged(fn, "crf_log_partition", E.detach() + shift, mask, *rest)
    got = _crf_array("crf_log_partition", out, len(want)).detach().numpy()
    expected = want + shift * mask.sum(1).numpy()
    if (
        got.shape == expected.shape
        and np.isfinite(got).all()
        and rel_error(got, expected) < THRESHOLD
    ):
        return
    raise fail(f"With every emission score raised by {shift:g}, log Z is {got}, expected "
               f"{expected} (log Z + {shift:g} n_i).", "exp() of a large score overflows (exp(710) "
               "is inf in float64, exp(89) in float32; a trained tagger's path scores grow with "
               "the sentence): use torch.logsumexp, which subtracts the max before exp().")  # fmt: skip


def check_crf_log_partition(fn: Callable, *, N: int = 4, T: int = 5, C: int = 3, seed: int = 5):
    """Check ``crf_log_partition(E, mask, trans, start, end) -> log Z (N,)`` against the
    log-sum-exp over every tag path (enumerated), value and gradient d log Z / d E (the tag
    marginals)."""
    crf = _random_crf(N, T, C, seed)
    E = crf[0].clone().requires_grad_()
    want = _log_z(E, *crf[1:])
    want.sum().backward()
    d = crf[0]
    viterbi = [s.max() for _, s in _all_paths(d, *crf[1:])]
    causes = [
        Cause(_log_z(d, *crf[1:], full=True), "The mask is ignored: padded steps must leave "
              "alpha unchanged (torch.where(mask[:, t, None], new, alpha))."),
        Cause(_log_z(d, *crf[1:], use=("start", "end")), "The transition scores are missing in "
              "the recursion: alpha_t(j) = E[t, j] + logsumexp_i(alpha_{t-1}(i) + trans[i, j])."),
        Cause(_log_z(d, *crf[1:], use=("trans_T", "start", "end")), "trans is used transposed: "
              "trans[i, j] is the score of tag i followed by tag j."),
        Cause(_log_z(d, *crf[1:], use=("trans", "start")), "end[] is not added at the end."),
        Cause(_log_z(d, *crf[1:], use=("trans", "end")), "start[] is not added at t = 1."),
        Cause(torch.stack(viterbi), "It is the score of the best path (max): log Z sums over "
              "all paths with logsumexp."),
        Cause(_log_z(d, *crf[1:], use=("star", "start", "end")), "The logsumexp runs over the "
              "wrong axis: in alpha[:, :, None] + trans + E[:, t, None, :] the previous tag i is "
              "dim 1 (sum over it), the next tag j dim 2."),
    ]  # fmt: skip
    out = _crf_array("crf_log_partition", call_unchanged(fn, "crf_log_partition", E, *crf[1:]), N)
    want_np = want.detach().numpy()
    alone = _alone_right(fn, "crf_log_partition", want_np, out, *crf)
    compare("log Z", out, want_np, threshold=THRESHOLD,
            hint=_PADDING.format("A padded step must leave alpha as it is: torch.where(mask[:, "
                                 "t, None], new, alpha), with the mask of step t.") if alone else None,
            causes=[(c.variant.detach().numpy(), c.explanation) for c in causes])  # fmt: skip
    _check_large_scores(fn, crf, want_np)
    if not keeps_graph(fn):  # the grader's stand-in returns values only
        passed("crf_log_partition: log Z as the enumeration of every tag path "
               "(gradient checked in the notebook).")  # fmt: skip
        return
    if out.grad_fn is None:
        raise fail(
            "log Z has no gradient with respect to the emissions.",
            "Stay in torch (no .item(), .detach() or NumPy), so the CRF can be trained.",
        )
    grad = torch.autograd.grad(out.sum(), E)[0]
    compare(
        "d log Z / d E (the tag marginals)",
        grad,
        E.grad.numpy(),
        threshold=1e-6,
        hint="The value is right but not its gradient: is something computed in place?",
    )
    passed(f"crf_log_partition: log Z and its gradient match the enumeration of all {C}^n "
           "tag paths of each row (lengths T, 1 and others).")  # fmt: skip


def check_viterbi_decode(fn: Callable, *, N: int = 5, T: int = 5, C: int = 3, seed: int = 6):
    """Check ``viterbi_decode(E, mask, trans, start, end) -> [path, ...]`` (one list of
    n_i tag ids per row) against the best path found by enumeration."""
    crf = _random_crf(N, T, C, seed)
    lengths = crf[1].sum(1).tolist()
    out = call_unchanged(fn, "viterbi_decode", *crf)
    if not isinstance(out, list | tuple) or len(out) != N:
        raise fail(f"viterbi_decode returned a {describe(out)}, expected a list of N = {N} paths.",
                   "Did it forget to `return`?" if out is None else None)  # fmt: skip
    got = []
    for i, p in enumerate(out):
        p = p.tolist() if isinstance(p, torch.Tensor | np.ndarray) else p
        if not isinstance(p, list | tuple) or len(p) != lengths[i]:
            raise fail(
                f"path {i} is {p!r}, expected a list of {lengths[i]} tag ids (its real "
                "tokens only).",
                "Cut each row's path at its length (mask[i].sum()).",
            )
        got.append([int(v) for v in p])

    def best(*args, **kw):
        return [list(paths[int(s.argmax())]) for paths, s in _all_paths(*args, **kw)]

    want = best(*crf)
    if got == want:
        passed(
            "viterbi_decode: the best tag path of every row matches the enumeration of "
            f"all {C}^n paths (lengths T, 1 and others)."
        )
        return
    E, mask, trans, start, end = crf
    head = f"viterbi_decode returned {got}, expected {want}."
    try:  # each row alone, without padding
        alone = [[int(v) for v in list(a[0])] for a in _rows_alone(fn, "viterbi_decode", *crf)]
    except (IndexError, TypeError, ValueError):
        alone = None
    if alone == want:
        raise fail(head, _PADDING.format("A padded step must keep delta (where the mask is "
                   "False) and point back to the same tag (its backpointer torch.arange(C)), so "
                   "the backtrace from the end crosses it unchanged."))  # fmt: skip
    per_token = [E[i, :n].argmax(-1).tolist() for i, n in enumerate(lengths)]
    for variant, why in [
        (per_token, "It is the argmax per token: Viterbi maximises the whole path's score, "
         "transitions included."),
        ([p[::-1] for p in want], "The path is reversed: the backtrace runs from t = n down to 1, "
         "so reverse what it collects."),
        (best(*crf, use=("start", "end")), "The transitions are missing."),
        (best(*crf, use=("trans", "start")), "end[] is not added before the last argmax."),
        (best(*crf, use=("trans_T", "start", "end")), "trans is used transposed."),
        ([p[:n] for p, n in zip(best(*crf, full=True), lengths)], "The mask is ignored: the "
         "padded steps changed the best path of the rows shorter than T (keep delta and the "
         "backpointers unchanged where mask is False)."),
    ]:  # fmt: skip
        if got == variant:
            raise fail(head, why)
    raise fail(head,
               "delta_t(j) = E[t, j] + max_i(delta_{t-1}(i) + trans[i, j]), with the argmax "
               "kept as backpointer; start at t = 1, end before the final argmax.")  # fmt: skip
