"""Lab 1's references: PyTorch runs of the lab's model, right and deliberately wrong.

The check modules of this package compare a student's arrays with these; none of
them has the signature of an exercise. Shapes and names as in :mod:`utils.checks.lab01`.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.checks.core import seeded
from utils.checks.engine import (
    Cause,
    check_cache,
    check_unchanged,
    compare,
    fail,
    number,
    numpy_only,
    snapshot,
)
from utils.checks.references import rnn_from_weights

THRESHOLD = 1e-7
"""Largest relative error accepted (float64 everywhere)."""

STEP_CACHE = ("x_t", "h_prev", "h_t", "W_xh", "W_hh")
PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")
LONG = {"N": 3, "T": 25, "D": 6, "H": 4}
"""The backward checks also run on this longer sequence, with other sizes (D > H)."""

_cell = partial(rnn_from_weights, cell=True)  # an nn.RNNCell (float64) with the lab's weights


_numpy_only = numpy_only


def _compare(name: str, got, want: np.ndarray, **kwargs) -> float:
    """:func:`compare` with the lab's threshold, refusing torch tensors (NumPy only)."""
    _numpy_only(name, got)
    return compare(name, got, want, **{"threshold": THRESHOLD, **kwargs})


def _number(name: str, x) -> np.ndarray:
    """One float64 number (a float, np.float64 or 0-d array), as a 0-d array."""
    _numpy_only(name, x)
    value = number(name, x)
    dtype = getattr(x, "dtype", None)
    if dtype is not None and dtype.kind == "f" and dtype != np.float64:
        raise fail(
            f"{name} has dtype {dtype}, expected float64.",
            "Return a Python float (float(...)) or a float64: float32 keeps about 7 digits.",
        )
    return np.asarray(value)


_snapshot = snapshot


def _check_unchanged(label: str, caches, items: list, before: list, where=None) -> None:
    """Lab 1's wording of :func:`utils.checks.engine.check_unchanged` (STEP_CACHE items)."""
    check_unchanged(
        label, caches, items, before, STEP_CACHE, per_step=where is not None,
        list_hint="Read it without changing it: no caches.reverse(), caches.pop() or "
        "caches[t] = ...; walk back with for t in reversed(range(T)) and caches[t].",
        values_hint="The caches belong to the forward pass (h_t of one step is h_prev of the "
        "next, x_t is a view of X): compute new arrays (1 - h_t**2, not h_t **= 2).",
    )  # fmt: skip


def _t(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)


