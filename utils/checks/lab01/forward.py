"""Lab 1 checks of the forward pass: one step, a sequence, the temporal softmax loss."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from utils.checks.core import passed, seeded
from utils.checks.engine import Cause, call, describe, fail, unpack
from utils.checks.lab01.reference import (
    STEP_CACHE,
    _cell,
    _check_cache,
    _compare,
    _finite,
    _n,
    _number,
    _random_rnn,
    _t,
    _wrong_activation_causes,
)
from utils.checks.references import rnn_from_weights

# A second set of sizes for each check, so that no size is special (T odd for the sequence).
_OTHER = {
    "step": {"N": 2, "D": 6, "H": 3},
    "sequence": {"N": 2, "T": 7, "D": 3, "H": 4},
    "loss": {"N": 3, "T": 4, "V": 3},
}


def _sizes(kind: str) -> str:
    return " (" + ", ".join(f"{k} = {v}" for k, v in _OTHER[kind].items()) + ")"


def _check_step_forward_once(fn: Callable, N, D, H, seed, where: str = "") -> None:
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
        "h_t" + where,
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
    _check_cache("cache", cache, (x_t, h_prev, want, W_xh, W_hh), keep, step=where)


def _check_saturated_step(fn: Callable, seed: int) -> None:
    """Inputs that saturate the tanh (|a_t| in the hundreds): h_t is +-1, and finite."""
    label, where = "rnn_step_forward", " (inputs 1000 times larger, tanh saturated)"
    _, X, h_prev, W_xh, W_hh, b_h = _random_rnn(2, 1, 3, 4, seed)
    x_t = 1000.0 * X[:, 0]
    h_t, _ = unpack(call(fn, label, x_t, h_prev, W_xh, W_hh, b_h), label, ("h_t", "cache"))
    with torch.no_grad():
        want = _n(_cell(W_xh, W_hh, b_h)(_t(x_t), _t(h_prev)))
    if isinstance(h_t, np.ndarray) and h_t.shape == want.shape and not _finite(h_t):
        raise fail(
            f"h_t{where} is not finite (NaN or inf): a tanh written with np.exp overflows "
            "(np.exp(800) is inf, and inf / inf is nan).",
            "Use np.tanh: it is exact for every input.",
        )
    _compare("h_t" + where, h_t, want)


def check_rnn_step_forward(
    fn: Callable, *, N: int = 3, D: int = 4, H: int = 5, seed: int = 0
) -> None:
    """Check ``rnn_step_forward(x_t, h_prev, W_xh, W_hh, b_h) -> (h_t, cache)`` against
    ``nn.RNNCell``, on the given sizes and on others."""
    _check_step_forward_once(fn, N, D, H, seed)
    _check_step_forward_once(fn, **_OTHER["step"], seed=seed + 1000, where=_sizes("step"))
    _check_saturated_step(fn, seed + 2000)
    passed(
        f"rnn_step_forward: h_t matches nn.RNNCell with the same weights; the cache holds {', '.join(STEP_CACHE)}."
    )


def _check_distinct_states(caches) -> None:
    """No array holds two different states in two caches (a buffer overwritten in place)."""
    seen = []  # (which state, array, where)
    for t, cache in enumerate(caches):
        if not isinstance(cache, tuple | list) or len(cache) != len(STEP_CACHE):
            continue  # the value checks explain it
        for slot, state in ((1, t), (2, t + 1)):  # h_prev is h_{t-1}, h_t is h_t (t from 1)
            where = f"caches[{t}][{slot}] ({STEP_CACHE[slot]} of step t = {t + 1})"
            if not isinstance(cache[slot], np.ndarray):
                continue
            for other, array, there in seen:
                if other != state and np.shares_memory(cache[slot], array):
                    raise fail(
                        f"{where} and {there} are the same array in memory, though they are "
                        "different states: all the caches see its last value.",
                        "An array updated in place (h[...] = ..., h += ..., out=h) is stored in "
                        "several caches. Store a new array per step: h_t = np.tanh(...) makes one.",
                    )
            seen.append((state, cache[slot], where))


def _check_rnn_forward_once(fn: Callable, N, T, D, H, seed, where: str = "") -> None:
    label = "rnn_forward"
    _, X, h0, W_xh, W_hh, b_h = _random_rnn(N, T, D, H, seed)
    states, caches = unpack(call(fn, label, X, h0, W_xh, W_hh, b_h), label, ("states", "caches"))
    rnn, cell = rnn_from_weights(W_xh, W_hh, b_h), _cell(W_xh, W_hh, b_h)
    run = lambda inputs, h: _n(rnn(_t(inputs), _t(h)[None])[0])  # noqa: E731
    with torch.no_grad():
        want = run(X, h0)
        from_h0 = np.stack([_n(cell(_t(X[:, t]), _t(h0))) for t in range(T)], axis=1)
        backward, from_zeros = run(X[:, ::-1].copy(), h0), run(X, np.zeros((N, H)))
        inputs_late = run(np.roll(X, 1, axis=1), h0)  # step t reads x_{t-1} (X[:, t - 1])
    prev = np.concatenate([h0[:, None], want[:, :-1]], axis=1)  # h_0 .. h_{T-1}
    backward_hint = "The sequence is read backward: go forward in time, t = 1, 2, ..., T."
    _compare(
        "states" + where,
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
            Cause(inputs_late, "Off by one in time in the inputs: each step reads the input of the "
                  "step before (X[:, t - 1]); in for t in range(T), the step that gives states[:, t] reads X[:, t]."),
            Cause(np.repeat(want[:, -1:], T, axis=1), "Every entry of states is h_T, the last "
                  "state: one array updated in place (h[...] = ...) was appended T times; append a new array per step."),
            *_wrong_activation_causes(X, h0, W_xh, W_hh, b_h),
        ],
        hint="Does check_rnn_step_forward pass? Then look at the loop: for t in range(T), the "
        "step reads X[:, t] and the state the step before returned (h0 for the first).",
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
    _check_distinct_states(caches)
    for t, cache in enumerate(caches):
        expected = (X[:, t], prev[:, t], want[:, t], W_xh, W_hh)
        _check_cache(f"caches[{t}]", cache, expected, hint, step=f" of step t = {t + 1}{where}")


def check_rnn_forward(
    fn: Callable, *, N: int = 3, T: int = 6, D: int = 4, H: int = 5, seed: int = 1
) -> None:
    """Check ``rnn_forward(X, h0, W_xh, W_hh, b_h) -> (states, caches)`` against ``nn.RNN``,
    and the whole cache of every step, on the given sizes and on others (T odd)."""
    _check_rnn_forward_once(fn, N, T, D, H, seed)
    _check_rnn_forward_once(fn, **_OTHER["sequence"], seed=seed + 1000, where=_sizes("sequence"))
    passed(
        f"rnn_forward: states match nn.RNN (batch_first) with the same weights; {T} step caches in time order."
    )


def _check_loss_once(fn: Callable, N, T, V, seed, where: str = "") -> None:
    label = "temporal_softmax_loss"
    rng = seeded(seed)
    scores = rng.normal(scale=2.0, size=(N, T, V))
    Y = rng.integers(0, V, size=(N, T))

    def reference(s: np.ndarray):
        s_t = _t(s).requires_grad_()
        loss = F.cross_entropy(s_t.reshape(-1, V), torch.as_tensor(Y).reshape(-1))
        loss.backward()
        return np.array(loss.item()), _n(s_t.grad)

    want_loss, want = reference(scores)
    loss, dscores = unpack(call(fn, label, scores, Y), label, ("loss", "dscores"))
    _compare(
        "loss" + where,
        _number("loss", loss),
        want_loss,
        causes=[
            Cause(want_loss * N * T, "It is the sum over all positions: divide by N * T (the mean)."),
            Cause(want_loss * T, "It is averaged over N only: average over N * T positions."),
            Cause(want_loss * N, "It is averaged over T only: average over N * T positions."),
        ],
    )  # fmt: skip
    _compare(
        "dscores" + where,
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
    _compare("loss for scores + 1000" + where, big_loss, want_loss)
    # Rows thousands apart, and in each row two scores (the target's and the next) 3000 above
    # the others: a shift by the largest of all scores, the mean or the minimum fails.
    offsets = 1000.0 * (np.arange(N * T).reshape(N, T) % 3 - 1)
    spread = scores + offsets[..., None] + 3000.0 * (np.eye(V)[Y] + np.eye(V)[(Y + 1) % V])
    spread_loss, spread_grad = reference(spread)
    out = unpack(call(fn, label, spread, Y), label, ("loss", "dscores"))
    name = "loss for scores thousands apart"
    if not (np.isfinite(_number(name, out[0])) and _finite(out[1])):
        raise fail(
            "with scores thousands apart (between rows and within a row) the loss or dscores "
            "is not finite: np.exp overflowed, or a whole row underflowed to 0.",
            "Subtract the largest score of each row, scores.max(axis=-1, keepdims=True): not "
            "the largest of all scores, nor the mean or the minimum of the row.",
        )
    _compare(name + where, _number(name, out[0]), spread_loss)
    _compare(f"dscores for scores thousands apart{where}", out[1], spread_grad)


def _check_target_far_below(fn: Callable, seed: int, N: int = 2, T: int = 3, V: int = 4) -> None:
    """Targets whose scores lie about 800 below the best of their row: the softmax of the
    target underflows to 0, so the loss needs log-sum-exp (log of the softmax is -inf)."""
    label, where = "temporal_softmax_loss", " (target scores 800 below the best)"
    rng = seeded(seed)
    Y = rng.integers(0, V, size=(N, T))
    scores = rng.normal(size=(N, T, V)) + 800.0 * np.eye(V)[(Y + 1) % V]  # another on top
    s_t = _t(scores).requires_grad_()
    want = F.cross_entropy(s_t.reshape(-1, V), torch.as_tensor(Y).reshape(-1))
    want.backward()
    loss, dscores = unpack(call(fn, label, scores, Y), label, ("loss", "dscores"))
    value = _number("loss", loss)
    if not np.isfinite(value):
        raise fail(
            f"loss{where} is {value}: the softmax of the target underflows to 0 and np.log(0) "
            "is -inf.",
            "Compute the log-probabilities as shifted - np.log(np.exp(shifted).sum(...)) "
            "(log-sum-exp), not np.log of the softmax.",
        )
    _compare("loss" + where, value, np.array(want.item()))
    _compare("dscores" + where, dscores, _n(s_t.grad))


def check_temporal_softmax_loss(
    fn: Callable, *, N: int = 2, T: int = 3, V: int = 5, seed: int = 2
) -> None:
    """Check ``temporal_softmax_loss(scores, Y) -> (loss, dscores)`` against ``F.cross_entropy``
    (mean), on the given sizes and on others; stable for scores far apart."""
    _check_loss_once(fn, N, T, V, seed)
    _check_loss_once(fn, **_OTHER["loss"], seed=seed + 1000, where=_sizes("loss"))
    _check_target_far_below(fn, seed + 2000)
    passed(
        "temporal_softmax_loss: loss and dscores match F.cross_entropy (mean over N*T) and "
        "autograd; stable for large scores and for scores far apart."
    )
