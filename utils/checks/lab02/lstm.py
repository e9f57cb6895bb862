"""Lab 2 checks of one LSTM step: forward against nn.LSTMCell, backward by autograd."""

from __future__ import annotations

from collections.abc import Callable
from itertools import permutations

import numpy as np
import torch

from utils.checks.core import passed
from utils.checks.engine import Cause, call, check_unchanged, snapshot, unpack
from utils.checks.lab02.reference import (
    LSTM_CACHE,
    _compare,
    _n,
    _t,
    check_cache,
    lstm_module,
    lstm_step_t,
    random_lstm,
)

_OTHER = {"N": 1, "D": 5, "H": 3}  # a second set of sizes: one row, D > H

_ORDER_HINT = (
    "The gate blocks are read in the wrong order: PyTorch's order is i, f, g, o, so "
    "a[:, :H] is the input gate, a[:, H:2H] the forget gate, a[:, 2H:3H] the candidate "
    "g_t and a[:, 3H:] the output gate."
)
_FORWARD_CAUSES = [  # (gate order, flags of lstm_step_t, explanation)
    ("figo", (), "The forget gate multiplies the candidate (and the input gate c_prev): "
     "c_t = f_t * c_prev + i_t * g_t."),
    ("ifgo", ("no_forget",), "c_prev is not multiplied by the forget gate f_t: "
     "c_t = f_t * c_prev + i_t * g_t."),
    ("ifgo", ("no_input",), "g_t is not multiplied by the input gate i_t: "
     "c_t = f_t * c_prev + i_t * g_t."),
    ("ifgo", ("no_tanh_c",), "h_t = o_t * c_t: the output is o_t * tanh(c_t)."),
    ("ifgo", ("sigmoid_g",), "The candidate g_t uses a sigmoid: it is np.tanh of its block."),
    ("ifgo", ("forget_bias",), "The forget gate gets an extra bias of 1 (TensorFlow's "
     "forget_bias, Keras' unit_forget_bias): PyTorch's LSTM has only b, f_t = sigmoid(a[:, H:2H])."),
    *(("ifgo", (f"tanh_{g}",), f"The {name} gate {g}_t uses tanh: the gates i_t, f_t, o_t are "
       "sigmoids (values in (0, 1)); only the candidate g_t uses tanh.")
      for g, name in (("i", "input"), ("f", "forget"), ("o", "output"))),
]  # fmt: skip


def _sizes(s: dict) -> str:
    return " (" + ", ".join(f"{k} = {v}" for k, v in s.items()) + ")"


def _forward_causes(x, h, c, W_x, W_h, b, which: int) -> list[Cause]:
    """Wrong h_t (which = 0) or c_t (which = 1) of the lab's known mistakes."""
    args = (_t(x), _t(h), _t(c), _t(W_x), _t(W_h), _t(b))
    causes = []
    with torch.no_grad():
        for order, flags, why in _FORWARD_CAUSES:
            causes.append(Cause(_n(lstm_step_t(*args, *flags, order=order)[which]), why))
        for order in map("".join, permutations("ifgo")):  # TF's i, g, f, o; ONNX's i, o, f, g; ...
            if order not in ("ifgo", "figo"):
                causes.append(Cause(_n(lstm_step_t(*args, order=order)[which]), _ORDER_HINT))
        no_h = lstm_step_t(_t(x), torch.zeros_like(_t(h)), *args[2:])[which]
        causes.append(Cause(_n(no_h), "h_prev is missing: the gates use h_prev @ W_h."))
    return causes


