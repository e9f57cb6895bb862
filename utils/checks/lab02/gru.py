"""Lab 2 checks of one GRU step (PyTorch's form): forward against nn.GRUCell, backward by autograd."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import passed
from utils.checks.engine import Cause, call, check_unchanged, snapshot, unpack
from utils.checks.lab02.reference import (
    GRU_CACHE,
    _compare,
    _n,
    _t,
    check_cache,
    gru_cell,
    gru_step_t,
    random_gru,
)

_OTHER = {"N": 1, "D": 5, "H": 3}

_FORWARD = [  # (gate order, flags of gru_step_t, explanation)
    ("rzn", ("reset_before",), "The reset gate is applied before the matmul, (r_t * h_prev) @ W_hn: "
     "PyTorch applies it after, r_t * (h_prev @ W_hn + b_hn)."),
    ("rzn", ("z_flipped",), "z_t and 1 - z_t are swapped: h_t = (1 - z_t) * n_t + z_t * h_prev."),
    ("rzn", ("b_hn_outside",), "b_hn is outside the reset: r_t multiplies h_prev @ W_hn + b_hn."),
    ("zrn", (), "The gate blocks are read in the wrong order: PyTorch's order is r, z, n."),
    ("rnz", (), "The gate blocks are read in the wrong order: PyTorch's order is r, z, n."),
    ("nzr", (), "The gate blocks are read in the wrong order: PyTorch's order is r, z, n."),
    ("rzn", ("tanh_r",), "The reset gate r_t uses tanh: r_t and z_t are sigmoids; only n_t uses tanh."),
    ("rzn", ("tanh_z",), "The update gate z_t uses tanh: r_t and z_t are sigmoids; only n_t uses tanh."),
]  # fmt: skip


def _sizes(s: dict) -> str:
    return " (" + ", ".join(f"{k} = {v}" for k, v in s.items()) + ")"


def _gru_cache(x, h, W_x, W_h, b_x, b_h) -> tuple:
    H = h.shape[1]
    ax, ah = x @ W_x + b_x, h @ W_h + b_h
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    r, z = sig(ax[:, :H] + ah[:, :H]), sig(ax[:, H : 2 * H] + ah[:, H : 2 * H])
    n = np.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :])
    return (x, h, r, z, n, ah[:, 2 * H :], W_x, W_h)


def _check_forward_once(fn: Callable, N, D, H, seed, where="") -> None:
    label = "gru_step_forward"
    _, x, h, W_x, W_h, b_x, b_h = random_gru(N, D, H, seed)
    h_t, cache = unpack(call(fn, label, x, h, W_x, W_h, b_x, b_h), label, ("h_t", "cache"))
    args = [_t(v) for v in (x, h, W_x, W_h, b_x, b_h)]
    with torch.no_grad():
        want = _n(gru_cell(W_x, W_h, b_x, b_h)(args[0], args[1]))
        causes = [Cause(_n(gru_step_t(*args, *f, order=o)), why) for o, f, why in _FORWARD]
        causes.append(Cause(_n(gru_step_t(*args[:3], args[3] * 0, *args[4:])),
                            "h_prev @ W_h is missing."))  # fmt: skip
    _compare("h_t" + where, h_t, want, causes=causes,
             shape_hint="h_t must be (N, H).")  # fmt: skip
    keep = (
        "Keep the line `cache = (x_t, h_prev, r_t, z_t, n_t, hn_t, W_x, W_h)` that the lab "
        "gives; hn_t is h_prev @ W_hn + b_hn, the part the reset gate multiplies."
    )
    check_cache("cache", cache, _gru_cache(x, h, W_x, W_h, b_x, b_h), GRU_CACHE, keep, where)


def check_gru_step_forward(
    fn: Callable, *, N: int = 3, D: int = 4, H: int = 5, seed: int = 6
) -> None:
    """Check ``gru_step_forward(x_t, h_prev, W_x, W_h, b_x, b_h) -> (h_t, cache)`` against
    ``nn.GRUCell`` with the same weights, on the given sizes and on others."""
    _check_forward_once(fn, N, D, H, seed)
    _check_forward_once(fn, **_OTHER, seed=seed + 1000, where=_sizes(_OTHER))
    passed(
        "gru_step_forward: h_t matches nn.GRUCell with the same weights (gate order r, z, n, "
        "reset after the matmul); the cache holds " + ", ".join(GRU_CACHE) + "."
    )


_BACKWARD = {
    "no_sigmoid_grad": "A sigmoid derivative is missing: the gradient through r_t or z_t is "
    "multiplied by s * (1 - s).",
    "sigmoid_s_grad": "The sigmoid derivative is taken as s: for r_t and z_t it is s * (1 - s).",
    "no_tanh_grad": "The tanh derivative of n_t is missing: multiply by 1 - n_t**2.",
    "reset_before_grad": "dW_hn is computed as if the reset came before the matmul, "
    "(r_t * h_prev)^T dn_pre: the reset multiplies hn_t, so dW_hn = h_prev^T (dn_pre * r_t).",
    "z_flipped": "z_t and 1 - z_t are swapped: dn = dh_t * (1 - z_t), dh_prev gets dh_t * z_t.",
    "reset_before": "The reset gate is treated as applied before the matmul: it multiplies "
    "hn_t = h_prev @ W_hn + b_hn, so dW_hn = h_prev^T (dn_pre * r_t), and db_hn gets r_t too.",
}
_SHAPES = {"dx_t": "(N, D)", "dh_prev": "(N, H)", "dW_x": "(D, 3H)", "dW_h": "(H, 3H)",
           "db_x": "(3H,)", "db_h": "(3H,)"}  # fmt: skip


def _autograd(x, h, W_x, W_h, b_x, b_h, dh, *flags, module=False) -> dict:
    ins = [_t(v).requires_grad_() for v in (x, h, W_x, W_h, b_x, b_h)]
    if module:
        cell = gru_cell(W_x, W_h, b_x, b_h)
        out = cell(ins[0], ins[1])
    else:
        out = gru_step_t(*ins, *flags)
    (out * _t(dh)).sum().backward()
    grads = [ins[0].grad, ins[1].grad]
    if module:
        grads += [
            cell.weight_ih.grad.T,
            cell.weight_hh.grad.T,
            cell.bias_ih.grad,
            cell.bias_hh.grad,
        ]
    else:
        grads += [v.grad for v in ins[2:]]
    return dict(zip(_SHAPES, map(_n, grads)))


def _check_backward_once(fn: Callable, N, D, H, seed, where="") -> None:
    label = "gru_step_backward"
    rng, x, h, W_x, W_h, b_x, b_h = random_gru(N, D, H, seed)
    dh = rng.normal(size=(N, H))
    args = (x, h, W_x, W_h, b_x, b_h, dh)
    want = _autograd(*args, module=True)
    wrong = {k: _autograd(*args, k) for k in _BACKWARD}
    cache = _gru_cache(x, h, W_x, W_h, b_x, b_h)
    before = snapshot([cache])
    got = dict(zip(_SHAPES, unpack(call(fn, label, dh, cache), label, tuple(_SHAPES))))
    check_unchanged(label, [cache], [cache], before, GRU_CACHE)
    z = cache[3]
    for name in ("db_x", "db_h", "dW_x", "dW_h", "dx_t", "dh_prev"):
        causes = [Cause(w[name], _BACKWARD[k]) for k, w in wrong.items()]
        if name == "dh_prev":
            causes.append(Cause(want[name] - dh * z, "The direct path is missing: h_t = ... + "
                                "z_t * h_prev, so dh_prev also gets dh_t * z_t."))  # fmt: skip
            causes.append(Cause(want[name] - dh * z + dh, "The direct path is dh_t * z_t "
                                "(h_t = ... + z_t * h_prev), not dh_t."))  # fmt: skip
            causes.append(Cause(want[name] - dh * z + dh * (1 - z), "The direct path is dh_t * "
                                "z_t (h_t = (1 - z_t) n_t + z_t h_prev), not dh_t * (1 - z_t)."))  # fmt: skip
        if name == "db_h":
            no_r = want["db_h"].copy()
            no_r[2 * H :] = want["db_x"][2 * H :]
            causes.append(Cause(no_r, "db_h of the n block is the gradient before the reset: "
                                "it is the sum of dn_pre * r_t (b_hn sits inside the reset)."))  # fmt: skip
        if name in ("db_x", "db_h"):
            other = "db_h" if name == "db_x" else "db_x"
            causes.append(Cause(want[other], f"It is {other}: db_x sums (dr, dz, dn) over the "
                                "batch, db_h sums (dr, dz, dn * r_t)."))  # fmt: skip
            flip = want[name].copy()
            flip[H : 2 * H] *= -1
            causes.append(Cause(flip, "The z block has the wrong sign: h_t = (1 - z_t) n_t + "
                                "z_t h_prev, so dz = dh_t * (h_prev - n_t)."))  # fmt: skip
        _compare(name + where, got[name], want[name], causes=causes,
                 shape_hint=f"{name} must be {_SHAPES[name]}.",
                 hint="Build dax = (dr, dz, dn) and dah = (dr, dz, dn * r_t) over the 3H "
                 "columns, with the gate derivatives applied: dW_x = x_t^T dax, "
                 "dW_h = h_prev^T dah, db_x and db_h their sums over the batch.")  # fmt: skip


def check_gru_step_backward(
    fn: Callable, *, N: int = 3, D: int = 4, H: int = 5, seed: int = 7
) -> None:
    """Check ``gru_step_backward(dh_t, cache) -> (dx_t, dh_prev, dW_x, dW_h, db_x, db_h)`` by
    autograd through ``nn.GRUCell``; the cache is built here and must come back unchanged."""
    _check_backward_once(fn, N, D, H, seed)
    _check_backward_once(fn, **_OTHER, seed=seed + 1000, where=_sizes(_OTHER))
    passed(
        "gru_step_backward: dx_t, dh_prev, dW_x, dW_h, db_x, db_h match autograd through "
        "nn.GRUCell (two sets of sizes); the cache is unchanged."
    )
