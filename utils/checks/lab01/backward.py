"""Lab 1 checks of backpropagation through time: one step, then the whole sequence."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from utils.checks.core import passed
from utils.checks.engine import Cause, call, unpack
from utils.checks.lab01.reference import (
    LONG,
    _bptt_forward_in_time,
    _compare,
    _random_rnn,
    _rnn_autograd,
    _unrolled_autograd,
)


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