def _check_step_forward_once(fn: Callable, N, D, H, seed, where: str = "") -> None:
    label = "lstm_step_forward"
    _, X, h, c, W_x, W_h, b = random_lstm(N, 1, D, H, seed)
    x = X[:, 0]
    out = unpack(call(fn, label, x, h, c, W_x, W_h, b), label, ("h_t", "c_t", "cache"))
    cell = lstm_module(W_x, W_h, b)
    with torch.no_grad():
        want_h, want_c = cell(_t(x), (_t(h), _t(c)))
    shape = "must be (N, H): x_t @ W_x + h_prev @ W_h + b is (N, 4H), one block of H per gate."
    swapped = "It equals {}: return h_t, c_t, cache in this order."
    for k, (name, want, other) in enumerate((("c_t", want_c, "h_t"), ("h_t", want_h, "c_t"))):
        causes = [Cause(_n((want_h, want_c)[k]), swapped.format(other))]
        _compare(name + where, out[1 - k], want, shape_hint=f"{name} {shape}",
                 causes=causes + _forward_causes(x, h, c, W_x, W_h, b, 1 - k))  # fmt: skip
    a = x @ W_x + h @ W_h + b
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    gates = (sig(a[:, :H]), sig(a[:, H : 2 * H]), np.tanh(a[:, 2 * H : 3 * H]), sig(a[:, 3 * H :]))
    keep = (
        "Keep the line `cache = (x_t, h_prev, c_prev, i_t, f_t, g_t, o_t, c_t, W_x, W_h)` "
        "that the lab gives, with the gates after their sigmoid or tanh."
    )
    check_cache("cache", out[2], (x, h, c, *gates, _n(want_c), W_x, W_h), LSTM_CACHE, keep, where)


def check_lstm_step_forward(
    fn: Callable, *, N: int = 3, D: int = 4, H: int = 5, seed: int = 0
) -> None:
    """Check ``lstm_step_forward(x_t, h_prev, c_prev, W_x, W_h, b) -> (h_t, c_t, cache)``
    against ``nn.LSTMCell`` with the same weights, on the given sizes and on others."""
    _check_step_forward_once(fn, N, D, H, seed)
    _check_step_forward_once(fn, **_OTHER, seed=seed + 1000, where=_sizes(_OTHER))
    passed(
        "lstm_step_forward: h_t and c_t match nn.LSTMCell with the same weights (gate order "
        "i, f, g, o); the cache holds " + ", ".join(LSTM_CACHE) + "."
    )


_ORDER = "The gate gradients are stacked in the wrong order: da = (da_i, da_f, da_g, da_o), in the order i, f, g, o."
_BACKWARD_CAUSES = {
    "no_tanh_c_grad": "tanh'(c_t) is forgotten: dh_t reaches c_t through o_t * (1 - tanh(c_t)**2).",
    "no_h_to_c": "The gradient of h_t does not reach c_t: dc_t of this step is the dc_t given "
    "plus dh_t * o_t * (1 - tanh(c_t)**2).",
    "tanh_c_prev_grad": "tanh' is taken at c_prev: dh_t reaches c_t through "
    "o_t * (1 - tanh(c_t)**2), at c_t, the cell state of this step.",
    "no_sigmoid_grad": "A sigmoid derivative is missing: the gradient through a gate "
    "s = sigmoid(a) is multiplied by s * (1 - s).",
    "sigmoid_s_grad": "The sigmoid derivative is taken as s: it is s * (1 - s), for i_t, "
    "f_t and o_t.",
    "no_tanh_g_grad": "The derivative of the candidate's tanh is missing: multiply by 1 - g_t**2.",
}


def _step_autograd(x, h, c, W_x, W_h, b, dh, dc, *flags, module: bool = False) -> dict:
    """Gradients of sum(h_t dh + c_t dc) through one step (nn.LSTMCell when ``module``)."""
    ins = [_t(v).requires_grad_() for v in (x, h, c, W_x, W_h, b)]
    if module:
        cell = lstm_module(W_x, W_h, b)
        h_t, c_t = cell(ins[0], (ins[1], ins[2]))
    else:
        h_t, c_t = lstm_step_t(*ins, *flags)
    (h_t * _t(dh) + c_t * _t(dc)).sum().backward()
    grads = [v.grad for v in ins[:3]]
    if module:
        grads += [cell.weight_ih.grad.T, cell.weight_hh.grad.T, cell.bias_ih.grad]
    else:
        grads += [v.grad for v in ins[3:]]
    return dict(zip(("dx_t", "dh_prev", "dc_prev", "dW_x", "dW_h", "db"), map(_n, grads)))


