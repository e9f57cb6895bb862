"""Lab 2's references: PyTorch runs of the lab's LSTM and GRU, right and deliberately wrong.

The right ones are ``nn.LSTMCell`` / ``nn.LSTM`` / ``nn.GRUCell`` with the lab's
stacked weights copied in through :mod:`utils.checks.references`; the wrong ones
are :func:`lstm_step_t` / :func:`gru_step_t` with a flag that changes one thing
(the gate order, a derivative, a path). None of them has the signature of an
exercise; they return torch tensors. Shapes and names as in :mod:`utils.checks.lab02`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from utils.checks.core import seeded
from utils.checks.engine import check_cache as engine_check_cache
from utils.checks.engine import compare, fail, numpy_only
from utils.checks.references import load_named_weights

THRESHOLD = 1e-7
"""Largest relative error accepted (float64 everywhere)."""

LSTM_CACHE = ("x_t", "h_prev", "c_prev", "i_t", "f_t", "g_t", "o_t", "c_t", "W_x", "W_h")
GRU_CACHE = ("x_t", "h_prev", "r_t", "z_t", "n_t", "hn_t", "W_x", "W_h")
LONG = {"N": 2, "T": 30, "D": 3, "H": 4}
"""The sequence checks also run on this longer sequence (T >= 30)."""


_numpy_only = numpy_only


def _compare(name: str, got, want, **kwargs) -> float:
    """:func:`compare` with the lab's threshold, refusing torch tensors (NumPy only)."""
    _numpy_only(name, got)
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    causes = [(_n(v) if isinstance(v, torch.Tensor) else v, e) for v, e in kwargs.pop("causes", [])]
    return compare(name, got, want, **{"threshold": THRESHOLD, "causes": causes, **kwargs})


def _t(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)


def _n(t) -> np.ndarray:
    return t.detach().numpy().copy() if isinstance(t, torch.Tensor) else np.asarray(t)


def random_lstm(N: int, T: int, D: int, H: int, seed: int, *, zero_state: bool = False):
    """rng, X (N, T, D), h0, c0 (N, H), W_x (D, 4H), W_h (H, 4H), b (4H,)."""
    rng = seeded(seed)
    X = rng.normal(size=(N, T, D))
    h0, c0 = rng.normal(scale=0.5, size=(N, H)), rng.normal(scale=1.0, size=(N, H))
    if zero_state:
        h0, c0 = np.zeros((N, H)), np.zeros((N, H))
    W_x = rng.normal(scale=0.5, size=(D, 4 * H))
    W_h = rng.normal(scale=0.5, size=(H, 4 * H))
    return rng, X, h0, c0, W_x, W_h, rng.normal(scale=0.5, size=4 * H)


def random_gru(N: int, D: int, H: int, seed: int):
    """rng, x_t (N, D), h_prev (N, H), W_x (D, 3H), W_h (H, 3H), b_x, b_h (3H,)."""
    rng = seeded(seed)
    x_t, h_prev = rng.normal(size=(N, D)), rng.normal(scale=0.7, size=(N, H))
    W_x, W_h = rng.normal(scale=0.5, size=(D, 3 * H)), rng.normal(scale=0.5, size=(H, 3 * H))
    return rng, x_t, h_prev, W_x, W_h, rng.normal(scale=0.5, size=3 * H), rng.normal(size=3 * H)


def _blocks(W, order: str, subs: dict) -> dict:
    """Split the stacked ``W`` into its gate blocks, named in ``order``."""
    return dict(zip((subs[g] for g in order), np.split(np.asarray(W), len(order), axis=-1)))


_LSTM_SUB = dict(zip("ifgo", "ifco"))
_GRU_SUB = dict(zip("rzn", "rzh"))


def lstm_module(W_x, W_h, b, *, cell: bool = True) -> nn.Module:
    """An ``nn.LSTMCell`` (or a batch-first ``nn.LSTM``), float64, holding the stacked weights."""
    D, H = W_x.shape[0], W_h.shape[0]
    named = {}
    for prefix, W in (("W_x", W_x), ("W_h", W_h), ("b_", b)):
        named |= {prefix + k: v for k, v in _blocks(W, "ifgo", _LSTM_SUB).items()}
    module = nn.LSTMCell(D, H) if cell else nn.LSTM(D, H, batch_first=True)
    return load_named_weights(module.double(), named)


def gru_cell(W_x, W_h, b_x, b_h) -> nn.GRUCell:
    """An ``nn.GRUCell`` (float64) holding the stacked weights and the two biases."""
    named = {}
    for prefix, W in (("W_x", W_x), ("W_h", W_h)):
        named |= {prefix + k: v for k, v in _blocks(W, "rzn", _GRU_SUB).items()}
    bx, bh = _blocks(b_x, "rzn", _GRU_SUB), _blocks(b_h, "rzn", _GRU_SUB)
    named |= {"b_r": bx["r"] + bh["r"], "b_z": bx["z"] + bh["z"], "b_xh": bx["h"], "b_hh": bh["h"]}
    cell = load_named_weights(nn.GRUCell(W_x.shape[0], W_h.shape[0]).double(), named)
    with torch.no_grad():  # keep the two biases of r and z apart, as the lab does
        cell.bias_ih.copy_(_t(b_x))
        cell.bias_hh.copy_(_t(b_h))
    return cell


def _straight(value: torch.Tensor, a: torch.Tensor, slope) -> torch.Tensor:
    """``value`` in the forward pass, with ``slope`` as its derivative with respect to ``a``."""
    return value.detach() + (a - a.detach()) * slope


def _sigmoid(a, flags):
    s = torch.sigmoid(a)
    if "sigmoid_s_grad" in flags:  # s instead of s * (1 - s)
        return _straight(s, a, s.detach())
    return _straight(s, a, 1.0) if "no_sigmoid_grad" in flags else s


