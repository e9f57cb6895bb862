"""Diagrams of the gated cells, drawn with matplotlib and labelled with the course's names.

    draw_lstm_cell()   # I_t, F_t, O_t, C_tilde; c_{t-1} -> c_t along the top, h_{t-1} -> h_t
    draw_gru_cell()    # R_t, Z_t, h_tilde; h_{t-1} -> h_t along the top (PyTorch's orientation)

Each function draws on ``ax`` when given, or on a new figure, and returns the ``Axes``.
Boxes are layers (``sigma`` or ``tanh`` of a linear function of what flows into them),
circles are elementwise operations, arrows show which way the values flow.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, Ellipse, FancyBboxPatch

LINE = {"color": "0.15", "lw": 1.4}
BOX_FACE, OP_FACE, CELL_FACE = "#fde7b0", "#cfe3f5", "#f4f4f4"
R_OP = 0.3  # radius of an operation circle


def _new_axes(ax, figsize=(8.5, 5.2)):
    """``ax``, or a new one, set up as a blank canvas of about 15 x 9 units."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(-1.0, 13.8)
    ax.set_ylim(-1.6, 7.0)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def _path(ax, *points, arrow=True):
    """A polyline through ``points``; its last segment ends in an arrow head."""
    xs, ys = zip(*points)
    ax.plot(xs[:-1], ys[:-1], **LINE, solid_capstyle="butt")
    props = {"arrowstyle": "-|>" if arrow else "-", "shrinkA": 0, "shrinkB": 0,
             "mutation_scale": 12, **LINE}  # fmt: skip
    ax.annotate("", xy=points[-1], xytext=points[-2], arrowprops=props)


def _box(ax, x, y, text, half_w=0.45, half_h=0.35):
    """A layer: a rounded box centred at ``(x, y)``."""
    ax.add_patch(
        FancyBboxPatch((x - half_w, y - half_h), 2 * half_w, 2 * half_h,
                       boxstyle="round,pad=0.02,rounding_size=0.12", fc=BOX_FACE, ec="0.15",
                       lw=1.2, zorder=3)
    )  # fmt: skip
    ax.text(x, y, text, ha="center", va="center", fontsize=11, zorder=4)


def _op(ax, x, y, symbol):
    """An elementwise operation (``"×"`` or ``"+"``) in a circle centred at ``(x, y)``."""
    ax.add_patch(Circle((x, y), R_OP, fc=OP_FACE, ec="0.15", lw=1.2, zorder=3))
    ax.text(x, y, symbol, ha="center", va="center", fontsize=13, zorder=4)


def _label(ax, x, y, text, **kw):
    """A name (mathtext) at ``(x, y)``, centred unless ``ha``/``va`` say otherwise."""
    ax.text(x, y, text, fontsize=12, zorder=5, **{"ha": "center", "va": "center", **kw})


def _cell_frame(ax, title):
    """The light rounded frame of one cell, with its name in the lower right corner."""
    ax.add_patch(
        FancyBboxPatch((1.6, 0.2), 10.2, 6.4, boxstyle="round,pad=0.05,rounding_size=0.4",
                       fc=CELL_FACE, ec="0.55", lw=1.0, zorder=0)
    )  # fmt: skip
    ax.text(11.65, 0.4, title, ha="right", va="bottom", fontsize=10, color="0.4")


def draw_lstm_cell(ax=None):
    """Draw one LSTM step with the chapter's names; return the ``Axes``.

    The cell state runs along the top, ``c_{t-1} -> (× F_t) -> (+ I_t ⊙ C_tilde) -> c_t``,
    with no matrix on its way. ``[h_{t-1}, x_t]`` feeds the three gates and the candidate;
    ``h_t = O_t ⊙ tanh(c_t)`` leaves on the right.
    """
    ax = _new_axes(ax)
    _cell_frame(ax, "LSTM cell")
    top, gate_y, bus = 5.8, 2.3, 0.9
    # cell state path: c_{t-1} -> forget -> add -> c_t
    _label(ax, 0.75, top, "$c_{t-1}$", ha="right")
    _path(ax, (0.85, top), (3 - R_OP, top))
    _op(ax, 3, top, "×")
    _path(ax, (3 + R_OP, top), (5.7 - R_OP, top))
    _op(ax, 5.7, top, "+")
    _path(ax, (5.7 + R_OP, top), (12.6, top))
    _label(ax, 12.7, top, "$c_t$", ha="left")
    # inputs: h_{t-1} from the left, x_t from below, one bus to the four layers
    _label(ax, 0.75, bus, "$h_{t-1}$", ha="right")
    _path(ax, (0.85, bus), (2.05, bus))
    _label(ax, 2.1, -0.95, "$x_t$")
    _path(ax, (2.1, -0.7), (2.1, bus - 0.05))
    _path(ax, (2.1, bus), (8.5, bus), arrow=False)
    for x, text, half_w in (
        (3, "σ", 0.45),
        (4.6, "σ", 0.45),
        (6.8, "tanh", 0.55),
        (8.5, "σ", 0.45),
    ):
        _path(ax, (x, bus), (x, gate_y - 0.35))
        _box(ax, x, gate_y, text, half_w=half_w)
    # forget gate up to the cell state
    _path(ax, (3, gate_y + 0.35), (3, top - R_OP))
    _label(ax, 2.85, 4.1, "$F_t$", ha="right")
    # input gate times candidate, added to the cell state
    _path(ax, (4.6, gate_y + 0.35), (4.6, 3.9), (5.7 - R_OP, 3.9))
    _path(ax, (6.8, gate_y + 0.35), (6.8, 3.9), (5.7 + R_OP, 3.9))
    _op(ax, 5.7, 3.9, "×")
    _path(ax, (5.7, 3.9 + R_OP), (5.7, top - R_OP))
    _label(ax, 4.45, 3.2, "$I_t$", ha="right")
    _label(ax, 6.95, 3.2, r"$\tilde{C}_t$", ha="left")
    # output: O_t times tanh(c_t) gives h_t
    ax.add_patch(Ellipse((10, 4.6), 1.1, 0.55, fc=BOX_FACE, ec="0.15", lw=1.2, zorder=3))
    ax.text(10, 4.6, "tanh", ha="center", va="center", fontsize=10, zorder=4)
    _path(ax, (10, top), (10, 4.6 + 0.275))
    _path(ax, (10, 4.6 - 0.275), (10, 3.2 + R_OP))
    _path(ax, (8.5, gate_y + 0.35), (8.5, 3.2), (10 - R_OP, 3.2))
    _op(ax, 10, 3.2, "×")
    _label(ax, 9.05, 3.45, "$O_t$", va="bottom")
    _path(ax, (10 + R_OP, 3.2), (12.6, 3.2))
    _label(ax, 12.7, 3.2, "$h_t$", ha="left")
    ax.text(6.4, -1.45, r"$c_t = F_t \odot c_{t-1} + I_t \odot \tilde{C}_t$,   "
            r"$h_t = O_t \odot \tanh(c_t)$", ha="center", fontsize=11)  # fmt: skip
    return ax


