"""Plots the chapters and labs share: heatmaps, training curves, gradient norms.

Each function draws on ``ax`` when given (so figures can be combined) or on a
new figure, and returns the ``Axes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from utils.checks import to_numpy


def _axes(ax, figsize=None):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def heatmap(
    matrix,
    *,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    ax=None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool = False,
    colorbar: bool = True,
):
    """Draw a 2-D array ``matrix: (rows, cols)`` as a heatmap (attention, hidden states, gates).

    ``x_labels`` / ``y_labels`` name the columns / rows (e.g. source and target tokens).
    """
    m = to_numpy(matrix)
    if m.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D array, got shape {m.shape}")
    ax = _axes(ax, figsize=(max(3.0, 0.45 * m.shape[1] + 1.5), max(2.5, 0.35 * m.shape[0] + 1.2)))
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.grid(False)
    if x_labels is not None:
        ax.set_xticks(
            range(len(x_labels)), labels=list(x_labels), rotation=90 if len(x_labels) > 8 else 0
        )
    if y_labels is not None:
        ax.set_yticks(range(len(y_labels)), labels=list(y_labels))
    if annotate:
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def plot_curves(
    history: Mapping[str, Sequence[float]],
    *,
    ax=None,
    title: str | None = None,
    xlabel: str = "epoch",
    ylabel: str | None = None,
    logy: bool = False,
):
    """Plot named curves, e.g. ``{"train loss": [...], "val loss": [...]}``, against their index."""
    ax = _axes(ax)
    for name, values in history.items():
        v = np.asarray(list(values), dtype=float)
        if v.size:
            ax.plot(
                np.arange(1, v.size + 1), v, marker="o" if v.size < 30 else None, ms=3, label=name
            )
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if len(history) > 1:
        ax.legend()
    return ax


def plot_grad_norms(
    norms: Mapping[str, Sequence[float]] | Sequence[float],
    *,
    ax=None,
    title: str = "Gradient norm with respect to $h_t$",
    xlabel: str = "time step $t$",
    logy: bool = True,
    start: int = 0,
):
    """Plot ``||dL/dh_t||`` over ``t`` (one curve, or several by name) on a log scale.

    ``norms[k]`` is drawn at ``t = start + k``: use ``start=1`` for norms of
    ``h_1 .. h_T`` (as ``utils.gradients.hidden_grad_norms`` returns them).
    """
    ax = _axes(ax)
    curves = norms if isinstance(norms, Mapping) else {"": norms}
    for name, values in curves.items():
        v = np.asarray(to_numpy(values), dtype=float)
        ax.plot(np.arange(start, start + v.size), v, marker=".", label=name or None)
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=r"$\|\partial L / \partial h_t\|$")
    if isinstance(norms, Mapping) and len(norms) > 1:
        ax.legend()
    return ax


def plot_hidden_states(
    H, *, tokens: Sequence[str] | None = None, ax=None, title: str | None = None
):
    """Show hidden states ``H: (T, hidden_size)`` over time, one column per time step."""
    h = to_numpy(H)
    return heatmap(
        h.T,
        x_labels=tokens,
        ax=ax,
        title=title or "Hidden state over time",
        xlabel="time step" if tokens is None else "input",
        ylabel="hidden unit",
        cmap="RdBu_r",
        vmin=-1,
        vmax=1,
    )
