"""Lab 2 checks of the LSTM over a sequence: forward, BPTT, gradient norms through time."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import passed
from utils.checks.engine import (
    Cause,
    CheckError,
    call,
    check_unchanged,
    describe,
    fail,
    snapshot,
    unpack,
)
from utils.checks.lab02.reference import (
    LONG,
    LSTM_CACHE,
    _compare,
    _n,
    _t,
    check_cache,
    check_distinct,
    lstm_module,
    lstm_step_t,
    random_lstm,
)

_EDGE = {"N": 1, "T": 1, "D": 2, "H": 3}  # one row, one step, zero initial states
ODD = {"N": 3, "T": 3, "D": 2, "H": 2}  # T odd (the other runs have T even or 1), D = H


def _where(sizes: dict, zero: bool = False) -> str:
    text = ", ".join(f"{k} = {v}" for k, v in sizes.items())
    return f" ({text}{', h0 = c0 = 0' if zero else ''})"


def _unrolled(X, h0, c0, W_x, W_h, b, dstates, *flags, carry_h=True, carry_c=True,
              from_h0=False) -> dict:  # fmt: skip
    """Autograd of sum(states * dstates) through T steps, each with its own copy of the
    weights (per-step weight gradients); nn.LSTMCell copies when no flag is given.
    Returns dX, dh0, dc0, per-step dW_x, dW_h, db, and the total gradients dh, dc
    (N, T, H) reaching every h_t and c_t; ``carry_*=False`` cuts a path between steps."""
    X_t, h, c = (_t(v).requires_grad_() for v in (X, h0, c0))
    h0_t, c0_t = h, c
    hs, cs, weights = [], [], []
    for t in range(X.shape[1]):
        if flags:
            w = [_t(v).requires_grad_() for v in (W_x, W_h, b)]
            h_new, c_new = lstm_step_t(X_t[:, t], h, c, *w, *flags)
        else:
            cell = lstm_module(W_x, W_h, b)
            w = [cell.weight_ih, cell.weight_hh, cell.bias_ih]
            h_new, c_new = cell(X_t[:, t], (h, c))
        h_new.retain_grad()
        c_new.retain_grad()
        hs.append(h_new), cs.append(c_new), weights.append(w)
        h = h_new if carry_h else (h0_t if from_h0 else h_new.detach())
        c = c_new if carry_c else c_new.detach()
    (torch.stack(hs, 1) * _t(dstates)).sum().backward()
    tr = (lambda g: g.T) if not flags else (lambda g: g)  # nn.* stores (4H, D)
    return {
        "dX": _n(X_t.grad), "dh0": _n(h0_t.grad), "dc0": _n(c0_t.grad),
        "dW_x": [_n(tr(w[0].grad)) for w in weights], "dW_h": [_n(tr(w[1].grad)) for w in weights],
        "db": [_n(w[2].grad) for w in weights],
        "dh": np.stack([_n(v.grad) for v in hs], 1), "dc": np.stack([_n(v.grad) for v in cs], 1),
        "states": np.stack([_n(v) for v in hs], 1), "cells": np.stack([_n(v) for v in cs], 1),
    }  # fmt: skip


def _caches(X, h0, c0, W_x, W_h, b, states, cells) -> list:
    """The lab's step caches, from the states and cells of nn.LSTM."""
    H = h0.shape[1]
    prev_h = np.concatenate([h0[:, None], states[:, :-1]], 1)
    prev_c = np.concatenate([c0[:, None], cells[:, :-1]], 1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    caches = []
    for t in range(X.shape[1]):
        a = X[:, t] @ W_x + prev_h[:, t] @ W_h + b
        gates = (
            sig(a[:, :H]),
            sig(a[:, H : 2 * H]),
            np.tanh(a[:, 2 * H : 3 * H]),
            sig(a[:, 3 * H :]),
        )
        caches.append((X[:, t], prev_h[:, t], prev_c[:, t], *gates, cells[:, t], W_x, W_h))
    return caches


def _lstm_run(X, h0, c0, W_x, W_h, b) -> np.ndarray:
    lstm = lstm_module(W_x, W_h, b, cell=False)
    with torch.no_grad():
        return _n(lstm(_t(X), (_t(h0)[None], _t(c0)[None]))[0])


def _check_forward_once(fn: Callable, N, T, D, H, seed, zero=False, where="") -> None:
    label = "lstm_forward"
    _, X, h0, c0, W_x, W_h, b = random_lstm(N, T, D, H, seed, zero_state=zero)
    out = unpack(call(fn, label, X, h0, c0, W_x, W_h, b), label, ("states", "caches"))
    want = _lstm_run(X, h0, c0, W_x, W_h, b)
    ref = _unrolled(X, h0, c0, W_x, W_h, b, np.zeros((N, T, H)))
    cell = lstm_module(W_x, W_h, b)
    with torch.no_grad():
        from_start = np.stack([_n(cell(_t(X[:, t]), (_t(h0), _t(c0)))[0]) for t in range(T)], 1)
    prev = np.concatenate([h0[:, None], want[:, :-1]], 1)
    causes = [
        Cause(prev, "Off by one in time: states[:, t - 1] must be h_t (after step t), not h_{t-1}."),
        Cause(ref["cells"], "states holds the cell states c_t: it is h_t = o_t * tanh(c_t)."),
        Cause(_lstm_run(np.roll(X, 1, 1), h0, c0, W_x, W_h, b), "Off by one in time in the "
              "inputs: step t reads X[:, t - 2]; in for t in range(T), step t + 1 reads X[:, t]."),
        Cause(from_start, "Every step starts from h0 and c0: step t uses h_{t-1} and c_{t-1}."),
        Cause(want[:, ::-1], "The time order is reversed: states[:, 0] is h_1."),
        Cause(_lstm_run(X[:, ::-1].copy(), h0, c0, W_x, W_h, b), "The sequence is read backward."),
        Cause(_lstm_run(X, h0, 0 * c0, W_x, W_h, b), "c0 is not used: the first step starts from c0."),
        Cause(_lstm_run(X, 0 * h0, c0, W_x, W_h, b), "h0 is not used: the first step starts from h0."),
        Cause(_lstm_run(X, 0 * h0, 0 * c0, W_x, W_h, b), "h0 and c0 are not used."),
    ]  # fmt: skip
    if T > 1:
        with torch.no_grad():
            h, no_c = _t(h0), []
            for t in range(T):  # c is not carried: every step starts from c0
                h = cell(_t(X[:, t]), (h, _t(c0)))[0]
                no_c.append(_n(h))
        causes.append(Cause(np.stack(no_c, 1), "c_t is not carried to the next step: step t "
                            "uses c_{t-1}, the cell state the step before returned."))  # fmt: skip
        causes.append(Cause(_unrolled(X, h0, c0, W_x, W_h, b, 0 * want, carry_h=False,
                                      from_h0=True)["states"], "h_t is not carried to the "
                            "next step: step t uses h_{t-1}, the state the step before returned."))  # fmt: skip
    _compare("states" + where, out[0], want, causes=causes,
             shape_hint="states must be (N, T, H): stack h_1 .. h_T along axis=1.",
             hint="Does check_lstm_step_forward pass? Then look at the loop: step t reads "
             "X[:, t - 1] and the (h, c) the step before returned.")  # fmt: skip
    caches = out[1]
    if not isinstance(caches, tuple | list) or len(caches) != T:
        raise fail(f"caches is a {describe(caches)}, expected a list of T = {T} step caches.")
    expected = _caches(X, h0, c0, W_x, W_h, b, want, ref["cells"])
    hint = "caches[t - 1] must be the cache of step t, as lstm_step_forward returns it."
    for t, (cache, exp) in enumerate(zip(caches, expected)):
        try:
            check_cache(
                f"caches[{t}]", cache, exp, LSTM_CACHE, hint, f" of step t = {t + 1}{where}"
            )
        except CheckError as e:  # a wrong state in a cache: one buffer in several caches?
            if any(f"] ({p} of step" in str(e) for p in ("h_prev", "c_prev", "c_t")):
                check_distinct(caches, {1: ("h_prev", 0), 2: ("c_prev", 0), 7: ("c_t", 1)})
            raise


def check_lstm_forward(
    fn: Callable, *, N: int = 2, T: int = 6, D: int = 3, H: int = 4, seed: int = 1
) -> None:
    """Check ``lstm_forward(X, h0, c0, W_x, W_h, b) -> (states, caches)`` against ``nn.LSTM``
    (batch first, (h0, c0) given), on the given sizes, with T = 1, N = 1 and zero
    initial states, with T = 3 (odd) and on a longer sequence (T = 30); no array may hold
    two different states in two caches."""
    _check_forward_once(fn, N, T, D, H, seed)
    _check_forward_once(fn, **_EDGE, seed=seed + 1000, zero=True, where=_where(_EDGE, True))
    _check_forward_once(fn, **LONG, seed=seed + 2000, where=_where(LONG))
    _check_forward_once(fn, **ODD, seed=seed + 3000, where=_where(ODD))
    passed(f"lstm_forward: states match nn.LSTM with the same weights, h0 and c0 (T = {T}, "
           f"T = 1, T = {ODD['T']}, T = {LONG['T']}); the step caches are in time order.")  # fmt: skip


_HINTS = {
    "first": "Only the gradient of step t = 1 is counted: accumulate the weight gradients over t (+=).",
    "last": "Only the last time step's gradient is counted: accumulate the weight gradients over t (+=).",
    "skip_first": "Off by one in time: step t = 1 (caches[0]) is left out of the loop.",
    "skip_last": "Off by one in time: the gradient of the last step t = T never enters.",
    "shift": "Off by one in time: caches[t] must go with dstates[:, t].",
    "carry_h": "dh_prev is not carried back: add it to dstates[:, t - 1] for step t - 1.",
    "carry_c": "dc_prev is not carried back: it is the dc_t of step t - 1 (the cell path).",
    "no_tanh_c_grad": "tanh'(c_t) is forgotten (in lstm_step_backward).",
    "reversed": "The time order is reversed: dX[:, t - 1] belongs to x_t.",
    "dh1": "dh0 is the gradient reaching h_1: it must still pass step t = 1.",
    "dc1": "dc0 is the gradient reaching c_1: it must still pass step t = 1 (times f_1).",
    "swap": "dh0 and dc0 are swapped: return dX, dh0, dc0, dW_x, dW_h, db in this order.",
    "from_T": "It is what comes out of step t = T (the loop's first iteration): dh0 and dc0 "
    "are the dh_prev and dc_prev of step t = 1, after the whole loop.",
    "other": "Does check_lstm_step_backward pass? Then look at the loop: step t gets "
    "dstates[:, t - 1] + dh_prev and dc_prev of step t + 1; the weight gradients add up over t; "
    "dh0 and dc0 are what comes out of step t = 1.",
}  # fmt: skip


def _check_backward_once(fn: Callable, N, T, D, H, seed, zero=False, where="") -> None:
    label = "lstm_backward"
    rng, X, h0, c0, W_x, W_h, b = random_lstm(N, T, D, H, seed, zero_state=zero)
    dstates = rng.normal(size=(N, T, H))
    args = (X, h0, c0, W_x, W_h, b)
    ref = _unrolled(*args, dstates)
    caches = _caches(*args, ref["states"], ref["cells"])
    no_last = dstates.copy()
    no_last[:, -1] = 0.0
    runs = {"skip_last": _unrolled(*args, no_last), "shift": _unrolled(*args, np.roll(dstates, 1, 1)),
            "carry_h": _unrolled(*args, dstates, carry_h=False), "no_tanh_c_grad":
            _unrolled(*args, dstates, "no_tanh_c_grad"), "carry_c": _unrolled(*args, dstates, carry_c=False)}  # fmt: skip
    names = ("dX", "dh0", "dc0", "dW_x", "dW_h", "db")
    items, before = list(caches), snapshot(caches)
    got = dict(zip(names, unpack(call(fn, label, dstates, caches), label, names)))
    check_unchanged(label, caches, items, before, LSTM_CACHE)
    for name in ("dW_x", "dW_h", "db", "dX", "dh0", "dc0"):
        causes = [(run[name] if name in ("dX", "dh0", "dc0") else sum(run[name]), _HINTS[k])
                  for k, run in runs.items()]  # fmt: skip
        if name in ("dW_x", "dW_h", "db"):
            steps = ref[name]
            causes += [(steps[0], _HINTS["first"]), (steps[-1], _HINTS["last"])]
            if T > 1:
                causes.append((sum(steps[1:]), _HINTS["skip_first"]))
            want = sum(steps)
        else:
            want = ref[name]
        if name == "dX":
            causes.append((ref["dX"][:, ::-1], _HINTS["reversed"]))
        causes += {"dh0": [(ref["dh"][:, 0], _HINTS["dh1"]), (ref["dc0"], _HINTS["swap"])],
                   "dc0": [(ref["dc"][:, 0], _HINTS["dc1"]), (ref["dh0"], _HINTS["swap"])]}.get(name, [])  # fmt: skip
        if T > 1 and name in ("dh0", "dc0"):  # dh_prev, dc_prev of step T (the first iteration)
            o, c = caches[-2][6], caches[-2][7]
            last = {"dh0": ref["dh"][:, -2] - dstates[:, -2],
                    "dc0": ref["dc"][:, -2] - ref["dh"][:, -2] * o * (1 - np.tanh(c) ** 2)}  # fmt: skip
            causes.append((last[name], _HINTS["from_T"]))
        _compare(name + where, got[name], want, causes=causes, hint=_HINTS["other"],
                 shape_hint=f"{name} must have the shape of {name[1:]}.")  # fmt: skip


def check_lstm_backward(
    fn: Callable, *, N: int = 2, T: int = 5, D: int = 3, H: int = 4, seed: int = 4
) -> None:
    """Check ``lstm_backward(dstates, caches) -> (dX, dh0, dc0, dW_x, dW_h, db)`` by autograd
    through nn.LSTMCell; the caches are built here from PyTorch and must come back unchanged.
    Runs on the given sizes, on T = 1, N = 1 with zero initial states, and on T = 30."""
    _check_backward_once(fn, N, T, D, H, seed)
    _check_backward_once(fn, **_EDGE, seed=seed + 1000, zero=True, where=_where(_EDGE, True))
    _check_backward_once(fn, **LONG, seed=seed + 2000, where=_where(LONG))
    passed(f"lstm_backward: dX, dh0, dc0, dW_x, dW_h, db match autograd through nn.LSTMCell "
           f"over T = {T}, T = 1 and T = {LONG['T']} steps; the caches are unchanged.")  # fmt: skip
