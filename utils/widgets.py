"""Interactive explorations for the chapters.

Each exploration is a plain function first: it draws a figure and returns its
``Axes``, so CI (and a notebook read without a kernel) gets the figure. The
widget only wraps that function with sliders::

    plot_rnn_dynamics()                                    # the figure, with defaults
    interactive(plot_rnn_dynamics, w_hh=(-2.0, 2.0, 0.1))  # the same, with a slider

Chapter 1: :func:`rnn_dynamics` / :func:`plot_rnn_dynamics` (a 1- or 2-unit RNN
driven by a pulse or a constant input) and the generic :func:`interactive`.
Chapter 2: :func:`bptt_grad_norms` / :func:`plot_bptt_grad_norms` (the gradient
through time of an RNN whose ``W_hh`` has a chosen spectral radius).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np

# --- Chapter 1: a tiny RNN with sliders -------------------------------------------------

RNN_INPUTS = ("pulse", "constant", "alternating")
"""The input signals :func:`rnn_dynamics` can drive the RNN with."""


def interactive(plot_fn: Callable, /, **controls):
    """Wrap a plain plotting function in an ``ipywidgets.interact`` widget.

    ``controls`` are what ``interact`` accepts: ``(min, max, step)`` tuples become
    sliders, lists become drop-downs, ``ipywidgets.fixed(v)`` pins a value.
    The function is called with the control values, then the figure is shown.
    Returns the wrapped function; its ``.widget`` attribute is the widget box.
    """
    if not callable(plot_fn):
        raise TypeError(f"interactive needs a plotting function, got {type(plot_fn).__name__}")
    if not controls:
        raise ValueError("interactive needs at least one control, e.g. w_hh=(-2.0, 2.0, 0.1)")
    params = inspect.signature(plot_fn).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = [name for name in controls if name not in params and not takes_any]
    if unknown:
        raise ValueError(
            f"{plot_fn.__name__} has no argument named {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(params)}"
        )
    import ipywidgets

    def draw(**values):
        plot_fn(**values)
        plt.show()

    # Sliders start at the plotting function's own defaults, not mid-range.
    empty = inspect.Parameter.empty
    draw.__signature__ = inspect.Signature(
        [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=params[name].default if name in params else empty,
            )
            for name in controls
        ]
    )
    draw.__name__ = getattr(plot_fn, "__name__", "draw")
    draw.__doc__ = plot_fn.__doc__
    return ipywidgets.interact(draw, **controls)


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


# --- Chapter 2: spectral radius and the gradient through time --------------------------

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
