"""Visible checks for Lab 1 (RNN from scratch with manual BPTT, in NumPy).

Each ``check_*`` function calls a student's function on small random float64
inputs and compares what comes back with an *independent* computation: PyTorch's
``nn.RNNCell`` / ``nn.RNN`` / ``nn.Linear`` with the same weights copied in,
``F.cross_entropy`` and ``torch.nn.utils.clip_grad_norm_``, differentiated by
autograd. It prints one ``[PASS]`` line, or raises :class:`CheckError` saying
what was expected, what came, and the likely cause. Some causes are recognised
by comparing with autograd runs of a deliberately changed model (no tanh
derivative, weights used at one time step only, ...).

Conventions of the lab (row vectors, batch first)::

    h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)     W_xh: (D, H), W_hh: (H, H), b_h: (H,)
    o_t = h_t W_hq + b_q                           W_hq: (H, V), b_q: (V,)
    step cache = (x_t, h_prev, h_t, W_xh, W_hh)

PyTorch stores ``weight_ih`` as ``(H, D)``, so ``cell.weight_ih = W_xh.T``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.checks.core import CheckError, passed
from utils.checks.engine import call as _call
from utils.checks.engine import compare, fail, unpack
from utils.checks.engine import describe as _describe
from utils.checks.references import rnn_from_weights

__all__ = [
    "CheckError",
    "check_clip_grad_norm",
    "check_loss_and_grads",
    "check_rnn_backward",
    "check_rnn_forward",
    "check_rnn_step_backward",
    "check_rnn_step_forward",
    "check_temporal_softmax_loss",
]

THRESHOLD = 1e-7
"""Largest relative error accepted (float64 everywhere)."""

STEP_CACHE = ("x_t", "h_prev", "h_t", "W_xh", "W_hh")
PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")

_fail = fail
_unpack = unpack


def _compare(name, got, want, *, threshold: float = THRESHOLD, **kwargs) -> float:
    """:func:`utils.checks.engine.compare` with this lab's threshold and float64 rule."""
    return compare(name, got, want, threshold=threshold, **kwargs)


def _t(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)


def _n(t: torch.Tensor | None) -> np.ndarray:
    return t.detach().numpy().copy()


def _random_rnn(N: int, T: int, D: int, H: int, seed: int, scale: float = 0.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, T, D))
    h0 = rng.normal(scale=0.5, size=(N, H))
    W_xh = rng.normal(scale=scale, size=(D, H))
    W_hh = rng.normal(scale=scale, size=(H, H))
    b_h = rng.normal(scale=0.3, size=H)
    return rng, X, h0, W_xh, W_hh, b_h


def _cell(W_xh, W_hh, b_h) -> nn.RNNCell:
    """An ``nn.RNNCell`` (float64) holding the lab's weights."""
    return rnn_from_weights(W_xh, W_hh, b_h, cell=True)


def _rnn(W_xh, W_hh, b_h) -> nn.RNN:
    """A one-layer, batch-first ``nn.RNN`` (float64) holding the lab's weights."""
    return rnn_from_weights(W_xh, W_hh, b_h)


def _rnn_autograd(X, h0, W_xh, W_hh, b_h, dstates) -> dict[str, np.ndarray]:
    """``nn.RNN`` forward and autograd of ``sum(states * dstates)``."""
    rnn = _rnn(W_xh, W_hh, b_h)
    X_t, h0_t = _t(X).requires_grad_(), _t(h0).requires_grad_()
    states, _ = rnn(X_t, h0_t[None])
    (states * _t(dstates)).sum().backward()
    return {
        "states": _n(states),
        "dX": _n(X_t.grad),
        "dh0": _n(h0_t.grad),
        "dW_xh": _n(rnn.weight_ih_l0.grad.T),
        "dW_hh": _n(rnn.weight_hh_l0.grad.T),
        "db_h": _n(rnn.bias_ih_l0.grad),
    }


