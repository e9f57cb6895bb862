"""Lab 6 checks of the model: the LSTM autoencoder's forward pass and the anomaly score.

The autoencoder's reference is the LSTM equations written out step by step in torch
(float64) with the weights the check draws, not ``nn.LSTM``; its known wrong variants
change one thing (the code taken from h_1 or c_T, the decoder fed zeros or the input
itself, ...). Shapes: ``X: (N, T, 1)``, hidden size ``H``::

    encoder   h_t, c_t = LSTM(x_t, h_{t-1}, c_{t-1}),  t = 1..T,  from h_0 = c_0 = 0
    code      z = h_T                                   (N, H)
    decoder   s_t, m_t = LSTM(z, s_{t-1}, m_{t-1}),     t = 1..T,  from s_0 = m_0 = 0
    output    x_hat_t = s_t W_hq + b_q                  (N, 1)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import passed, seeded
from utils.checks.engine import Cause, call, compare, fail


def _lstm(X, W_ih, W_hh, b_ih, b_hh, h, c):
    """The LSTM equations over X: (N, T, D) from (h, c); returns states (N, T, H), h_T, c_T."""
    states = []
    for t in range(X.shape[1]):
        i, f, g, o = (X[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        states.append(h)
    return torch.stack(states, dim=1), h, c


def _run(w: dict, X, *, code="h_T", dec_in="code", dec_state="zero", reverse=False, flip_in=False):
    """The autoencoder written out; the keywords give the known wrong variants."""
    enc = [w[f"encoder.{k}_l0"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    dec = [w[f"decoder.{k}_l0"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    N, T, _ = X.shape
    H = enc[1].shape[1]
    zero = torch.zeros(N, H, dtype=X.dtype)
    states, h_T, c_T = _lstm(X.flip(1) if flip_in else X, *enc, zero, zero)
    z = {"h_T": h_T, "h_1": states[:, 0], "c_T": c_T, "zero": zero}[code]
    inputs = {"code": z[:, None].expand(N, T, H), "zeros": torch.zeros(N, T, H, dtype=X.dtype),
              "states": states, "mixed": z.repeat(T, 1).reshape(N, T, H)}  # fmt: skip
    start = (h_T, c_T) if dec_state == "encoder" else (zero, zero)
    out = _lstm(inputs[dec_in], *dec, *start)[0] @ w["output.weight"].T + w["output.bias"]
    return out.flip(1) if reverse else out


def random_weights(H: int, seed: int) -> dict:
    """A state_dict of the lab's LSTMAutoencoder(hidden_size=H), float64, drawn by ``seed``."""
    rng = seeded(seed)
    shapes = {
        "encoder.weight_ih_l0": (4 * H, 1), "encoder.weight_hh_l0": (4 * H, H),
        "encoder.bias_ih_l0": (4 * H,), "encoder.bias_hh_l0": (4 * H,),
        "decoder.weight_ih_l0": (4 * H, H), "decoder.weight_hh_l0": (4 * H, H),
        "decoder.bias_ih_l0": (4 * H,), "decoder.bias_hh_l0": (4 * H,),
        "output.weight": (1, H), "output.bias": (1,),
    }  # fmt: skip
    return {k: torch.tensor(rng.normal(scale=0.6, size=s)) for k, s in shapes.items()}


_CAUSES = [  # (keywords of _run, explanation)
    (dict(code="h_1"), "The code is the encoder's first state h_1: it is the last one, h_T "
     "(the state after reading the whole beat)."),
    (dict(code="c_T"), "The code is the cell state c_T: the lab's code is the hidden state h_T."),
    (dict(code="zero"), "The output does not depend on the input beat: the decoder must read "
     "the code h_T of the encoder."),
    (dict(dec_in="zeros", dec_state="encoder"), "The decoder reads zeros and starts from "
     "(h_T, c_T): in this lab it reads h_T at every step (repeated T times) from a zero state."),
    (dict(dec_state="encoder"), "The decoder starts from the encoder's (h_T, c_T): in this lab "
     "it starts from zeros (nn.LSTM's default) and reads h_T repeated T times."),
    (dict(reverse=True), "The reconstruction is reversed in time: x_hat_t must line up with x_t."),
    (dict(dec_in="states"), "The decoder reads the encoder's states h_1..h_T: it must read "
     "only the code h_T, repeated T times (otherwise there is no bottleneck)."),
    (dict(dec_in="mixed"), "The repeated code mixes the beats: z.repeat(T, 1) stacks the batch "
     "T times; repeat along a new time axis, z.unsqueeze(1).expand(N, T, H)."),
    (dict(flip_in=True), "The encoder reads the beat reversed in time: feed x_1..x_T in order."),
]  # fmt: skip


