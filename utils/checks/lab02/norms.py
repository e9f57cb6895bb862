"""Lab 2 check of the gradient norms through time: ||dL/dh_t|| and ||dL/dc_t|| by autograd."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from utils.checks.core import passed
from utils.checks.engine import call, check_unchanged, snapshot, unpack
from utils.checks.lab02.reference import (
    LONG,
    LSTM_CACHE,
    _compare,
    random_lstm,
)
from utils.checks.lab02.sequence import _EDGE, ODD, _caches, _unrolled, _where

_NOT_DH = "It is the norm of dstates only: dL/dh_t also gets dh_prev from step t + 1."
_AFTER = (
    "It is the norm of what step t passes back ({}_prev, for step t - 1), not of the gradient "
    "reaching {}_t: take the norm before calling lstm_step_backward for step t."
)


def _shifted(norms: np.ndarray, first: float) -> np.ndarray:
    """Entry t holds entry t - 1 (entry 0 holds ``first``)."""
    return np.concatenate([[first], norms[:-1]])


def _check_norms_once(fn: Callable, N, T, D, H, seed, zero=False, where="") -> None:
    label = "lstm_grad_norms"
    rng, X, h0, c0, W_x, W_h, b = random_lstm(N, T, D, H, seed, zero_state=zero)
    dstates = rng.normal(size=(N, T, H))
    args = (X, h0, c0, W_x, W_h, b)
    ref = _unrolled(*args, dstates)
    caches = _caches(*args, ref["states"], ref["cells"])
    items, before = list(caches), snapshot(caches)
    out = unpack(call(fn, label, dstates, caches), label, ("dh_norms", "dc_norms"))
    check_unchanged(label, caches, items, before, LSTM_CACHE)
    norm = lambda g: np.linalg.norm(g, axis=(0, 2))  # noqa: E731
    o = np.stack([c[6] for c in caches], 1)
    through_h = ref["dh"] * o * (1 - np.tanh(ref["cells"]) ** 2)
    no_c, no_h = _unrolled(*args, dstates, carry_c=False), _unrolled(*args, dstates, carry_h=False)
    cut = {
        "dh": (no_c, "dc_prev is not carried back: it is the dc_t of step t - 1 (the cell path)."),
        "dc": (no_h, "dh_prev is not carried back: add it to dstates[:, t - 1] for step t - 1."),
    }
    reversed_ = "The time order is reversed: entry t - 1 is for step t."
    dh_prev = _shifted(norm(ref["dh"] - dstates), np.linalg.norm(ref["dh0"]))
    dc_prev = _shifted(norm(ref["dc"] - through_h), np.linalg.norm(ref["dc0"]))
    _compare("dh_norms" + where, out[0], norm(ref["dh"]), shape_hint="dh_norms must be (T,).",
             causes=[(norm(dstates), _NOT_DH), (norm(ref["dh"]) ** 2, "It is the squared "
                      "norm: take np.linalg.norm."), (norm(ref["dh"])[::-1], reversed_),
                     (dh_prev, _AFTER.format("dh", "h")), (norm(cut["dh"][0]["dh"]), cut["dh"][1])],
             hint="dh_norms[t - 1] is the norm (over batch and units) of the whole gradient "
             "reaching h_t: dstates[:, t - 1] plus dh_prev of step t + 1.")  # fmt: skip
    _compare("dc_norms" + where, out[1], norm(ref["dc"]), shape_hint="dc_norms must be (T,).",
             causes=[(norm(ref["dc"] - through_h), "It misses the path through h_t: dL/dc_t is "
                      "dc_prev of step t + 1 plus dh_t * o_t * (1 - tanh(c_t)**2)."),
                     (norm(through_h), "It misses dc_prev of step t + 1: dL/dc_t is dc_prev of "
                      "step t + 1 plus dh_t * o_t * (1 - tanh(c_t)**2)."),
                     (norm(ref["dc"] - through_h + ref["dh"] * o), "tanh'(c_t) is forgotten: "
                      "dh_t reaches c_t through o_t * (1 - tanh(c_t)**2)."),
                     (norm(ref["dc"]) ** 2, "It is the squared norm."), (norm(ref["dc"])[::-1], reversed_),
                     (dc_prev, _AFTER.format("dc", "c")), (norm(cut["dc"][0]["dc"]), cut["dc"][1])],
             hint="dc_norms[t - 1] is the norm of the whole gradient reaching c_t.")  # fmt: skip


def check_lstm_grad_norms(
    fn: Callable, *, N: int = 2, T: int = 6, D: int = 3, H: int = 4, seed: int = 5
) -> None:
    """Check ``lstm_grad_norms(dstates, caches) -> (dh_norms, dc_norms)``, both (T,), the
    norms of the whole gradient reaching h_t and c_t, against autograd (retain_grad), for
    T = 1, 3 (odd), the given T and 30."""
    _check_norms_once(fn, N, T, D, H, seed)
    _check_norms_once(fn, **_EDGE, seed=seed + 1000, zero=True, where=_where(_EDGE, True))
    _check_norms_once(fn, **LONG, seed=seed + 2000, where=_where(LONG))
    _check_norms_once(fn, **ODD, seed=seed + 3000, where=_where(ODD))
    passed(f"lstm_grad_norms: ||dL/dh_t|| and ||dL/dc_t|| match autograd through nn.LSTMCell "
           f"for t = 1..T (T = {T}, 1, {ODD['T']}, {LONG['T']}).")  # fmt: skip
