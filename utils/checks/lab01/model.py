"""Lab 1 checks of the whole model (loss and every gradient) and of gradient clipping."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.checks.core import CheckError, passed, seeded
from utils.checks.engine import Cause, call, describe, fail, unpack
from utils.checks.lab01.reference import (
    LONG,
    PARAM_NAMES,
    _compare,
    _finite,
    _n,
    _number,
    _random_rnn,
    _t,
)
from utils.checks.references import rnn_from_weights

_LONG_V = 5  # the longer run has D = 6 inputs and V = 5 outputs: nothing assumes D == V


def _check_loss_and_grads_once(fn: Callable, N, T, V, H, seed, where: str = "", D=None) -> None:
    label = "loss_and_grads"
    rng, X, h0, W_xh, W_hh, b_h = _random_rnn(N, T, V if D is None else D, H, seed)
    W_hq, b_q = rng.normal(scale=0.5, size=(H, V)), rng.normal(scale=0.3, size=V)
    params = dict(zip(PARAM_NAMES, (W_xh, W_hh, b_h, W_hq, b_q)))
    Y = rng.integers(0, V, size=(N, T))
    # The reference, computed here: nn.RNN + nn.Linear + F.cross_entropy, and autograd.
    rnn, out = rnn_from_weights(W_xh, W_hh, b_h), nn.Linear(H, V).double()
    with torch.no_grad():
        out.weight.copy_(_t(W_hq).T)
        out.bias.copy_(_t(b_q))
    targets = torch.as_tensor(Y).reshape(-1)
    zeros = torch.zeros(N, H, dtype=torch.float64)
    losses = [  # the loss; with h0 not used; without b_q
        F.cross_entropy(out(rnn(_t(X), h[None])[0]).reshape(-1, V) - shift, targets)
        for h, shift in ((_t(h0), 0.0), (zeros, 0.0), (_t(h0), out.bias.detach()))
    ]
    losses[0].backward()
    want = (rnn.weight_ih_l0.grad.T, rnn.weight_hh_l0.grad.T, rnn.bias_ih_l0.grad,
            out.weight.grad.T, out.bias.grad)  # fmt: skip
    given = {k: v.copy() for k, v in params.items()}
    loss, grads = unpack(call(fn, label, given, X, Y, h0), label, ("loss", "grads"))
    for k in PARAM_NAMES:
        if not np.array_equal(given[k], params[k]):
            raise fail(
                f"{label} changed params[{k!r}] in place: it should only compute, the training loop updates."
            )
    _compare(
        "loss" + where,
        _number("loss", loss),
        np.asarray(losses[0].item()),
        causes=[
            Cause(np.asarray(losses[1].item()), "h0 is not used: pass the argument h0 to rnn_forward."),
            Cause(np.asarray(losses[2].item()), "b_q is missing: the scores are states @ W_hq + b_q."),
        ],
        hint="Do check_rnn_forward and check_temporal_softmax_loss pass? Then look at the "
        "scores, states @ W_hq + b_q, of shape (N, T, V).",
    )  # fmt: skip
    if not isinstance(grads, dict):
        raise fail(f"grads is a {describe(grads)}, expected a dict {{name: gradient}} like params.")
    missing = [k for k in PARAM_NAMES if k not in grads]
    if missing:
        raise fail(
            f"grads has the keys {sorted(grads)}, missing {missing}.",
            "Use the same keys as params (W_xh, W_hh, b_h, W_hq, b_q).",
        )
    rnn_hint = "check_rnn_backward passes? Then look at dstates = dscores @ W_hq^T, fed to rnn_backward."  # fmt: skip
    hints = {
        "W_hq": "The output layer is applied at every time step: its gradient sums over N and T.",
        "b_q": "Sum dscores over N and T.",
    }
    for k, reference in zip(PARAM_NAMES, want):
        _compare(f"grads[{k!r}]{where}", grads[k], _n(reference), hint=hints.get(k, rnn_hint),
                 shape_hint=f"It must have the shape of params[{k!r}].")  # fmt: skip


def check_loss_and_grads(
    fn: Callable, *, N: int = 2, T: int = 4, V: int = 4, H: int = 5, seed: int = 5
) -> None:
    """Check ``loss_and_grads(params, X, Y, h0) -> (loss, grads)`` against PyTorch autograd,
    on the given sizes (D = V) and on a longer sequence (T = 25, D = 6, V = 5)."""
    _check_loss_and_grads_once(fn, N, T, V, H, seed)
    long = (LONG["N"], LONG["T"], _LONG_V, LONG["H"], seed + 1000)
    _check_loss_and_grads_once(fn, *long, where=f" (over T = {LONG['T']} steps)", D=LONG["D"])
    passed(
        "loss_and_grads: loss and every gradient match nn.RNN + nn.Linear + F.cross_entropy "
        f"(autograd), for T = {T} and T = {LONG['T']}."
    )


# ----------------------------------------------------------------------------- clipping

_ZERO_HINT = (
    "With all-zero gradients total_norm is 0: do not divide by it alone (PyTorch divides by "
    "total_norm + 1e-6); the clipped gradients are zeros and total_norm is 0."
)


def _clip_causes(grads: dict, max_norm: float, norm: float) -> dict[str, dict]:
    """Known wrong clipped gradients, by explanation."""
    scale = lambda f: {k: f(g) for k, g in grads.items()}  # noqa: E731
    return {
        "Nothing was clipped, but the global norm is above max_norm: scale every array by max_norm / total_norm.": grads,
        "Each array was clipped by its own norm: use one global norm over all arrays.":
            scale(lambda g: g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-300))),
        "np.clip clips each value, not the norm: scale every array by max_norm / total_norm.":
            scale(lambda g: np.clip(g, -max_norm, max_norm)),
        "The gradient is rescaled although its norm is below max_norm: only scale down, never up.":
            scale(lambda g: g * max_norm / (norm + 1e-6)),
        "The scale uses the squared norm: it is max_norm / total_norm, with total_norm the square root of the sum of squares.":
            scale(lambda g: g * min(1.0, max_norm / (norm**2 + 1e-6))),
        "It clips to a norm of 1, not to max_norm: use the argument max_norm.":
            scale(lambda g: g * min(1.0, 1.0 / (norm + 1e-6))),
    }  # fmt: skip


def check_clip_grad_norm(fn: Callable, *, seed: int = 6) -> None:
    """Check ``clip_grad_norm(grads, max_norm) -> (clipped, total_norm)`` against
    ``torch.nn.utils.clip_grad_norm_``: norm above and below max_norm, all zeros, and
    another max_norm with the five arrays of the model."""
    label = "clip_grad_norm"
    rng = seeded(seed)
    three = {"W_xh": (4, 5), "W_hh": (5, 5), "b_h": (5,)}
    five = dict(zip(PARAM_NAMES, [(4, 5), (5, 5), (5,), (5, 3), (3,)]))
    cases = {  # case: (scale of the gradients, max_norm, shapes)
        "norm above max_norm": (3.0, 1.0, three),
        "norm below max_norm": (0.05, 1.0, three),
        "all zeros": (0.0, 1.0, three),
        "norm above max_norm = 5, five arrays": (3.0, 5.0, five),
    }
    for case, (scale, max_norm, shapes) in cases.items():
        grads = {k: rng.normal(scale=scale, size=s) for k, s in shapes.items()}
        tensors = [nn.Parameter(_t(g)) for g in grads.values()]
        for p, g in zip(tensors, grads.values()):
            p.grad = _t(g)
        want_norm = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
        given, zero_hint = {k: g.copy() for k, g in grads.items()}, None if scale else _ZERO_HINT
        try:
            out = call(fn, label, given, max_norm)
        except CheckError as e:
            if scale or e.__cause__ is None:
                raise
            error = f"{type(e.__cause__).__name__}: {e.__cause__}"
            raise fail(f"{label} raised {error} (all-zero gradients).", _ZERO_HINT) from e
        clipped, total_norm = unpack(out, label, ("clipped", "total_norm"))
        if any(not np.array_equal(given[k], grads[k]) for k in grads):
            raise fail(f"{label} changed the arrays in grads in place.", "Return new arrays (g * scale).")  # fmt: skip
        if not isinstance(clipped, dict) or sorted(clipped) != sorted(grads):
            keys = f" with keys {sorted(clipped)}" if isinstance(clipped, dict) else ""
            raise fail(f"clipped is a {describe(clipped)}{keys}, expected a dict with the keys of "
                       f"grads {sorted(grads)}.")  # fmt: skip
        if not scale and not all(map(_finite, [total_norm, *clipped.values()])):
            raise fail(f"{label} returned non-finite values (NaN or inf) for all-zero gradients.", _ZERO_HINT)  # fmt: skip
        norms = [np.linalg.norm(g) for g in grads.values()]
        _compare(
            f"total_norm ({case})",
            _number("total_norm", total_norm),
            np.asarray(want_norm),
            threshold=1e-6,
            causes=[
                Cause(np.asarray(want_norm**2), "It is the squared norm: take the square root."),
                Cause(np.asarray(min(want_norm, max_norm)), "Return the norm before clipping (as PyTorch does)."),
                Cause(np.asarray(sum(norms)), "It is the sum of the arrays' norms: the global norm is the square root of the sum of the squares of all entries of all arrays."),
            ],
            hint=zero_hint or "total_norm is one global norm: the square root of the sum of "
            "the squares of every entry of every array.",
        )  # fmt: skip
        causes = _clip_causes(grads, max_norm, want_norm)
        for k, p in zip(grads, tensors):
            _compare(f"clipped[{k!r}] ({case})", clipped[k], _n(p.grad), threshold=1e-6,
                     hint=zero_hint, causes=[Cause(v[k], why) for why, v in causes.items()])  # fmt: skip
            if isinstance(clipped[k], np.ndarray) and np.shares_memory(clipped[k], given[k]):
                raise fail(
                    f"clipped[{k!r}] is the input array grads[{k!r}] itself ({case}).",
                    "Return new arrays in every case, also when nothing is clipped (g * scale "
                    "makes one): whoever changes the clipped gradients would change grads too.",
                )
    passed(
        f"{label}: matches torch.nn.utils.clip_grad_norm_ above and below max_norm (1 and 5) "
        "and for all-zero gradients; returns new arrays, inputs unchanged."
    )
