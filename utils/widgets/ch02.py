"""Chapter 2: the gradient through time of an RNN with a chosen spectral radius.

See :mod:`utils.widgets` for how the plain function and the widget fit together.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

BPTT_NONLINEARITIES = ("tanh", "relu", "linear")
"""The activations :func:`bptt_grad_norms` can use."""


def bptt_grad_norms(
    spectral_radius: float = 1.0,
    nonlinearity: str = "tanh",
    num_steps: int = 50,
    *,
    hidden_size: int = 32,
    input_scale: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """``||dL/dh_t||`` for ``t = 1..T`` in an RNN whose ``W_hh`` has a chosen spectral radius.

    The RNN is ``h_t = f(x_t W_xh + h_{t-1} W_hh)`` from ``h_0 = 0`` with ``f`` the
    ``nonlinearity``, ``W_hh = spectral_radius * Q`` (``Q`` a random orthogonal
    ``(H, H)`` matrix, so every eigenvalue has modulus ``spectral_radius``),
    ``W_xh: (1, H)`` standard normal and a random input ``x_t ~ input_scale * N(0, 1)``.
    The loss is ``L = sum(h_T)``; the gradients come from autograd
    (:func:`utils.gradients.hidden_grad_norms`), in float64.

    Returns ``(num_steps,)``: entry ``t - 1`` is ``||dL/dh_t||`` (0 where it underflows).
    """
    import torch

    from utils.gradients import hidden_grad_norms

    if nonlinearity not in BPTT_NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {BPTT_NONLINEARITIES}, got {nonlinearity!r}")
    for name, value, minimum in (("num_steps", num_steps, 2), ("hidden_size", hidden_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    for name, value in (("spectral_radius", spectral_radius), ("input_scale", input_scale)):
        if not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    g = torch.Generator().manual_seed(int(seed))
    Q, _ = torch.linalg.qr(torch.randn(hidden_size, hidden_size, generator=g, dtype=torch.float64))
    W_hh = (float(spectral_radius) * Q).requires_grad_()
    W_xh = torch.randn(1, hidden_size, generator=g, dtype=torch.float64)
    X = float(input_scale) * torch.randn(1, int(num_steps), 1, generator=g, dtype=torch.float64)
    f = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda z: z}[nonlinearity]

    def step(x_t, h_prev):  # x_t: (1, 1), h_prev: (1, H) -> h_t: (1, H)
        return f(x_t @ W_xh + h_prev @ W_hh)

    h0 = torch.zeros(1, hidden_size, dtype=torch.float64)
    return hidden_grad_norms(step, X, h0=h0).numpy()


def plot_bptt_grad_norms(
    spectral_radius: float = 1.0,
    nonlinearity: str = "tanh",
    num_steps: int = 50,
    *,
    hidden_size: int = 32,
    input_scale: float = 0.1,
    seed: int = 0,
    ax=None,
):
    """Plot :func:`bptt_grad_norms` over ``t`` on a log scale; returns the ``Axes``.

    The dashed line is ``spectral_radius ** (T - t) * ||dL/dh_T||``, what a linear RNN
    with this ``W_hh`` gives exactly. Try a radius below 1 (vanishing), above 1
    with ``linear`` or ``relu`` (exploding), and above 1 with ``tanh`` (saturation
    shrinks ``tanh'`` and holds the growth back).
    """
    norms = bptt_grad_norms(
        spectral_radius,
        nonlinearity,
        num_steps,
        hidden_size=hidden_size,
        input_scale=input_scale,
        seed=seed,
    )
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.4))
    t = np.arange(1, num_steps + 1)
    shown = np.where(norms > 0, norms, np.nan)  # a log axis cannot show 0
    ax.plot(t, shown, marker=".", label=f"{nonlinearity} RNN")
    with np.errstate(over="ignore", divide="ignore"):
        linear = norms[-1] * float(spectral_radius) ** (num_steps - t.astype(float))
    ax.plot(
        t, np.where(linear > 0, linear, np.nan), "--", color="gray", label=r"$\rho^{T-t}$ (linear)"
    )
    ax.set_yscale("log")
    ratio = norms[0] / norms[-1]
    ax.set(
        xlabel="time step $t$",
        ylabel=r"$\|\partial L / \partial h_t\|$",
        title=rf"$\rho(W_{{hh}})$={spectral_radius:g}, {nonlinearity}, T={num_steps}: "
        rf"$\|\partial L/\partial h_1\| / \|\partial L/\partial h_T\|$ = {ratio:.1e}",
    )
    ax.legend(loc="best", fontsize=8)
    return ax