def lstm_step_t(x, h, c, W_x, W_h, b, *flags: str, order: str = "ifgo"):
    """One LSTM step in torch (stacked tensors), deliberately changed by ``flags``.

    Forward flags: ``order`` (the blocks read as these gates), ``no_forget``
    (c_t = c_prev + i g), ``no_input`` (c_t = f c_prev + g), ``no_tanh_c`` (h_t = o c_t),
    ``sigmoid_g`` (the candidate with a sigmoid), ``tanh_i`` / ``tanh_f`` / ``tanh_o`` (that
    gate with a tanh), ``forget_bias`` (sigmoid(a_f + 1)). Backward flags (same values, wrong
    derivative): ``no_sigmoid_grad``, ``sigmoid_s_grad`` (s for s (1 - s)),
    ``no_tanh_c_grad`` (tanh'(c_t) forgotten), ``tanh_c_prev_grad`` (tanh' at c_prev),
    ``no_tanh_g_grad``, ``no_h_to_c`` (no gradient from h_t into c_t).
    """
    a = x @ W_x + h @ W_h + b
    blocks = dict(zip(order, a.chunk(4, dim=-1)))
    i, f, o = (torch.tanh(blocks[k]) if f"tanh_{k}" in flags else _sigmoid(blocks[k], flags)
               for k in "ifo")  # fmt: skip
    if "forget_bias" in flags:
        f = torch.sigmoid(blocks["f"] + 1.0)
    g = torch.sigmoid(blocks["g"]) if "sigmoid_g" in flags else torch.tanh(blocks["g"])
    if "no_tanh_g_grad" in flags:
        g = _straight(g, blocks["g"], 1.0)
    c_new = (c if "no_forget" in flags else f * c) + (g if "no_input" in flags else i * g)
    tc = c_new if "no_tanh_c" in flags else torch.tanh(c_new)
    if "no_tanh_c_grad" in flags or "tanh_c_prev_grad" in flags:
        slope = 1.0 if "no_tanh_c_grad" in flags else 1 - torch.tanh(c.detach()) ** 2
        tc = _straight(tc, c_new, slope)
    if "no_h_to_c" in flags:
        tc = tc.detach()
    return o * tc, c_new


def gru_step_t(x, h, W_x, W_h, b_x, b_h, *flags: str, order: str = "rzn"):
    """One GRU step in torch, PyTorch's form, deliberately changed by ``flags``.

    Forward: ``order``, ``reset_before`` (n = tanh(x W_xn + b_xn + (r h) W_hn + b_hn)),
    ``z_flipped`` (h_t = z n + (1 - z) h_prev), ``b_hn_outside`` (b_hn not multiplied
    by r), ``tanh_r`` / ``tanh_z`` (that gate with a tanh). Backward: ``no_sigmoid_grad``, ``sigmoid_s_grad``, ``no_tanh_grad``,
    ``reset_before_grad`` (only dW_hn as if the reset came first: (r h_prev)^T dn_pre).
    """
    H = h.shape[1]
    ax, ah = x @ W_x + b_x, h @ W_h + b_h
    bx, bh = dict(zip(order, ax.chunk(3, dim=-1))), dict(zip(order, ah.chunk(3, dim=-1)))
    r, z = (torch.tanh(bx[k] + bh[k]) if f"tanh_{k}" in flags else _sigmoid(bx[k] + bh[k], flags)
            for k in "rz")  # fmt: skip
    sl = slice(order.index("n") * H, (order.index("n") + 1) * H)
    if "reset_before" in flags:
        pre = bx["n"] + (r * h) @ W_h[:, sl] + b_h[sl]
    elif "b_hn_outside" in flags:
        pre = bx["n"] + r * (bh["n"] - b_h[sl]) + b_h[sl]
    else:
        pre = bx["n"] + r * bh["n"]
    if "reset_before_grad" in flags:  # same value; W_hn's gradient through (r h_prev) only
        W_n = W_h[:, sl]
        rh = (r * h).detach()
        pre = bx["n"] + r * (h @ W_n.detach() + b_h[sl]) + (rh @ W_n - (rh @ W_n).detach())
    n = torch.tanh(pre)
    if "no_tanh_grad" in flags:
        n = _straight(n, pre, 1.0)
    return (z * n + (1 - z) * h) if "z_flipped" in flags else ((1 - z) * n + z * h)


def check_cache(name: str, cache, expected: tuple, parts: tuple, hint: str, step: str = ""):
    """:func:`utils.checks.engine.check_cache` with this lab's NumPy-only comparison."""
    engine_check_cache(name, cache, expected, parts, hint, step, compare_with=_compare)


def check_distinct(caches, slots: dict) -> None:
    """No array is stored as two different states in two caches (a buffer overwritten in
    place). ``slots``: cache index -> (name, offset): the slot holds state t + offset."""
    seen = []  # (which state, array, where)
    for t, cache in enumerate(caches):
        if not isinstance(cache, tuple | list):
            continue  # the value checks explain it
        for slot, (part, offset) in slots.items():
            value = cache[slot] if slot < len(cache) else None
            if not isinstance(value, np.ndarray):
                continue
            where = f"caches[{t}][{slot}] ({part} of step t = {t + 1})"
            for (kind, state), array, there in seen:
                if (kind, state) != (part[0], t + offset) and np.shares_memory(value, array):
                    raise fail(
                        f"{where} and {there} are the same array in memory, though they hold "
                        "different values: all the caches see its last value.",
                        "An array updated in place (h[...] = ..., c += ..., out=c) is stored in "
                        "several caches. Make a new array per step: c_t = f_t * c_prev + ... does.",
                    )
            seen.append(((part[0], t + offset), value, where))
