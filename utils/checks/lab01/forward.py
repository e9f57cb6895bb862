"""Lab 1 checks of the forward pass: one step, a sequence, the temporal softmax loss."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from utils.checks.core import passed
from utils.checks.engine import Cause, call, describe, fail, number, unpack
from utils.checks.lab01.reference import (
    STEP_CACHE,
    _cell,
    _check_cache,
    _compare,
    _finite,
    _n,
    _random_rnn,
    _t,
    _wrong_activation_causes,
)
from utils.checks.references import rnn_from_weights


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
        np.asarray(number("loss", loss)),
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
    big_loss = number("loss for scores + 1000", big[0])
    if not (np.isfinite(big_loss) and _finite(big[1])):
        raise fail(
            "with scores around 1000 the loss or dscores is not finite (np.exp overflows).",
            "Subtract the largest score of each row before np.exp: softmax does not change.",
        )
    _compare("loss for scores + 1000", np.asarray(big_loss), want_loss)
    passed(
        f"{label}: loss and dscores match F.cross_entropy (mean over N*T) and autograd; stable for large scores."
    )