def _unrolled_autograd(
    X, h0, W_xh, W_hh, b_h, dstates, *, tanh_grad: bool = True, carry: bool = True
) -> dict:
    """Autograd through T separate copies of one ``nn.RNNCell``: per-step weight gradients.

    ``tanh_grad=False`` keeps the forward values but lets the gradient pass tanh
    unchanged (a backward pass without the tanh derivative); ``carry=False`` stops
    the gradient between time steps (a backward pass that drops dh_prev).
    """
    T = X.shape[1]
    X_t, h = _t(X).requires_grad_(), _t(h0).requires_grad_()
    h0_t = h
    cells = [_cell(W_xh, W_hh, b_h) for _ in range(T)]
    states = []
    for t, cell in enumerate(cells):
        if tanh_grad:
            h_new = cell(X_t[:, t], h)
        else:
            a = F.linear(X_t[:, t], cell.weight_ih, cell.bias_ih) + F.linear(h, cell.weight_hh)
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


# ----------------------------------------------------------------------------- forward


def check_rnn_step_forward(
    fn: Callable, *, N: int = 3, D: int = 4, H: int = 5, seed: int = 0
) -> None:
    """Check ``rnn_step_forward(x_t, h_prev, W_xh, W_hh, b_h) -> (h_t, cache)`` against ``nn.RNNCell``."""
    label = "rnn_step_forward"
    _, X, h_prev, W_xh, W_hh, b_h = _random_rnn(N, 1, D, H, seed)
    x_t = X[:, 0]
    h_t, cache = _unpack(_call(fn, label, x_t, h_prev, W_xh, W_hh, b_h), label, ("h_t", "cache"))
    with torch.no_grad():
        want = _n(_cell(W_xh, W_hh, b_h)(_t(x_t), _t(h_prev)))
        transposed = _n(_cell(W_xh, W_hh.T, b_h)(_t(x_t), _t(h_prev)))
        no_bias = _n(_cell(W_xh, W_hh, np.zeros(H))(_t(x_t), _t(h_prev)))
        no_h = _n(_cell(W_xh, W_hh, b_h)(_t(x_t), torch.zeros(N, H, dtype=torch.float64)))
    _compare(
        "h_t",
        h_t,
        want,
        shape_hint="h_t must be (N, H): x_t (N, D) times W_xh (D, H), plus h_prev (N, H) times W_hh (H, H).",
        causes=[
            (
                np.arctanh(np.clip(want, -1 + 1e-15, 1 - 1e-15)),
                "It is the value before tanh: apply np.tanh.",
            ),
            (transposed, "It uses W_hh transposed: the row-vector convention is h_prev @ W_hh."),
            (no_bias, "The bias b_h is missing."),
            (no_h, "h_prev is missing: h_t must use h_{t-1} through W_hh."),
        ],
    )
    keep = (
        "Keep the line `cache = (x_t, h_prev, h_t, W_xh, W_hh)` that the lab gives: "
        "rnn_step_backward and rnn_backward receive caches in exactly this format."
    )
    if not isinstance(cache, tuple | list) or len(cache) != len(STEP_CACHE):
        size = f" of {len(cache)} items" if isinstance(cache, tuple | list) else ""
        raise _fail(
            f"cache is a {_describe(cache)}{size}, expected the tuple of {len(STEP_CACHE)} "
            f"({', '.join(STEP_CACHE)}).",
            keep,
        )
    for i, (name, value, expected) in enumerate(
        zip(STEP_CACHE, cache, (x_t, h_prev, want, W_xh, W_hh))
    ):
        _compare(f"cache[{i}] ({name})", value, expected, hint=keep)
    passed(
        f"{label}: h_t matches nn.RNNCell with the same weights; the cache holds {', '.join(STEP_CACHE)}."
    )