def _n(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


def _finite(x) -> bool:
    """False only for a number or an array holding NaN or inf (anything else is judged later)."""
    try:
        return x is None or bool(np.all(np.isfinite(np.asarray(x, dtype=np.float64))))
    except (TypeError, ValueError):
        return True


def _random_rnn(N: int, T: int, D: int, H: int, seed: int, scale: float = 0.5):
    rng = seeded(seed)
    X = rng.normal(size=(N, T, D))
    h0 = rng.normal(scale=0.5, size=(N, H))
    W_xh = rng.normal(scale=scale, size=(D, H))
    W_hh = rng.normal(scale=scale, size=(H, H))
    return rng, X, h0, W_xh, W_hh, rng.normal(scale=0.3, size=H)


def _check_cache(name: str, cache, expected: tuple, hint: str, step: str = "") -> None:
    """A step cache is a tuple of the five arrays ``expected`` (STEP_CACHE)."""
    check_cache(name, cache, expected, STEP_CACHE, hint, step, compare_with=_compare)


def _rnn_autograd(X, h0, W_xh, W_hh, b_h, dstates) -> dict[str, np.ndarray]:
    """``nn.RNN`` forward and autograd of ``sum(states * dstates)``."""
    rnn = rnn_from_weights(W_xh, W_hh, b_h)
    X_t, h0_t = _t(X).requires_grad_(), _t(h0).requires_grad_()
    states, _ = rnn(X_t, h0_t[None])
    (states * _t(dstates)).sum().backward()
    grads = (X_t.grad, h0_t.grad, rnn.weight_ih_l0.grad.T, rnn.weight_hh_l0.grad.T, rnn.bias_ih_l0.grad)  # fmt: skip
    return {"states": _n(states), **dict(zip(("dX", "dh0", "dW_xh", "dW_hh", "db_h"), map(_n, grads)))}  # fmt: skip


def _linear_part(cell: nn.RNNCell, x, h, *, bias: bool = True) -> torch.Tensor:
    """The cell's pre-activation from its own weights (with or without b_h)."""
    out = F.linear(x, cell.weight_ih) + F.linear(h, cell.weight_hh)
    return out + cell.bias_ih + cell.bias_hh if bias else out


_WRONG_ACTIVATIONS = [
    (lambda cell, x, h: torch.sigmoid(_linear_part(cell, x, h)),
     "It uses the sigmoid: the RNN of this lab uses np.tanh."),
    (lambda cell, x, h: torch.tanh(_linear_part(cell, x, h, bias=False)) + cell.bias_ih,
     "b_h is added after the tanh: it belongs inside, tanh(x_t W_xh + h_prev W_hh + b_h)."),
]  # fmt: skip


@torch.no_grad()
def _wrong_activation_causes(X, h0, W_xh, W_hh, b_h) -> list[Cause]:
    """States (N, T, H) of recurrences with a wrong activation, each with its explanation."""
    cell, causes = _cell(W_xh, W_hh, b_h), []
    for step, explanation in _WRONG_ACTIVATIONS:
        h, states = _t(h0), []
        for t in range(X.shape[1]):
            h = step(cell, _t(X[:, t]), h)
            states.append(_n(h))
        causes.append(Cause(np.stack(states, axis=1), explanation))
    return causes


_WRONG_DERIVATIVES = {  # what a backward pass uses instead of 1 - h_t**2, from (h_t, h_prev)
    "none": lambda h, h_prev: torch.ones_like(h),
    "h_prev": lambda h, h_prev: 1 - h_prev**2,
    "tanh(h_t)": lambda h, h_prev: 1 - torch.tanh(h) ** 2,
}


def _unrolled_autograd(
    X, h0, W_xh, W_hh, b_h, dstates, *, derivative: str | None = None, carry: bool = True
) -> dict:
    """Autograd through T separate copies of one ``nn.RNNCell``: per-step weight gradients,
    and the total gradient reaching each state (``"dstates"``, (N, T, H)).

    ``derivative`` (a key of _WRONG_DERIVATIVES) keeps the forward values but multiplies
    the gradient passing tanh by a wrong derivative (``"none"``: a backward pass without
    it); ``carry=False`` stops the gradient between steps (a pass that drops dh_prev).
    """
    X_t, h0_t = _t(X).requires_grad_(), _t(h0).requires_grad_()
    cells = [_cell(W_xh, W_hh, b_h) for _ in range(X.shape[1])]
    h, states = h0_t, []
    for t, cell in enumerate(cells):
        if derivative is None:
            h_new = cell(X_t[:, t], h)
        else:
            a = _linear_part(cell, X_t[:, t], h)
            slope = _WRONG_DERIVATIVES[derivative](torch.tanh(a), h).detach()
            h_new = torch.tanh(a).detach() + (a - a.detach()) * slope
        h_new.retain_grad()
        states.append(h_new)
        h = h_new if carry else h_new.detach()
    (torch.stack(states, 1) * _t(dstates)).sum().backward()
    return {
        "dX": _n(X_t.grad),
        "dh0": _n(h0_t.grad),
        "dstates": np.stack([_n(h.grad) for h in states], axis=1),
        "dW_xh": [_n(c.weight_ih.grad.T) for c in cells],
        "dW_hh": [_n(c.weight_hh.grad.T) for c in cells],
        "db_h": [_n(c.bias_ih.grad) for c in cells],
    }


def _wrong_bptt_loop(caches, b_h, dstates, order, cache_at=None, dstates_at=None) -> dict:
    """What a wrong BPTT loop computes (autograd per step): for t in ``order``, the step
    of ``caches[cache_at(t)]`` receives ``dstates[:, dstates_at(t)]`` plus the dh_prev of
    the step before in the loop; dX[:, t] is its dx (Python's negative indices wrap).
    The callers pass wrong orders or indices: a loop forward in time, or off by one."""
    cache_at, dstates_at = cache_at or (lambda t: t), dstates_at or (lambda t: t)
    cell = _cell(caches[0][3], caches[0][4], b_h)
    out = {"dX": np.zeros((*dstates.shape[:2], caches[0][0].shape[1])), "dW_xh": 0.0,
           "dW_hh": 0.0, "db_h": 0.0}  # fmt: skip
    carry = torch.zeros_like(_t(dstates[:, 0]))
    for t in order:
        x_t, h_prev = (_t(a).requires_grad_() for a in caches[cache_at(t)][:2])
        upstream = _t(dstates[:, dstates_at(t)]) + carry
        wrt = [x_t, h_prev, cell.weight_ih, cell.weight_hh, cell.bias_ih]
        dx, carry, dW_ih, dW_hh, db = torch.autograd.grad(cell(x_t, h_prev), wrt, upstream)
        out["dX"][:, t] = _n(dx)
        out["dW_xh"], out["dW_hh"] = out["dW_xh"] + _n(dW_ih.T), out["dW_hh"] + _n(dW_hh.T)
        out["db_h"] = out["db_h"] + _n(db)
    return {**out, "dh0": _n(carry)}
