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

from utils.checks.engine import Cause, compare, describe, fail
from utils.checks.references import rnn_from_weights

THRESHOLD = 1e-7
"""Largest relative error accepted (float64 everywhere)."""

STEP_CACHE = ("x_t", "h_prev", "h_t", "W_xh", "W_hh")
PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")
LONG = {"N": 3, "T": 25, "D": 6, "H": 4}
"""The backward checks also run on this longer sequence, with other sizes (D > H)."""

_compare = partial(compare, threshold=THRESHOLD)
_cell = partial(rnn_from_weights, cell=True)  # an nn.RNNCell (float64) with the lab's weights


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
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, T, D))
    h0 = rng.normal(scale=0.5, size=(N, H))
    W_xh = rng.normal(scale=scale, size=(D, H))
    W_hh = rng.normal(scale=scale, size=(H, H))
    return rng, X, h0, W_xh, W_hh, rng.normal(scale=0.3, size=H)


def _check_cache(name: str, cache, expected: tuple, hint: str, step: str = "") -> None:
    """A step cache is a tuple of the five arrays ``expected`` (STEP_CACHE)."""
    if not isinstance(cache, tuple | list) or len(cache) != len(STEP_CACHE):
        size = f" of {len(cache)} items" if isinstance(cache, tuple | list) else ""
        raise fail(
            f"{name} is a {describe(cache)}{size}, expected the tuple of {len(STEP_CACHE)} "
            f"({', '.join(STEP_CACHE)}).",
            hint,
        )
    for i, (part, value, want) in enumerate(zip(STEP_CACHE, cache, expected)):
        _compare(f"{name}[{i}] ({part}{step})", value, want, hint=hint)


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


def _unrolled_autograd(
    X, h0, W_xh, W_hh, b_h, dstates, *, tanh_grad: bool = True, carry: bool = True
) -> dict:
    """Autograd through T separate copies of one ``nn.RNNCell``: per-step weight gradients.

    ``tanh_grad=False`` keeps the forward values but lets the gradient pass tanh
    unchanged (a backward pass without the tanh derivative); ``carry=False`` stops
    the gradient between time steps (a backward pass that drops dh_prev).
    """
    X_t, h0_t = _t(X).requires_grad_(), _t(h0).requires_grad_()
    cells = [_cell(W_xh, W_hh, b_h) for _ in range(X.shape[1])]
    h, states = h0_t, []
    for t, cell in enumerate(cells):
        if tanh_grad:
            h_new = cell(X_t[:, t], h)
        else:
            a = _linear_part(cell, X_t[:, t], h)
            h_new = a + (torch.tanh(a) - a).detach()
        states.append(h_new)
        h = h_new if carry else h_new.detach()
    (torch.stack(states, 1) * _t(dstates)).sum().backward()
    return {
        "dX": _n(X_t.grad),
        "dh0": _n(h0_t.grad),
        "dW_xh": [_n(c.weight_ih.grad.T) for c in cells],
        "dW_hh": [_n(c.weight_hh.grad.T) for c in cells],
        "db_h": [_n(c.bias_ih.grad) for c in cells],
    }


def _bptt_forward_in_time(X, h0, W_xh, W_hh, b_h, dstates) -> dict:
    """What a BPTT loop running *forward* in time computes: step t receives dstates
    of step t plus the dh_prev that step t - 1 produced (autograd per step)."""
    cell = _cell(W_xh, W_hh, b_h)
    out = {"dX": np.zeros_like(X), "dW_xh": 0.0, "dW_hh": 0.0, "db_h": 0.0}
    h_prev, carry = _t(h0), torch.zeros_like(_t(h0))
    for t in range(X.shape[1]):
        x, h = _t(X[:, t]).requires_grad_(), h_prev.clone().requires_grad_()
        h_t = cell(x, h)
        wrt = [x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih]
        dx, carry, dW_ih, dW_hh, db = torch.autograd.grad(h_t, wrt, _t(dstates[:, t]) + carry)
        out["dX"][:, t] = _n(dx)
        out["dW_xh"] = out["dW_xh"] + _n(dW_ih.T)
        out["dW_hh"] = out["dW_hh"] + _n(dW_hh.T)
        out["db_h"] = out["db_h"] + _n(db)
        h_prev = h_t.detach()
    return {**out, "dh0": _n(carry)}