def _check_forward_once(fn: Callable, N: int, T: int, H: int, seed: int) -> None:
    w = random_weights(H, seed)
    X = torch.tensor(seeded(seed + 1).normal(size=(N, T, 1)))
    with torch.no_grad():
        want = _run(w, X).numpy()
        causes = [Cause(_run(w, X, **kw).numpy(), why) for kw, why in _CAUSES]
        leak = "the input leaks through, and every beat, normal or not, is rebuilt well"
        causes += [Cause(X.numpy(), f"X_hat is X itself: {leak}."),
                   Cause(X.numpy() + want, f"X_hat is X plus the decoder's output: {leak}; "
                         "the output layer alone gives X_hat.")]  # fmt: skip
    X_in, w_in = X.clone(), {k: v.clone() for k, v in w.items()}
    got = call(fn, "autoencoder_forward", X_in, w_in)
    if not torch.equal(X_in, X) or any(not torch.equal(w_in[k], w[k]) for k in w):
        raise fail(
            "autoencoder_forward changed X or the weights in place.",
            "Compute new tensors (X = X * 2, not X.mul_(2)): the caller's data stays intact.",
        )
    hint = {
        (N, T, H): "X_hat is (N, T, H): the decoder's states still need the output layer "
        "(self.output), H -> 1.",
        (T, N, 1): "X_hat is (T, N, 1): the LSTMs are batch_first, so keep N first.",
        (N, 1, 1): "X_hat has one step: repeat the code h_T over the T steps of the beat.",
    }.get(tuple(getattr(got, "shape", ())), "X_hat must be (N, T, 1), like X.")
    compare(f"X_hat (N = {N}, T = {T}, H = {H})", got, want, threshold=1e-6, causes=causes,
            shape_hint=hint, hint="Encode with self.encoder (keep h_T), repeat h_T over the T "
            "steps, decode with self.decoder, then apply self.output.")  # fmt: skip


def check_autoencoder_forward(
    fn: Callable, *, N: int = 3, T: int = 9, H: int = 4, seed: int = 0
) -> None:
    """Check ``autoencoder_forward(X, weights) -> X_hat`` (the lab's LSTMAutoencoder with
    the state_dict ``weights``) against the LSTM equations, on two sets of sizes."""
    _check_forward_once(fn, N, T, H, seed)
    _check_forward_once(fn, 2, 5, 6, seed + 100)
    passed(
        "autoencoder_forward: X_hat (N, T, 1) matches the equations: encoder LSTM -> h_T, "
        "repeated T times -> decoder LSTM (from zero state) -> linear output."
    )


def check_reconstruction_error(fn: Callable, *, N: int = 5, T: int = 7, seed: int = 0) -> None:
    """Check ``reconstruction_error(X, X_hat) -> e`` (N,): the mean over time of the
    squared error of every beat. X, X_hat: (N, T, 1) arrays."""
    rng = seeded(seed)
    X = rng.normal(size=(N, T, 1))
    X_hat = X + rng.normal(scale=0.5, size=(N, T, 1))
    sq = (X - X_hat)[..., 0] ** 2
    want = sq.mean(axis=1)
    causes = [
        Cause(sq.sum(axis=1), "It is the sum over time: take the mean over the T steps, so "
              "beats of any length compare."),
        Cause(np.abs(X - X_hat)[..., 0].mean(axis=1), "It is the mean absolute error: the "
              "lab's score is the mean squared error."),
        Cause(np.sqrt(want), "It is the root of the mean squared error: leave out the root."),
        Cause((X - X_hat)[..., 0].mean(axis=1) ** 2, "The error is averaged before it is "
              "squared: square each difference, then average over time."),
        Cause(sq.max(axis=1), "It is the largest squared error of the beat: take the mean "
              "over the T steps."),
        Cause(np.median(sq, axis=1), "It is the median over time: take the mean."),
    ]  # fmt: skip
    got = call(fn, "reconstruction_error", X, X_hat)
    if isinstance(got, float | np.floating):
        got = np.asarray(got)  # one number: the shape check says why that is wrong
    shape = tuple(getattr(got, "shape", ()))
    hint = {
        (T,): "e has one value per time step: it is averaged over the beats (axis 0) instead "
        "of over time.",
        (T, 1): "e has one value per time step: it is averaged over the beats (axis 0) "
        "instead of over time.",
        (): "e is one number: the score is per beat, averaged over time only.",
        (N, T): "e is not averaged over time: one number per beat.",
        (N, T, 1): "e is not averaged over time: one number per beat.",
        (N, 1): "e must be (N,): average over the time and feature axes (or squeeze the last).",
    }.get(shape, "e must be (N,): one score per beat.")
    compare("e", got, want, threshold=1e-9, causes=causes, shape_hint=hint)
    got1 = call(fn, "reconstruction_error", X[:1], X_hat[:1])
    compare("e (N = 1)", got1, want[:1], threshold=1e-9, shape_hint="e must be (N,) for N = 1.")
    passed("reconstruction_error: e (N,) is the mean over time of each beat's squared error.")