def check_rnn_forward(
    fn: Callable, *, N: int = 3, T: int = 6, D: int = 4, H: int = 5, seed: int = 1
) -> None:
    """Check ``rnn_forward(X, h0, W_xh, W_hh, b_h) -> (states, caches)`` against ``nn.RNN``."""
    label = "rnn_forward"
    _, X, h0, W_xh, W_hh, b_h = _random_rnn(N, T, D, H, seed)
    states, caches = _unpack(_call(fn, label, X, h0, W_xh, W_hh, b_h), label, ("states", "caches"))
    with torch.no_grad():
        want = _n(_rnn(W_xh, W_hh, b_h)(_t(X), _t(h0)[None])[0])
        cell = _cell(W_xh, W_hh, b_h)
        from_h0 = np.stack([_n(cell(_t(X[:, t]), _t(h0))) for t in range(T)], axis=1)
        backward = _n(_rnn(W_xh, W_hh, b_h)(_t(X[:, ::-1].copy()), _t(h0)[None])[0])
        from_zeros = _n(_rnn(W_xh, W_hh, b_h)(_t(X), torch.zeros(1, N, H, dtype=torch.float64))[0])
    shifted = np.concatenate([h0[:, None], want[:, :-1]], axis=1)
    backward_hint = "The sequence is read backward: go forward in time, t = 0, 1, ..., T - 1."
    _compare(
        "states",
        states,
        want,
        shape_hint="states must be (N, T, H), batch first: stack the h_t along axis=1.",
        causes=[
            (shifted, "Off by one in time: states[:, t] must be h_t (after step t), not h_{t-1}."),
            (
                from_h0,
                "Every step starts from h0: h_t must use h_{t-1}, the state of the step before.",
            ),
            (
                from_zeros,
                "h0 is not used: the first step must start from the argument h0, not from zeros.",
            ),
            (
                want[:, ::-1],
                "The time order is reversed: states[:, 0] is the state after the first input X[:, 0].",
            ),
            (backward, backward_hint),
            (backward[:, ::-1], backward_hint),
        ],
    )
    if not isinstance(caches, tuple | list) or len(caches) != T:
        raise _fail(
            f"caches is a {_describe(caches)} of length {len(caches) if hasattr(caches, '__len__') else '?'}, "
            f"expected a list of T = {T} step caches (one per time step, in time order)."
        )
    for t in (0, T - 1):
        prev = h0 if t == 0 else want[:, t - 1]
        for i, (name, expected) in enumerate(zip(STEP_CACHE[:3], (X[:, t], prev, want[:, t]))):
            if not isinstance(caches[t], tuple | list) or len(caches[t]) != len(STEP_CACHE):
                raise _fail(
                    f"caches[{t}] is a {_describe(caches[t])}, expected a step cache {STEP_CACHE}."
                )
            _compare(
                f"caches[{t}][{i}] ({name})",
                caches[t][i],
                expected,
                hint=f"caches[t] must be the cache of step t, ({', '.join(STEP_CACHE)}), "
                "as rnn_step_forward returns it.",
            )
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
    loss, dscores = _unpack(_call(fn, label, scores, Y), label, ("loss", "dscores"))
    want_loss = np.array(ref.item())
    if loss is None:
        raise _fail("loss is None, expected one number.", "Did the function forget to `return` it?")
    got_loss = np.asarray(loss, dtype=np.float64)
    if got_loss.size != 1:
        raise _fail(
            f"loss has shape {got_loss.shape}, expected one number (the mean over N*T positions)."
        )
    _compare(
        "loss",
        got_loss.reshape(()),
        want_loss,
        causes=[
            (want_loss * N * T, "It is the sum over all positions: divide by N * T (the mean)."),
            (want_loss * T, "It is averaged over N only: average over N * T positions."),
            (want_loss * N, "It is averaged over T only: average over N * T positions."),
        ],
    )
    want_dscores = _n(scores_t.grad)
    _compare(
        "dscores",
        dscores,
        want_dscores,
        shape_hint="dscores must have the shape of scores: (N, T, V).",
        causes=[
            (
                want_dscores * N * T,
                "dscores is N * T times too large: the loss is a mean, so divide by N * T.",
            ),
            (want_dscores * T, "dscores is averaged over N only: divide by N * T."),
            (want_dscores * N, "dscores is averaged over T only: divide by N * T."),
            (
                -want_dscores,
                "dscores has the wrong sign: it is softmax(scores) minus the one-hot targets.",
            ),
        ],
    )
    # Large scores must not overflow: softmax is unchanged by adding a constant.
    big = _call(fn, label, scores + 1000.0, Y)
    if not isinstance(big, tuple | list) or len(big) != 2:
        raise _fail(
            f"{label} returned {_describe(big)} for large scores, expected (loss, dscores)."
        )
    try:
        big_loss = float(np.asarray(big[0]))
    except (TypeError, ValueError):
        raise _fail(
            f"loss is a {_describe(big[0])} for large scores, expected one number."
        ) from None
    if not np.isfinite(big_loss) or not np.all(np.isfinite(np.asarray(big[1], dtype=np.float64))):
        raise _fail(
            "with scores around 1000 the loss or dscores is not finite (np.exp overflows).",
            "Subtract the largest score of each row before np.exp: softmax does not change.",
        )
    _compare("loss for scores + 1000", np.asarray(big_loss), want_loss, causes=[])
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
    with torch.no_grad():
        h_t = _n(_cell(W_xh, W_hh, b_h)(_t(X[:, 0]), _t(h_prev)))
    ref = _rnn_autograd(X, h_prev, W_xh, W_hh, b_h, dh_t)
    ref_nt = _unrolled_autograd(X, h_prev, W_xh, W_hh, b_h, dh_t, tanh_grad=False)
    cache = (X[:, 0], h_prev, h_t, W_xh, W_hh)
    names = ("dx_t", "dh_prev", "dW_xh", "dW_hh", "db_h")
    out = _unpack(_call(fn, label, dh_t[:, 0], cache), label, names)
    got = dict(zip(names, out))
    want = {
        "dx_t": (ref["dX"][:, 0], ref_nt["dX"][:, 0], "dx_t must be (N, D) like x_t."),
        "dh_prev": (ref["dh0"], ref_nt["dh0"], "dh_prev must be (N, H) like h_prev."),
        "dW_xh": (ref["dW_xh"], ref_nt["dW_xh"][0], "dW_xh must be (D, H) like W_xh."),
        "dW_hh": (ref["dW_hh"], ref_nt["dW_hh"][0], "dW_hh must be (H, H) like W_hh."),
        "db_h": (ref["db_h"], ref_nt["db_h"][0], "db_h must be (H,) like b_h: sum over the batch."),
    }
    no_tanh = "It misses the tanh derivative: multiply dh_t by (1 - h_t**2) first."
    # Weight gradients first: when they are right, a wrong dx_t / dh_prev is a matmul problem.
    # db_h is the batch sum of da_t, so once db_h is right, da_t is right too.
    hints = {
        "db_h": "db_h is the sum over the batch of da_t = dh_t * (1 - h_t**2), with h_t taken "
        "from the cache (it already includes b_h): check da_t.",
        "dW_xh": "db_h is right, so da_t is right: dW_xh = x_t^T da_t, (D, N) @ (N, H).",
        "dW_hh": "db_h is right, so da_t is right: dW_hh = h_prev^T da_t, (H, N) @ (N, H).",
    }
    for name in ("db_h", "dW_xh", "dW_hh", "dx_t", "dh_prev"):
        reference, without_tanh, shape_hint = want[name]
        weight = {"dx_t": "W_xh", "dh_prev": "W_hh"}.get(name)
        hint = (
            f"The weight gradients are right, so the error is in how {name} flows back "
            f"through {weight}: check the side and the transpose of {weight} in the matmul."
            if weight
            else hints[name]
        )
        _compare(
            name,
            got[name],
            reference,
            shape_hint=shape_hint,
            hint=hint,
            causes=[(without_tanh, no_tanh)],
        )
    passed(f"{label}: {', '.join(names)} match autograd through nn.RNNCell.")


