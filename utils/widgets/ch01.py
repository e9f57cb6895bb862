"""Chapter 1: a tiny RNN whose recurrent weight you move with a slider.

See :mod:`utils.widgets` for how the plain function and the widget fit together.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

RNN_INPUTS = ("pulse", "constant", "alternating")
"""The input signals :func:`rnn_dynamics` can drive the RNN with."""


def _rnn_weights(hidden_size: int, w_hh: float, rotation: float, input_scale: float):
    """``W_xh: (1, H)`` and ``W_hh: (H, H)`` of the exploration RNN (row-vector convention)."""
    if hidden_size == 1:
        return np.array([[input_scale]]), np.array([[w_hh]])
    a = np.deg2rad(rotation)
    R = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # h_t W_hh rotates by +a
    return np.array([[input_scale, 0.0]]), w_hh * R


def rnn_dynamics(
    w_hh: float = 0.9,
    input_scale: float = 1.0,
    *,
    hidden_size: int = 1,
    rotation: float = 30.0,
    inputs: str = "pulse",
    num_steps: int = 30,
) -> np.ndarray:
    """Run a tiny RNN ``h_t = tanh(x_t W_xh + h_{t-1} W_hh)`` from ``h_0 = 0``.

    - ``hidden_size=1``: ``W_hh = [[w_hh]]``, ``W_xh = [[input_scale]]``.
    - ``hidden_size=2``: ``W_hh = w_hh * R(rotation)``, a rotation by ``rotation``
      degrees scaled by ``w_hh``; the input enters unit 0 with ``input_scale``.
    - ``inputs``: ``"pulse"`` (x_1 = 1, then 0), ``"constant"`` (x_t = 1) or
      ``"alternating"`` (+1, -1, +1, ...).

    Returns ``H: (num_steps, hidden_size)``, the hidden state ``h_1 .. h_T``.
    """
    if hidden_size not in (1, 2):
        raise ValueError(f"hidden_size must be 1 or 2, got {hidden_size!r}")
    if inputs not in RNN_INPUTS:
        raise ValueError(f"inputs must be one of {RNN_INPUTS}, got {inputs!r}")
    if not isinstance(num_steps, (int, np.integer)) or isinstance(num_steps, bool) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    for name, value in (("w_hh", w_hh), ("input_scale", input_scale), ("rotation", rotation)):
        if not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    t = np.arange(num_steps)
    x = {
        "pulse": (t == 0).astype(float),
        "constant": np.ones(num_steps),
        "alternating": np.where(t % 2 == 0, 1.0, -1.0),
    }[inputs]
    W_xh, W_hh = _rnn_weights(hidden_size, float(w_hh), float(rotation), float(input_scale))
    h_t = np.zeros(hidden_size)
    H = np.empty((num_steps, hidden_size))
    for step in range(num_steps):
        h_t = np.tanh(x[step] * W_xh[0] + h_t @ W_hh)
        H[step] = h_t
    return H


def plot_rnn_dynamics(
    w_hh: float = 0.9,
    input_scale: float = 1.0,
    *,
    hidden_size: int = 1,
    rotation: float = 30.0,
    inputs: str = "pulse",
    num_steps: int = 30,
    ax=None,
):
    """Plot ``h_t`` of :func:`rnn_dynamics` over time; returns the ``Axes``.

    Try ``|w_hh| < 1`` (the memory of a pulse decays), ``w_hh > 1`` (the state
    settles at a fixed point ``h* = tanh(w_hh h*) != 0`` and stays there: about 0.86
    for ``w_hh = 1.5``), ``w_hh < 0`` (the sign flips every step),
    and ``hidden_size=2`` with a rotation (the state spirals: damped oscillation).
    """
    H = rnn_dynamics(
        w_hh,
        input_scale,
        hidden_size=hidden_size,
        rotation=rotation,
        inputs=inputs,
        num_steps=num_steps,
    )
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.2))
    t = np.arange(1, num_steps + 1)
    for j in range(hidden_size):
        ax.plot(t, H[:, j], marker=".", label=f"$h_t[{j}]$")
    ax.axhline(0.0, color="gray", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    extra = f", rotation={rotation:g} deg" if hidden_size == 2 else ""
    ax.set(
        xlabel="time step $t$",
        ylabel="$h_t$",
        title=f"{inputs} input: w_hh={w_hh:g}, input_scale={input_scale:g}{extra}",
    )
    if hidden_size > 1:
        ax.legend(loc="upper right")
    return ax