def draw_gru_cell(ax=None):
    """Draw one GRU step in PyTorch's convention, with the chapter's names; return the ``Axes``.

    The state runs along the top, ``h_{t-1} -> (× Z_t) -> (+ (1 - Z_t) ⊙ h_tilde) -> h_t``:
    ``Z_t`` is the fraction of ``h_{t-1}`` that is kept. The reset gate ``R_t`` multiplies
    ``h_{t-1} W_hh + b_hh`` (after the matrix product), which joins ``x_t`` in the candidate.
    """
    ax = _new_axes(ax)
    _cell_frame(ax, "GRU cell (PyTorch's form)")
    top, gate_y, bus = 5.8, 2.3, 0.9
    # state path: h_{t-1} -> keep Z_t -> add -> h_t
    _label(ax, 0.75, top, "$h_{t-1}$", ha="right")
    _path(ax, (0.85, top), (3 - R_OP, top))
    _op(ax, 3, top, "×")
    _path(ax, (3 + R_OP, top), (10 - R_OP, top))
    _op(ax, 10, top, "+")
    _path(ax, (10 + R_OP, top), (12.6, top))
    _label(ax, 12.7, top, "$h_t$", ha="left")
    # h_{t-1} also goes down to the bus, where x_t joins it
    ax.plot([1.3], [top], "o", color="0.15", ms=4)
    _path(ax, (1.3, top), (1.3, bus), (2.0, bus), arrow=False)
    _label(ax, 2.1, -0.95, "$x_t$")
    _path(ax, (2.1, -0.7), (2.1, bus - 0.05))
    _path(ax, (2.0, bus), (8.8, bus), arrow=False)
    for x, text, half_w in ((3, "σ", 0.45), (4.5, "σ", 0.45), (6.6, "$W_{hh}$", 0.5)):
        _path(ax, (x, bus), (x, gate_y - 0.35))
        _box(ax, x, gate_y, text, half_w=half_w)
    # update gate: keeps Z_t of the old state, lets 1 - Z_t of the candidate in
    _path(ax, (3, gate_y + 0.35), (3, top - R_OP))
    _label(ax, 2.85, 3.3, "$Z_t$", ha="right")
    ax.plot([3], [4.7], "o", color="0.15", ms=4)
    _path(ax, (3, 4.7), (6.6 - 0.45, 4.7))
    _box(ax, 6.6, 4.7, "1 −", half_w=0.45)
    _path(ax, (6.6 + 0.45, 4.7), (10 - R_OP, 4.7))
    _label(ax, 8.4, 4.85, "$1 - Z_t$", va="bottom")
    _op(ax, 10, 4.7, "×")
    _path(ax, (10, 4.7 + R_OP), (10, top - R_OP))
    # reset gate scales h_{t-1} W_hh + b_hh; with x_t it makes the candidate
    _path(ax, (4.5, gate_y + 0.35), (4.5, 3.6), (6.6 - R_OP, 3.6))
    _label(ax, 4.65, 3.05, "$R_t$", ha="left")
    _path(ax, (6.6, gate_y + 0.35), (6.6, 3.6 - R_OP))
    _op(ax, 6.6, 3.6, "×")
    _path(ax, (6.6 + R_OP, 3.6), (8.8 - 0.55, 3.6))
    _path(ax, (8.8, bus), (8.8, 3.6 - 0.35))
    _box(ax, 8.8, 3.6, "tanh", half_w=0.55)
    _path(ax, (8.8 + 0.55, 3.6), (10, 3.6), (10, 4.7 - R_OP))
    _label(ax, 10.15, 3.95, r"$\tilde{h}_t$", ha="left")
    ax.text(6.4, -1.45, r"$h_t = (1 - Z_t) \odot \tilde{h}_t + Z_t \odot h_{t-1}$",
            ha="center", fontsize=11)  # fmt: skip
    return ax