def check_rnn_backward(
    fn: Callable, *, N: int = 2, T: int = 5, D: int = 3, H: int = 4, seed: int = 4
) -> None:
    """Check ``rnn_backward(dstates, caches) -> (dX, dh0, dW_xh, dW_hh, db_h)`` by autograd.

    The caches are built here from ``nn.RNNCell`` (in the lab's format), and the
    reference gradients come from autograd through ``nn.RNN``.
    """
    label = "rnn_backward"
    rng, X, h0, W_xh, W_hh, b_h = _random_rnn(N, T, D, H, seed)
    dstates = rng.normal(size=(N, T, H))
    ref = _rnn_autograd(X, h0, W_xh, W_hh, b_h, dstates)
    states = ref["states"]
    caches = [
        (X[:, t], h0 if t == 0 else states[:, t - 1], states[:, t], W_xh, W_hh) for t in range(T)
    ]
    per_step = _unrolled_autograd(X, h0, W_xh, W_hh, b_h, dstates)
    no_tanh = _unrolled_autograd(X, h0, W_xh, W_hh, b_h, dstates, tanh_grad=False)
    no_carry = _unrolled_autograd(X, h0, W_xh, W_hh, b_h, dstates, carry=False)
    without_last = dstates.copy()
    without_last[:, -1] = 0.0  # what a loop that never visits t = T - 1 computes
    no_last = _unrolled_autograd(X, h0, W_xh, W_hh, b_h, without_last)
    names = ("dX", "dh0", "dW_xh", "dW_hh", "db_h")
    # _call copies its array arguments; the list of caches is passed as is.
    out = _unpack(_call(fn, label, dstates, caches), label, names)
    overwrite = "accumulate dW over t (+=), do not overwrite it."
    hints = {
        "first": f"Only one time step's gradient is counted (t = 0): {overwrite}",
        "last": f"Only the last time step's gradient is counted: {overwrite}",
        "skip_first": "Off by one in time: the step t = 0 is left out of the loop (use reversed(range(T))).",
        "skip_last": "Off by one in time: the last step t = T - 1 is left out of the loop.",
        "tanh": "It misses the tanh derivative: multiply the upstream gradient by (1 - h_t**2).",
        "carry": (
            "The gradient does not flow back through time: add dh_prev of step t to the "
            "upstream gradient dstates[:, t - 1] of the step before."
        ),
        "reversed": "The time order is reversed: dX[:, t] belongs to x_t.",
    }
    shape_hints = {
        "dX": "dX must be (N, T, D) like X.",
        "dh0": "dh0 must be (N, H) like h0.",
        "dW_xh": "dW_xh must be (D, H) like W_xh.",
        "dW_hh": "dW_hh must be (H, H) like W_hh.",
        "db_h": "db_h must be (H,) like b_h.",
    }
    got_all = dict(zip(names, out))
    # Weight gradients first: their wrong values say most about the cause.
    for name in ("dW_xh", "dW_hh", "db_h", "dX", "dh0"):
        want = ref[name]
        if name in ("dW_xh", "dW_hh", "db_h"):
            steps = per_step[name]
            causes = [
                (steps[0], hints["first"]),
                (steps[-1], hints["last"]),
                (sum(steps[1:]), hints["skip_first"]),
                (sum(no_last[name]), hints["skip_last"]),
                (sum(no_tanh[name]), hints["tanh"]),
                (sum(no_carry[name]), hints["carry"]),
            ]
        else:
            causes = [
                (no_tanh[name], hints["tanh"]),
                (no_carry[name], hints["carry"]),
                (no_last[name], hints["skip_last"]),
            ]
        if name == "dX":
            causes.append((want[:, ::-1], hints["reversed"]))
        _compare(name, got_all[name], want, causes=causes, shape_hint=shape_hints[name])
    passed(f"{label}: {', '.join(names)} match autograd through nn.RNN over T = {T} steps.")