_SHAPES = {"dx_t": "(N, D) like x_t", "dh_prev": "(N, H) like h_prev", "dc_prev": "(N, H) like c_prev",
           "dW_x": "(D, 4H) like W_x", "dW_h": "(H, 4H) like W_h", "db": "(4H,) like b: sum over the batch"}  # fmt: skip


def _check_step_backward_once(fn: Callable, N, D, H, seed, where: str = "") -> None:
    label = "lstm_step_backward"
    rng, X, h, c, W_x, W_h, b = random_lstm(N, 1, D, H, seed)
    x = X[:, 0]
    dh, dc = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    want = _step_autograd(x, h, c, W_x, W_h, b, dh, dc, module=True)
    wrong = {k: _step_autograd(x, h, c, W_x, W_h, b, dh, dc, k) for k in _BACKWARD_CAUSES}
    no_dc = _step_autograd(x, h, c, W_x, W_h, b, dh, 0 * dc, module=True)
    cell = lstm_module(W_x, W_h, b)
    with torch.no_grad():
        h_t, c_t = cell(_t(x), (_t(h), _t(c)))
    a = x @ W_x + h @ W_h + b
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    gates = (sig(a[:, :H]), sig(a[:, H : 2 * H]), np.tanh(a[:, 2 * H : 3 * H]), sig(a[:, 3 * H :]))
    cache = (x, h, c, *gates, _n(c_t), W_x, W_h)
    before = snapshot([cache])
    names = tuple(_SHAPES)
    got = dict(zip(names, unpack(call(fn, label, dh, dc, cache), label, names)))
    check_unchanged(label, [cache], [cache], before, LSTM_CACHE)
    for name in ("db", "dW_x", "dW_h", "dx_t", "dh_prev", "dc_prev"):
        causes = [Cause(w[name], _BACKWARD_CAUSES[k]) for k, w in wrong.items()]
        causes.append(Cause(no_dc[name], "The dc_t given is not used: it adds to the "
                            "gradient of c_t (dc_t + dh_t * o_t * (1 - tanh(c_t)**2))."))  # fmt: skip
        if name in ("db", "dW_x", "dW_h"):  # the gate gradients stacked in another order
            blocks = np.split(want[name], 4, axis=-1)
            causes += [Cause(np.concatenate([blocks["ifgo".index(g)] for g in p], -1), _ORDER)
                       for p in map("".join, permutations("ifgo")) if p != "ifgo"]  # fmt: skip
        if name == "dc_prev":
            causes.append(Cause(dc + dh * gates[3] * (1 - np.tanh(_n(c_t)) ** 2),
                                "dc_prev is missing the forget gate: dc_prev = dc * f_t."))  # fmt: skip
        _compare(name + where, got[name], want[name], causes=causes,
                 shape_hint=f"{name} must be {_SHAPES[name]}.",
                 hint="Stack the four gate gradients (after their sigmoid or tanh derivative) "
                 "into da, (N, 4H), in the order i, f, g, o: then dW_x = x_t^T da, "
                 "dW_h = h_prev^T da, dx_t = da W_x^T, dh_prev = da W_h^T.")  # fmt: skip


def check_lstm_step_backward(
    fn: Callable, *, N: int = 3, D: int = 4, H: int = 5, seed: int = 3
) -> None:
    """Check ``lstm_step_backward(dh_t, dc_t, cache) -> (dx_t, dh_prev, dc_prev, dW_x, dW_h, db)``
    by autograd through ``nn.LSTMCell``; the cache is built here (not by your forward
    pass) and must come back unchanged."""
    _check_step_backward_once(fn, N, D, H, seed)
    _check_step_backward_once(fn, **_OTHER, seed=seed + 1000, where=_sizes(_OTHER))
    passed(
        "lstm_step_backward: dx_t, dh_prev, dc_prev, dW_x, dW_h, db match autograd through "
        "nn.LSTMCell (two sets of sizes); the cache is unchanged."
    )
