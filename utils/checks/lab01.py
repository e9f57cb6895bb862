"""Visible checks for Lab 1 (RNN from scratch with manual BPTT, in NumPy).

Each ``check_*`` function calls a student's function on small random float64
inputs and compares what comes back with an *independent* computation: PyTorch's
``nn.RNNCell`` / ``nn.RNN`` / ``nn.Linear`` with the same weights copied in,
``F.cross_entropy`` and ``torch.nn.utils.clip_grad_norm_``, differentiated by
autograd. It prints one ``[PASS]`` line, or raises :class:`CheckError` saying
what was expected, what came, and the likely cause. Causes are recognised by
comparing with the output of a deliberately changed reference (no tanh
derivative, sigmoid instead of tanh, a BPTT loop that runs forward in time, ...).
No function here has the signature of an exercise (and the lab is NumPy only).

Conventions of the lab (row vectors, batch first, steps t = 1..T from h_0)::

    h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)     W_xh: (D, H), W_hh: (H, H), b_h: (H,)
    o_t = h_t W_hq + b_q                           W_hq: (H, V), b_q: (V,)
    cache of step t = (x_t, h_{t-1}, h_t, W_xh, W_hh)

Python indexes from 0: ``X[:, t - 1]`` is x_t, ``states[:, t - 1]`` is h_t.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.checks.core import CheckError, passed
from utils.checks.engine import Cause, call, compare, describe, fail, unpack
from utils.checks.references import rnn_from_weights

__all__ = ["CheckError", "check_clip_grad_norm", "check_loss_and_grads", "check_rnn_backward",
           "check_rnn_forward", "check_rnn_step_backward", "check_rnn_step_forward",
           "check_temporal_softmax_loss"]  # fmt: skip

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


def _number(name: str, x) -> float:
    """``x`` as one float, or a CheckError saying what it is instead."""
    if x is None:
        raise fail(
            f"{name} is None, expected one number.", "Did the function forget to `return` it?"
        )
    try:
        value = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(f"{name} is a {describe(x)}, expected one number.") from None
    if value.size != 1:
        raise fail(f"{name} has shape {value.shape}, expected one number.")
    return float(value.reshape(()))


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


# ----------------------------------------------------------------------------- forward


def check_rnn_step_forward(
    fn: Callable, *, N: int = 3, D: int = 4, H: int = 5, seed: int = 0
) -> None:
    """Check ``rnn_step_forward(x_t, h_prev, W_xh, W_hh, b_h) -> (h_t, cache)`` against ``nn.RNNCell``."""
    label = "rnn_step_forward"
    _, X, h_prev, W_xh, W_hh, b_h = _random_rnn(N, 1, D, H, seed)
    x_t = X[:, 0]
    h_t, cache = unpack(call(fn, label, x_t, h_prev, W_xh, W_hh, b_h), label, ("h_t", "cache"))
    with torch.no_grad():
        want = _n(_cell(W_xh, W_hh, b_h)(_t(x_t), _t(h_prev)))
        transposed = _n(_cell(W_xh, W_hh.T, b_h)(_t(x_t), _t(h_prev)))
        no_bias = _n(_cell(W_xh, W_hh, np.zeros(H))(_t(x_t), _t(h_prev)))
        no_h = _n(_cell(W_xh, W_hh, b_h)(_t(x_t), torch.zeros(N, H, dtype=torch.float64)))
    before_tanh = np.arctanh(np.clip(want, -1 + 1e-15, 1 - 1e-15))
    wrong = _wrong_activation_causes(X, h_prev, W_xh, W_hh, b_h)
    _compare(
        "h_t",
        h_t,
        want,
        shape_hint="h_t must be (N, H): x_t (N, D) times W_xh (D, H), plus h_prev (N, H) times W_hh (H, H).",
        causes=[
            Cause(before_tanh, "It is the value before tanh: apply np.tanh."),
            Cause(transposed, "It uses W_hh transposed: the row-vector convention is h_prev @ W_hh."),
            Cause(no_bias, "The bias b_h is missing."),
            Cause(no_h, "h_prev is missing: h_t must use h_{t-1} through W_hh."),
            *(Cause(c.variant[:, 0], c.explanation) for c in wrong),
        ],
    )  # fmt: skip
    keep = (
        "Keep the line `cache = (x_t, h_prev, h_t, W_xh, W_hh)` that the lab gives: "
        "rnn_step_backward and rnn_backward receive caches in exactly this format."
    )
    _check_cache("cache", cache, (x_t, h_prev, want, W_xh, W_hh), keep)
    passed(
        f"{label}: h_t matches nn.RNNCell with the same weights; the cache holds {', '.join(STEP_CACHE)}."
    )


def check_rnn_forward(
    fn: Callable, *, N: int = 3, T: int = 6, D: int = 4, H: int = 5, seed: int = 1
) -> None:
    """Check ``rnn_forward(X, h0, W_xh, W_hh, b_h) -> (states, caches)`` against ``nn.RNN``,
    and the whole cache of every step."""
    label = "rnn_forward"
    _, X, h0, W_xh, W_hh, b_h = _random_rnn(N, T, D, H, seed)
    states, caches = unpack(call(fn, label, X, h0, W_xh, W_hh, b_h), label, ("states", "caches"))
    rnn, cell = rnn_from_weights(W_xh, W_hh, b_h), _cell(W_xh, W_hh, b_h)
    with torch.no_grad():
        want = _n(rnn(_t(X), _t(h0)[None])[0])
        from_h0 = np.stack([_n(cell(_t(X[:, t]), _t(h0))) for t in range(T)], axis=1)
        backward = _n(rnn(_t(X[:, ::-1].copy()), _t(h0)[None])[0])
        from_zeros = _n(rnn(_t(X), torch.zeros(1, N, H, dtype=torch.float64))[0])
    prev = np.concatenate([h0[:, None], want[:, :-1]], axis=1)  # h_0 .. h_{T-1}
    backward_hint = "The sequence is read backward: go forward in time, t = 1, 2, ..., T."
    _compare(
        "states",
        states,
        want,
        shape_hint="states must be (N, T, H), batch first: stack h_1 .. h_T along axis=1.",
        causes=[
            Cause(prev, "Off by one in time: states[:, t - 1] must be h_t (after step t), not h_{t-1}."),
            Cause(from_h0, "Every step starts from h0: h_t must use h_{t-1}, the state of the step before."),
            Cause(from_zeros, "h0 is not used: the first step must start from the argument h0, not from zeros."),
            Cause(want[:, ::-1], "The time order is reversed: states[:, 0] is h_1, the state after x_1 = X[:, 0]."),
            Cause(backward, backward_hint),
            Cause(backward[:, ::-1], backward_hint),
            *_wrong_activation_causes(X, h0, W_xh, W_hh, b_h),
        ],
    )  # fmt: skip
    if not isinstance(caches, tuple | list) or len(caches) != T:
        size = len(caches) if hasattr(caches, "__len__") else "?"
        raise fail(
            f"caches is a {describe(caches)} of length {size}, expected a list of T = {T} "
            "step caches (one per time step, in time order)."
        )
    hint = (
        "caches[t - 1] must be the cache of step t, (x_t, h_{t-1}, h_t, W_xh, W_hh), exactly "
        "as rnn_step_forward returns it for that step."
    )
    for t, cache in enumerate(caches):
        expected = (X[:, t], prev[:, t], want[:, t], W_xh, W_hh)
        _check_cache(f"caches[{t}]", cache, expected, hint, step=f" of step t = {t + 1}")
    passed(
        f"{label}: states match nn.RNN (batch_first) with the same weights; {T} step caches in time order."
    )


def check_temporal_softmax_loss(
    fn: Callable, *, N: int = 2, T: int = 3, V: int = 5, seed: int = 2
) -> None:
    """Check ``temporal_softmax_loss(scores, Y) -> (loss, dscores)`` against ``F.cross_entropy`` (mean)."""
    label = "temporal_softmax_loss"
    rng = np.random.default_rng(seed)
    scores = rng.normal(scale=2.0, size=(N, T, V))
    Y = rng.integers(0, V, size=(N, T))
    scores_t = _t(scores).requires_grad_()
    ref = F.cross_entropy(scores_t.reshape(-1, V), torch.as_tensor(Y).reshape(-1))
    ref.backward()
    loss, dscores = unpack(call(fn, label, scores, Y), label, ("loss", "dscores"))
    want_loss, want = np.array(ref.item()), _n(scores_t.grad)
    _compare(
        "loss",
        np.asarray(_number("loss", loss)),
        want_loss,
        causes=[
            Cause(want_loss * N * T, "It is the sum over all positions: divide by N * T (the mean)."),
            Cause(want_loss * T, "It is averaged over N only: average over N * T positions."),
            Cause(want_loss * N, "It is averaged over T only: average over N * T positions."),
        ],
    )  # fmt: skip
    _compare(
        "dscores",
        dscores,
        want,
        shape_hint="dscores must have the shape of scores: (N, T, V).",
        causes=[
            Cause(want * N * T, "dscores is N * T times too large: the loss is a mean, so divide by N * T."),
            Cause(want * T, "dscores is averaged over N only: divide by N * T."),
            Cause(want * N, "dscores is averaged over T only: divide by N * T."),
            Cause(-want, "dscores has the wrong sign: it is softmax(scores) minus the one-hot targets."),
        ],
    )  # fmt: skip
    # Large scores must not overflow: softmax is unchanged by adding a constant.
    big = unpack(call(fn, label, scores + 1000.0, Y), label, ("loss", "dscores"))
    big_loss = _number("loss for scores + 1000", big[0])
    if not (np.isfinite(big_loss) and _finite(big[1])):
        raise fail(
            "with scores around 1000 the loss or dscores is not finite (np.exp overflows).",
            "Subtract the largest score of each row before np.exp: softmax does not change.",
        )
    _compare("loss for scores + 1000", np.asarray(big_loss), want_loss)
    passed(
        f"{label}: loss and dscores match F.cross_entropy (mean over N*T) and autograd; stable for large scores."
    )


# ----------------------------------------------------------------------------- backward


def check_rnn_step_backward(
    fn: Callable, *, N: int = 3, D: int = 4, H: int = 5, seed: int = 3
) -> None:
    """Check ``rnn_step_backward(dh_t, cache) -> (dx_t, dh_prev, dW_xh, dW_hh, db_h)`` by autograd.

    The cache is built here from ``nn.RNNCell`` (in the lab's format), so this
    check does not depend on your forward pass.
    """
    label = "rnn_step_backward"
    rng, X, h_prev, W_xh, W_hh, b_h = _random_rnn(N, 1, D, H, seed)
    dh_t = rng.normal(size=(N, 1, H))
    ref = _rnn_autograd(X, h_prev, W_xh, W_hh, b_h, dh_t)
    no_tanh = _unrolled_autograd(X, h_prev, W_xh, W_hh, b_h, dh_t, tanh_grad=False)
    cache = (X[:, 0], h_prev, ref["states"][:, 0], W_xh, W_hh)
    names = ("dx_t", "dh_prev", "dW_xh", "dW_hh", "db_h")
    got = dict(zip(names, unpack(call(fn, label, dh_t[:, 0], cache), label, names)))
    want = {
        "dx_t": (ref["dX"][:, 0], no_tanh["dX"][:, 0], "(N, D) like x_t"),
        "dh_prev": (ref["dh0"], no_tanh["dh0"], "(N, H) like h_prev"),
        "dW_xh": (ref["dW_xh"], no_tanh["dW_xh"][0], "(D, H) like W_xh"),
        "dW_hh": (ref["dW_hh"], no_tanh["dW_hh"][0], "(H, H) like W_hh"),
        "db_h": (ref["db_h"], no_tanh["db_h"][0], "(H,) like b_h: sum over the batch"),
    }
    missing_tanh = "It misses the tanh derivative: multiply dh_t by (1 - h_t**2) first."
    # Weight gradients first: when they are right, a wrong dx_t / dh_prev is a matmul problem.
    # db_h is the batch sum of da_t, so once db_h is right, da_t is right too.
    hints = {
        "db_h": "db_h is the sum over the batch of da_t = dh_t * (1 - h_t**2), with h_t taken "
        "from the cache (it already includes b_h): check da_t.",
        "dW_xh": "db_h is right, so da_t is right: dW_xh = x_t^T da_t, (D, N) @ (N, H).",
        "dW_hh": "db_h is right, so da_t is right: dW_hh = h_prev^T da_t, (H, N) @ (N, H).",
    }
    for name, weight in {"dx_t": "W_xh", "dh_prev": "W_hh"}.items():
        hints[name] = (
            f"The weight gradients are right, so the error is in how {name} flows back "
            f"through {weight}: check the side and the transpose of {weight} in the matmul."
        )
    for name in ("db_h", "dW_xh", "dW_hh", "dx_t", "dh_prev"):
        reference, without_tanh, shape = want[name]
        _compare(name, got[name], reference, shape_hint=f"{name} must be {shape}.",
                 hint=hints[name], causes=[Cause(without_tanh, missing_tanh)])  # fmt: skip
    passed(f"{label}: {', '.join(names)} match autograd through nn.RNNCell.")


_BPTT_HINTS = {
    "first": "Only the gradient of step t = 1 is counted: accumulate dW over t (+=), do not overwrite it.",
    "last": "Only the last time step's gradient is counted: accumulate dW over t (+=), do not overwrite it.",
    "skip_first": "Off by one in time: the first step (t = 1, caches[0]) is left out of the loop; reversed(range(T)) visits every index T - 1, ..., 0.",
    "skip_last": "Off by one in time: the last step t = T (caches[T - 1]) is left out of the loop.",
    "tanh": "It misses the tanh derivative: multiply the upstream gradient by (1 - h_t**2).",
    "carry": "The gradient does not flow back through time: add dh_prev of step t to the upstream gradient of step t - 1.",
    "reversed": "The time order is reversed: dX[:, t - 1] belongs to x_t.",
    "forward": "The loop runs forward in time: BPTT starts at the last step t = T and walks back to t = 1 (for t in reversed(range(T))), so that dh_prev of step t reaches step t - 1.",
}  # fmt: skip
_SHAPES = {"dX": "(N, T, D) like X", "dh0": "(N, H) like h0", "dW_xh": "(D, H) like W_xh",
           "dW_hh": "(H, H) like W_hh", "db_h": "(H,) like b_h"}  # fmt: skip


def _check_rnn_backward_once(fn: Callable, N, T, D, H, seed, where: str = "") -> None:
    label = "rnn_backward"
    rng, X, h0, W_xh, W_hh, b_h = _random_rnn(N, T, D, H, seed)
    dstates = rng.normal(size=(N, T, H))
    ref = _rnn_autograd(X, h0, W_xh, W_hh, b_h, dstates)
    prev = np.concatenate([h0[:, None], ref["states"][:, :-1]], axis=1)
    caches = [(X[:, t], prev[:, t], ref["states"][:, t], W_xh, W_hh) for t in range(T)]
    per_step = _unrolled_autograd(X, h0, W_xh, W_hh, b_h, dstates)
    no_tanh = _unrolled_autograd(X, h0, W_xh, W_hh, b_h, dstates, tanh_grad=False)
    no_carry = _unrolled_autograd(X, h0, W_xh, W_hh, b_h, dstates, carry=False)
    without_last = dstates.copy()
    without_last[:, -1] = 0.0  # what a loop that never visits t = T computes
    no_last = _unrolled_autograd(X, h0, W_xh, W_hh, b_h, without_last)
    forward = _bptt_forward_in_time(X, h0, W_xh, W_hh, b_h, dstates)
    names = ("dX", "dh0", "dW_xh", "dW_hh", "db_h")
    # call copies its array arguments; the list of caches is passed as is.
    got = dict(zip(names, unpack(call(fn, label, dstates, caches), label, names)))
    h = _BPTT_HINTS
    # Weight gradients first: their wrong values say most about the cause.
    for name in ("dW_xh", "dW_hh", "db_h", "dX", "dh0"):
        if name in ("dW_xh", "dW_hh", "db_h"):
            steps = per_step[name]
            causes = [(steps[0], h["first"]), (steps[-1], h["last"]),
                      (sum(steps[1:]), h["skip_first"]), (sum(no_last[name]), h["skip_last"]),
                      (sum(no_tanh[name]), h["tanh"]), (sum(no_carry[name]), h["carry"])]  # fmt: skip
        else:
            causes = [(no_tanh[name], h["tanh"]), (no_carry[name], h["carry"]),
                      (no_last[name], h["skip_last"])]  # fmt: skip
        causes.append((forward[name], h["forward"]))
        if name == "dX":
            causes.append((ref[name][:, ::-1], h["reversed"]))
        _compare(name + where, got[name], ref[name], causes=causes,
                 shape_hint=f"{name} must be {_SHAPES[name]}.")  # fmt: skip


def check_rnn_backward(
    fn: Callable, *, N: int = 2, T: int = 5, D: int = 3, H: int = 4, seed: int = 4
) -> None:
    """Check ``rnn_backward(dstates, caches) -> (dX, dh0, dW_xh, dW_hh, db_h)`` by autograd.

    The caches are built here from ``nn.RNN`` (in the lab's format), and the
    reference gradients come from autograd through ``nn.RNN``; the check runs
    on the given sizes and on a longer sequence (``LONG``: T = 25, D > H).
    """
    _check_rnn_backward_once(fn, N, T, D, H, seed)
    _check_rnn_backward_once(fn, **LONG, seed=seed + 1000, where=f" (over T = {LONG['T']} steps)")
    passed(
        f"rnn_backward: dX, dh0, dW_xh, dW_hh, db_h match autograd through nn.RNN over "
        f"T = {T} and T = {LONG['T']} steps."
    )


# ----------------------------------------------------------------------------- the model


def _check_loss_and_grads_once(fn: Callable, N, T, V, H, seed, where: str = "") -> None:
    label = "loss_and_grads"
    rng, X, h0, W_xh, W_hh, b_h = _random_rnn(N, T, V, H, seed)
    W_hq, b_q = rng.normal(scale=0.5, size=(H, V)), rng.normal(scale=0.3, size=V)
    params = dict(zip(PARAM_NAMES, (W_xh, W_hh, b_h, W_hq, b_q)))
    Y = rng.integers(0, V, size=(N, T))
    # The reference, computed here: nn.RNN + nn.Linear + F.cross_entropy, and autograd.
    rnn, out = rnn_from_weights(W_xh, W_hh, b_h), nn.Linear(H, V).double()
    with torch.no_grad():
        out.weight.copy_(_t(W_hq).T)
        out.bias.copy_(_t(b_q))
    targets = torch.as_tensor(Y).reshape(-1)
    zeros = torch.zeros(N, H, dtype=torch.float64)
    losses = [  # the loss; with h0 not used; without b_q
        F.cross_entropy(out(rnn(_t(X), h[None])[0]).reshape(-1, V) - shift, targets)
        for h, shift in ((_t(h0), 0.0), (zeros, 0.0), (_t(h0), out.bias.detach()))
    ]
    losses[0].backward()
    want = (rnn.weight_ih_l0.grad.T, rnn.weight_hh_l0.grad.T, rnn.bias_ih_l0.grad,
            out.weight.grad.T, out.bias.grad)  # fmt: skip
    given = {k: v.copy() for k, v in params.items()}
    loss, grads = unpack(call(fn, label, given, X, Y, h0), label, ("loss", "grads"))
    for k in PARAM_NAMES:
        if not np.array_equal(given[k], params[k]):
            raise fail(
                f"{label} changed params[{k!r}] in place: it should only compute, the training loop updates."
            )
    _compare(
        "loss" + where,
        np.asarray(_number("loss", loss)),
        np.asarray(losses[0].item()),
        causes=[
            Cause(np.asarray(losses[1].item()), "h0 is not used: pass the argument h0 to rnn_forward."),
            Cause(np.asarray(losses[2].item()), "b_q is missing: the scores are states @ W_hq + b_q."),
        ],
        hint="Do check_rnn_forward and check_temporal_softmax_loss pass? Then look at the "
        "scores, states @ W_hq + b_q, of shape (N, T, V).",
    )  # fmt: skip
    if not isinstance(grads, dict):
        raise fail(f"grads is a {describe(grads)}, expected a dict {{name: gradient}} like params.")
    missing = [k for k in PARAM_NAMES if k not in grads]
    if missing:
        raise fail(
            f"grads has the keys {sorted(grads)}, missing {missing}.",
            "Use the same keys as params (W_xh, W_hh, b_h, W_hq, b_q).",
        )
    rnn_hint = "check_rnn_backward passes? Then look at dstates = dscores @ W_hq^T, fed to rnn_backward."  # fmt: skip
    hints = {
        "W_hq": "The output layer is applied at every time step: its gradient sums over N and T.",
        "b_q": "Sum dscores over N and T.",
    }
    for k, reference in zip(PARAM_NAMES, want):
        _compare(f"grads[{k!r}]{where}", grads[k], _n(reference), hint=hints.get(k, rnn_hint),
                 shape_hint=f"It must have the shape of params[{k!r}].")  # fmt: skip


def check_loss_and_grads(
    fn: Callable, *, N: int = 2, T: int = 4, V: int = 4, H: int = 5, seed: int = 5
) -> None:
    """Check ``loss_and_grads(params, X, Y, h0) -> (loss, grads)`` against PyTorch autograd,
    on the given sizes and on a longer sequence (T = 25)."""
    _check_loss_and_grads_once(fn, N, T, V, H, seed)
    long = (LONG["N"], LONG["T"], LONG["D"], LONG["H"], seed + 1000)
    _check_loss_and_grads_once(fn, *long, where=f" (over T = {LONG['T']} steps)")
    passed(
        "loss_and_grads: loss and every gradient match nn.RNN + nn.Linear + F.cross_entropy "
        f"(autograd), for T = {T} and T = {LONG['T']}."
    )


# ----------------------------------------------------------------------------- clipping

_ZERO_HINT = (
    "With all-zero gradients total_norm is 0: do not divide by it alone (PyTorch divides by "
    "total_norm + 1e-6); the clipped gradients are zeros and total_norm is 0."
)


def _clip_causes(grads: dict, max_norm: float, norm: float) -> dict[str, dict]:
    """Known wrong clipped gradients, by explanation."""
    scale = lambda f: {k: f(g) for k, g in grads.items()}  # noqa: E731
    return {
        "Nothing was clipped, but the global norm is above max_norm: scale every array by max_norm / total_norm.": grads,
        "Each array was clipped by its own norm: use one global norm over all arrays.":
            scale(lambda g: g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-300))),
        "np.clip clips each value, not the norm: scale every array by max_norm / total_norm.":
            scale(lambda g: np.clip(g, -max_norm, max_norm)),
        "The gradient is rescaled although its norm is below max_norm: only scale down, never up.":
            scale(lambda g: g * max_norm / (norm + 1e-6)),
    }  # fmt: skip


def check_clip_grad_norm(fn: Callable, *, seed: int = 6) -> None:
    """Check ``clip_grad_norm(grads, max_norm) -> (clipped, total_norm)`` against
    ``torch.nn.utils.clip_grad_norm_``: norm above and below max_norm, and all zeros."""
    label, max_norm = "clip_grad_norm", 1.0
    rng = np.random.default_rng(seed)
    shapes = {"W_xh": (4, 5), "W_hh": (5, 5), "b_h": (5,)}
    cases = {"norm above max_norm": 3.0, "norm below max_norm": 0.05, "all zeros": 0.0}
    for case, scale in cases.items():
        grads = {k: rng.normal(scale=scale, size=s) for k, s in shapes.items()}
        tensors = [nn.Parameter(_t(g)) for g in grads.values()]
        for p, g in zip(tensors, grads.values()):
            p.grad = _t(g)
        want_norm = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
        given, zero_hint = {k: g.copy() for k, g in grads.items()}, None if scale else _ZERO_HINT
        try:
            out = call(fn, label, given, max_norm)
        except CheckError as e:
            if scale or e.__cause__ is None:
                raise
            error = f"{type(e.__cause__).__name__}: {e.__cause__}"
            raise fail(f"{label} raised {error} (all-zero gradients).", _ZERO_HINT) from e
        clipped, total_norm = unpack(out, label, ("clipped", "total_norm"))
        if any(not np.array_equal(given[k], grads[k]) for k in grads):
            raise fail(f"{label} changed the arrays in grads in place.", "Return new arrays (g * scale).")  # fmt: skip
        if not isinstance(clipped, dict) or sorted(clipped) != sorted(grads):
            keys = f" with keys {sorted(clipped)}" if isinstance(clipped, dict) else ""
            raise fail(f"clipped is a {describe(clipped)}{keys}, expected a dict with the keys of "
                       f"grads {sorted(grads)}.")  # fmt: skip
        if not scale and not all(map(_finite, [total_norm, *clipped.values()])):
            raise fail(f"{label} returned non-finite values (NaN or inf) for all-zero gradients.", _ZERO_HINT)  # fmt: skip
        _compare(
            "total_norm",
            np.asarray(_number("total_norm", total_norm)),
            np.asarray(want_norm),
            threshold=1e-6,
            causes=[
                Cause(np.asarray(want_norm**2), "It is the squared norm: take the square root."),
                Cause(np.asarray(min(want_norm, max_norm)), "Return the norm before clipping (as PyTorch does)."),
            ],
            hint=zero_hint,
        )  # fmt: skip
        causes = _clip_causes(grads, max_norm, want_norm)
        for k, p in zip(grads, tensors):
            _compare(f"clipped[{k!r}] ({case})", clipped[k], _n(p.grad), threshold=1e-6,
                     hint=zero_hint, causes=[Cause(v[k], why) for why, v in causes.items()])  # fmt: skip
            if isinstance(clipped[k], np.ndarray) and np.shares_memory(clipped[k], given[k]):
                raise fail(
                    f"clipped[{k!r}] is the input array grads[{k!r}] itself ({case}).",
                    "Return new arrays in every case, also when nothing is clipped (g * scale "
                    "makes one): whoever changes the clipped gradients would change grads too.",
                )
    passed(
        f"{label}: matches torch.nn.utils.clip_grad_norm_ above and below max_norm and for "
        "all-zero gradients; returns new arrays, inputs unchanged."
    )