# ----------------------------------------------------------------------------- the model


def torch_loss_and_grads(params: dict, X, Y, h0) -> tuple[float, dict]:
    """The lab's model in PyTorch (``nn.RNN`` + ``nn.Linear``, float64) and its autograd gradients.

    params: ``W_xh (D, H)``, ``W_hh (H, H)``, ``b_h (H,)``, ``W_hq (H, V)``, ``b_q (V,)``;
    X: (N, T, D), Y: (N, T) integer targets, h0: (N, H). Returns the mean
    cross-entropy over the N*T positions and ``{name: gradient}`` in the lab's layout.
    """
    rnn = _rnn(params["W_xh"], params["W_hh"], params["b_h"])
    H, V = np.shape(params["W_hq"])
    out = nn.Linear(H, V).double()
    with torch.no_grad():
        out.weight.copy_(_t(params["W_hq"]).T)
        out.bias.copy_(_t(params["b_q"]))
    states, _ = rnn(_t(X), _t(h0)[None])
    scores = out(states)
    loss = F.cross_entropy(scores.reshape(-1, V), torch.as_tensor(np.asarray(Y)).reshape(-1))
    loss.backward()
    grads = {
        "W_xh": _n(rnn.weight_ih_l0.grad.T),
        "W_hh": _n(rnn.weight_hh_l0.grad.T),
        "b_h": _n(rnn.bias_ih_l0.grad),
        "W_hq": _n(out.weight.grad.T),
        "b_q": _n(out.bias.grad),
    }
    return loss.item(), grads


