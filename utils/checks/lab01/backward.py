"""Lab 1 checks of backpropagation through time: one step, then the whole sequence."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from utils.checks.core import passed
from utils.checks.engine import Cause, call, unpack
from utils.checks.lab01.reference import (
    LONG,
    _check_unchanged,
    _compare,
    _random_rnn,
    _rnn_autograd,
    _snapshot,
    _unrolled_autograd,
    _wrong_bptt_loop,
)

_OTHER_STEP = {"N": 1, "D": 5, "H": 3}  # a second set of sizes: one row, D > H
_EVEN = {"N": 1, "T": 4, "D": 2, "H": 3}  # a third sequence: T even, one row

_DERIVATIVES = {
    "none": "It misses the tanh derivative: multiply dh_t by (1 - h_t**2) first.",
    "h_prev": "The tanh derivative is taken at h_prev: it is 1 - h_t**2, with h_t = tanh(a_t) "
    "the output of this step (the cache's third item).",
    "tanh(h_t)": "It applies np.tanh to h_t again: h_t is already tanh(a_t), so the "
    "derivative is 1 - h_t**2.",
}


def _step_grads(grads: dict) -> dict:
    """The five gradients of one step from an autograd result over T = 1."""
    first = lambda v: v[0] if isinstance(v, list) else v  # noqa: E731
    return {"dx_t": grads["dX"][:, 0], "dh_prev": grads["dh0"], "dW_xh": first(grads["dW_xh"]),
            "dW_hh": first(grads["dW_hh"]), "db_h": first(grads["db_h"])}  # fmt: skip


def _check_step_backward_once(fn: Callable, N, D, H, seed, where: str = "") -> None:
    label = "rnn_step_backward"
    rng, X, h_prev, W_xh, W_hh, b_h = _random_rnn(N, 1, D, H, seed)
    dh_t = rng.normal(size=(N, 1, H))
    ref = _rnn_autograd(X, h_prev, W_xh, W_hh, b_h, dh_t)
    wrong = {k: _unrolled_autograd(X, h_prev, W_xh, W_hh, b_h, dh_t, derivative=k)
             for k in _DERIVATIVES}  # fmt: skip
    cache = (X[:, 0], h_prev, ref["states"][:, 0], W_xh, W_hh)
    before = _snapshot([cache])
    names = ("dx_t", "dh_prev", "dW_xh", "dW_hh", "db_h")
    got = dict(zip(names, unpack(call(fn, label, dh_t[:, 0], cache), label, names)))
    _check_unchanged(label, [cache], [cache], before)
    shapes = {"dx_t": "(N, D) like x_t", "dh_prev": "(N, H) like h_prev", "dW_xh": "(D, H) like W_xh",
              "dW_hh": "(H, H) like W_hh", "db_h": "(H,) like b_h: sum over the batch"}  # fmt: skip
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
    want, wrong = _step_grads(ref), {k: _step_grads(w) for k, w in wrong.items()}
    for name in ("db_h", "dW_xh", "dW_hh", "dx_t", "dh_prev"):
        causes = [Cause(w[name], _DERIVATIVES[k]) for k, w in wrong.items()]
        _compare(name + where, got[name], want[name], shape_hint=f"{name} must be {shapes[name]}.",
                 hint=hints[name], causes=causes)  # fmt: skip


def check_rnn_step_backward(
    fn: Callable, *, N: int = 3, D: int = 4, H: int = 5, seed: int = 3
) -> None:
    """Check ``rnn_step_backward(dh_t, cache) -> (dx_t, dh_prev, dW_xh, dW_hh, db_h)`` by autograd,
    on the given sizes and on others (N = 1, D > H); the cache must come back unchanged.

    The cache is built here from ``nn.RNNCell`` (in the lab's format), so this
    check does not depend on your forward pass.
    """
    _check_step_backward_once(fn, N, D, H, seed)
    sizes = ", ".join(f"{k} = {v}" for k, v in _OTHER_STEP.items())
    _check_step_backward_once(fn, **_OTHER_STEP, seed=seed + 1000, where=f" ({sizes})")
    passed(
        "rnn_step_backward: dx_t, dh_prev, dW_xh, dW_hh, db_h match autograd through nn.RNNCell "
        "(two sets of sizes); the cache is unchanged."
    )


_BPTT_HINTS = {
    "first": "Only the gradient of step t = 1 is counted: accumulate dW over t (+=), do not overwrite it.",
    "last": "Only the last time step's gradient is counted: accumulate dW over t (+=), do not overwrite it.",
    "skip_first": "Off by one in time: the first step (t = 1, caches[0]) is left out of the loop; reversed(range(T)) visits every index T - 1, ..., 0.",
    "skip_last": "Off by one in time: the gradient of the last step t = T never enters (is caches[T - 1] or dstates[:, T - 1] left out of the loop?).",
    "tanh": "It misses the tanh derivative: multiply the upstream gradient by (1 - h_t**2).",
    "carry": "The gradient does not flow back through time: add dh_prev of step t to the upstream gradient of step t - 1.",
    "reversed": "The time order is reversed: dX[:, t - 1] belongs to x_t.",
    "forward": "The loop runs forward in time: BPTT starts at the last step t = T and walks back to t = 1 (for t in reversed(range(T))), so that dh_prev of step t reaches step t - 1.",
    "shift": "Off by one in time: dstates and caches are paired with different indices; step t uses caches[t - 1] and dstates[:, t - 1] (in the loop, caches[t] goes with dstates[:, t]).",
    "dh1": "dh0 is the gradient reaching h_1, not h_0: it must still pass step t = 1; dh0 is the dh_prev that rnn_step_backward returns for caches[0].",
    "dh_last": "dh0 is the dh_prev of the last step t = T (the loop's first iteration): dh0 is what comes out of step t = 1, after the whole loop.",
    "only_T": "Only the loss at the last step t = T enters: every step t receives its own dstates[:, t - 1] plus the dh_prev carried back from step t + 1; add them, do not use one in place of the other.",
    "other": "Does check_rnn_step_backward pass? Then look at the loop: step t (caches[t - 1]) receives dstates[:, t - 1] plus the dh_prev of step t + 1, the weight gradients add up over t, and dh0 is the dh_prev of step t = 1.",
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

    @functools.cache
    def wrong():
        """The known wrong answers, computed only when an answer is wrong."""
        per_step = _unrolled_autograd(X, h0, W_xh, W_hh, b_h, dstates)
        without_last = dstates.copy()
        without_last[:, -1] = 0.0  # what a loop that never visits t = T computes
        only_last = np.zeros_like(dstates)
        only_last[:, -1] = dstates[:, -1]  # what a loop that adds dstates at t = T only computes
        back = list(reversed(range(T)))
        # dh0 taken at the wrong place: at h_1, or the dh_prev of step T (dL/dh_{T-1} through h_T).
        dh_last = per_step["dstates"][:, -2] - dstates[:, -2] if T > 1 else ref["dh0"]
        return {
            "per_step": per_step,
            "no_tanh": _unrolled_autograd(X, h0, W_xh, W_hh, b_h, dstates, derivative="none"),
            "no_carry": _unrolled_autograd(X, h0, W_xh, W_hh, b_h, dstates, carry=False),
            "no_last": _unrolled_autograd(X, h0, W_xh, W_hh, b_h, without_last),
            "only_T": _unrolled_autograd(X, h0, W_xh, W_hh, b_h, only_last),
            "loops": [  # wrong loops: forward in time, or dstates and caches off by one
                ("forward", _wrong_bptt_loop(caches, b_h, dstates, range(T))),
                ("shift", _wrong_bptt_loop(caches, b_h, dstates, back, dstates_at=lambda t: t - 1)),
                ("shift", _wrong_bptt_loop(caches, b_h, dstates, back, cache_at=lambda t: t - 1)),
            ],
            "wrong_dh0": [(per_step["dstates"][:, 0], "dh1"), (dh_last, "dh_last")],
        }

    names = ("dX", "dh0", "dW_xh", "dW_hh", "db_h")
    items, before = list(caches), _snapshot(caches)
    # call copies its array arguments; the list of caches is passed as is (and checked after).
    got = dict(zip(names, unpack(call(fn, label, dstates, caches), label, names)))
    _check_unchanged(label, caches, items, before, where="per step")
    h = _BPTT_HINTS
    # Weight gradients first: their wrong values say most about the cause.
    for name in ("dW_xh", "dW_hh", "db_h", "dX", "dh0"):
        _compare(name + where, got[name], ref[name], causes=_bptt_causes(name, wrong, ref), hint=h["other"],
                 shape_hint=f"{name} must be {_SHAPES[name]}.")  # fmt: skip


def _bptt_causes(name: str, wrong, ref):
    """The known wrong answers for ``name``, in order (a generator: computed on a failure)."""
    h, w = _BPTT_HINTS, wrong()
    if name in ("dW_xh", "dW_hh", "db_h"):
        steps = w["per_step"][name]
        yield from [(steps[0], h["first"]), (steps[-1], h["last"]),
                    (sum(steps[1:]), h["skip_first"]), (sum(w["no_last"][name]), h["skip_last"]),
                    (sum(w["no_tanh"][name]), h["tanh"]), (sum(w["no_carry"][name]), h["carry"]),
                    (sum(w["only_T"][name]), h["only_T"])]  # fmt: skip
    else:
        yield from [(w["no_tanh"][name], h["tanh"]), (w["no_carry"][name], h["carry"]),
                    (w["no_last"][name], h["skip_last"]), (w["only_T"][name], h["only_T"])]  # fmt: skip
    yield from ((loop[name], h[key]) for key, loop in w["loops"])
    if name == "dX":
        yield (ref[name][:, ::-1], h["reversed"])
    if name == "dh0":
        yield from ((value, h[key]) for value, key in w["wrong_dh0"])


def check_rnn_backward(
    fn: Callable, *, N: int = 2, T: int = 5, D: int = 3, H: int = 4, seed: int = 4
) -> None:
    """Check ``rnn_backward(dstates, caches) -> (dX, dh0, dW_xh, dW_hh, db_h)`` by autograd.

    The caches are built here from ``nn.RNN`` (in the lab's format) and must come
    back unchanged; the reference gradients come from autograd through ``nn.RNN``.
    The check runs on the given sizes, on a longer sequence (``LONG``: T = 25,
    D > H) and on a short one with T even and N = 1.
    """
    _check_rnn_backward_once(fn, N, T, D, H, seed)
    _check_rnn_backward_once(fn, **LONG, seed=seed + 1000, where=f" (over T = {LONG['T']} steps)")
    _check_rnn_backward_once(fn, **_EVEN, seed=seed + 2000, where=f" (over T = {_EVEN['T']} steps, N = 1)")  # fmt: skip
    passed(
        f"rnn_backward: dX, dh0, dW_xh, dW_hh, db_h match autograd through nn.RNN over "
        f"T = {T}, T = {LONG['T']} and T = {_EVEN['T']} steps; the caches are unchanged."
    )
