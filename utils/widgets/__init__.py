"""Interactive explorations, one module per chapter.

Each exploration is a plain function first: it draws a figure and returns its
``Axes``, so CI (and a notebook read without a kernel) gets the figure. The
widget only wraps that function with sliders::

    plot_rnn_dynamics()                                    # the figure, with defaults
    interactive(plot_rnn_dynamics, w_hh=(-2.0, 2.0, 0.1))  # the same, with a slider

- :mod:`utils.widgets.ch01`: :func:`rnn_dynamics` / :func:`plot_rnn_dynamics`, a 1- or
  2-unit RNN driven by a pulse or a constant input;
- :mod:`utils.widgets.ch02`: :func:`bptt_grad_norms` / :func:`plot_bptt_grad_norms`,
  the gradient through time of an RNN whose ``W_hh`` has a chosen spectral radius.

The chapters' names are importable from ``utils.widgets`` too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import matplotlib.pyplot as plt


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


from utils.widgets.ch01 import RNN_INPUTS, plot_rnn_dynamics, rnn_dynamics  # noqa: E402
from utils.widgets.ch02 import (  # noqa: E402
    BPTT_NONLINEARITIES,
    bptt_grad_norms,
    plot_bptt_grad_norms,
)

__all__ = [
    "BPTT_NONLINEARITIES",
    "RNN_INPUTS",
    "bptt_grad_norms",
    "interactive",
    "plot_bptt_grad_norms",
    "plot_rnn_dynamics",
    "rnn_dynamics",
]