def check_loss_and_grads(
    fn: Callable, *, N: int = 2, T: int = 4, V: int = 4, H: int = 5, seed: int = 5
) -> None:
    """Check ``loss_and_grads(params, X, Y, h0) -> (loss, grads)`` against PyTorch autograd."""
    label = "loss_and_grads"
    rng, X, h0, W_xh, W_hh, b_h = _random_rnn(N, T, V, H, seed)
    params = {
        "W_xh": W_xh,
        "W_hh": W_hh,
        "b_h": b_h,
        "W_hq": rng.normal(scale=0.5, size=(H, V)),
        "b_q": rng.normal(scale=0.3, size=V),
    }
    Y = rng.integers(0, V, size=(N, T))
    want_loss, want = torch_loss_and_grads(params, X, Y, h0)
    given = {k: v.copy() for k, v in params.items()}
    out = _unpack(_call(fn, label, given, X, Y, h0), label, ("loss", "grads"))
    for k in PARAM_NAMES:
        if not np.array_equal(given[k], params[k]):
            raise _fail(
                f"{label} changed params[{k!r}]: it should only compute, the training loop updates."
            )
    loss, grads = out
    try:
        got_loss = float(np.asarray(loss))
    except (TypeError, ValueError):
        raise _fail(f"loss is a {_describe(loss)}, expected one number.") from None
    zeros_h0_loss, _ = torch_loss_and_grads(params, X, Y, np.zeros_like(h0))
    no_b_q_loss, _ = torch_loss_and_grads({**params, "b_q": np.zeros(V)}, X, Y, h0)
    _compare(
        "loss",
        np.asarray(got_loss),
        np.asarray(want_loss),
        causes=[
            (np.asarray(zeros_h0_loss), "h0 is not used: pass the argument h0 to rnn_forward."),
            (np.asarray(no_b_q_loss), "b_q is missing: the scores are states @ W_hq + b_q."),
        ],
        hint="Do check_rnn_forward and check_temporal_softmax_loss pass? Then look at the "
        "scores, states @ W_hq + b_q, of shape (N, T, V).",
    )
    if not isinstance(grads, dict):
        raise _fail(
            f"grads is a {_describe(grads)}, expected a dict {{name: gradient}} like params."
        )
    missing = [k for k in PARAM_NAMES if k not in grads]
    if missing:
        raise _fail(
            f"grads has the keys {sorted(grads)}, missing {missing}.",
            "Use the same keys as params (W_xh, W_hh, b_h, W_hq, b_q).",
        )
    hints = {
        "W_hq": "The output layer is applied at every time step: its gradient sums over N and T.",
        "b_q": "Sum dscores over N and T.",
        "W_xh": "check_rnn_backward passes? Then look at dstates = dscores @ W_hq^T, fed to rnn_backward.",
        "W_hh": "check_rnn_backward passes? Then look at dstates = dscores @ W_hq^T, fed to rnn_backward.",
        "b_h": "check_rnn_backward passes? Then look at dstates = dscores @ W_hq^T, fed to rnn_backward.",
    }
    for k in PARAM_NAMES:
        _compare(
            f"grads[{k!r}]",
            grads[k],
            want[k],
            hint=hints[k],
            shape_hint=f"It must have the shape of params[{k!r}].",
        )
    passed(
        f"{label}: loss and every gradient match nn.RNN + nn.Linear + F.cross_entropy (autograd)."
    )


# ----------------------------------------------------------------------------- clipping


def check_clip_grad_norm(fn: Callable, *, seed: int = 6) -> None:
    """Check ``clip_grad_norm(grads, max_norm) -> (clipped, total_norm)`` against
    ``torch.nn.utils.clip_grad_norm_``."""
    label = "clip_grad_norm"
    rng = np.random.default_rng(seed)
    shapes = {"W_xh": (4, 5), "W_hh": (5, 5), "b_h": (5,)}
    for case, (scale, max_norm) in {"above": (3.0, 1.0), "below": (0.05, 1.0)}.items():
        grads = {k: rng.normal(scale=scale, size=s) for k, s in shapes.items()}
        tensors = [nn.Parameter(_t(g)) for g in grads.values()]
        for p, g in zip(tensors, grads.values()):
            p.grad = _t(g)
        want_norm = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
        want = {k: _n(p.grad) for k, p in zip(grads, tensors)}
        given = {k: g.copy() for k, g in grads.items()}
        clipped, total_norm = _unpack(
            _call(fn, label, given, max_norm), label, ("clipped", "total_norm")
        )
        if any(not np.array_equal(given[k], grads[k]) for k in grads):
            raise _fail(
                f"{label} changed the arrays in grads in place.", "Return new arrays (g * scale)."
            )
        if not isinstance(clipped, dict) or sorted(clipped) != sorted(grads):
            raise _fail(
                f"clipped is a {_describe(clipped)}"
                + (f" with keys {sorted(clipped)}" if isinstance(clipped, dict) else "")
                + f", expected a dict with the keys of grads {sorted(grads)}."
            )
        try:
            got_norm = float(np.asarray(total_norm))
        except (TypeError, ValueError):
            raise _fail(f"total_norm is a {_describe(total_norm)}, expected one number.") from None
        _compare(
            "total_norm",
            np.asarray(got_norm),
            np.asarray(want_norm),
            threshold=1e-6,
            causes=[
                (np.asarray(want_norm**2), "It is the squared norm: take the square root."),
                (
                    np.asarray(min(want_norm, max_norm)),
                    "Return the norm before clipping (as PyTorch does).",
                ),
            ],
        )
        per_array = {k: g * min(1.0, max_norm / np.linalg.norm(g)) for k, g in grads.items()}
        elementwise = {k: np.clip(g, -max_norm, max_norm) for k, g in grads.items()}
        rescaled = {k: g * max_norm / (want_norm + 1e-6) for k, g in grads.items()}
        for k in grads:
            _compare(
                f"clipped[{k!r}] ({'norm above' if case == 'above' else 'norm below'} max_norm)",
                clipped[k],
                want[k],
                threshold=1e-6,
                causes=[
                    (
                        grads[k],
                        "Nothing was clipped, but the global norm is above max_norm: scale every array by max_norm / total_norm.",
                    ),
                    (
                        per_array[k],
                        "Each array was clipped by its own norm: use one global norm over all arrays.",
                    ),
                    (
                        elementwise[k],
                        "np.clip clips each value, not the norm: scale every array by max_norm / total_norm.",
                    ),
                    (
                        rescaled[k],
                        "The gradient is rescaled although its norm is below max_norm: only scale down, never up.",
                    ),
                ],
            )
    passed(
        f"{label}: matches torch.nn.utils.clip_grad_norm_ above and below max_norm; inputs unchanged."
    )
