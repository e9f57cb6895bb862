"""utils.diagrams: each cell diagram returns its Axes, carries the chapter's names, and
draws on a given Axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes

from utils.diagrams import draw_gru_cell, draw_lstm_cell

LSTM_LABELS = ["$I_t$", "$F_t$", "$O_t$", r"$\tilde{C}_t$", "$c_{t-1}$", "$c_t$", "$h_{t-1}$",
               "$h_t$", "$x_t$"]  # fmt: skip
GRU_LABELS = ["$R_t$", "$Z_t$", "$1 - Z_t$", r"$\tilde{h}_t$", "$h_{t-1}$", "$h_t$", "$x_t$"]
CASES = [(draw_lstm_cell, LSTM_LABELS), (draw_gru_cell, GRU_LABELS)]


def _texts(ax):
    return [t.get_text() for t in ax.texts]


@pytest.mark.parametrize(("draw", "labels"), CASES)
def test_returns_axes_with_every_label(draw, labels):
    ax = draw()
    try:
        assert isinstance(ax, Axes)
        texts = _texts(ax)
        missing = [label for label in labels if label not in texts]
        assert not missing, f"{draw.__name__} lacks {missing}; has {texts}"
        assert len(ax.patches) >= 8  # boxes and operation circles were drawn
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(("draw", "labels"), CASES)
def test_draws_on_a_given_axes(draw, labels):
    fig, (left, right) = plt.subplots(1, 2)
    try:
        assert draw(ax=right) is right
        assert set(labels) <= set(_texts(right))
        assert not left.texts and not left.patches  # the other Axes is untouched
        assert len(fig.axes) == 2  # no new figure or Axes
    finally:
        plt.close(fig)


def test_gru_diagram_writes_pytorchs_update_rule():
    """The caption states PyTorch's orientation: Z_t keeps the old state."""
    ax = draw_gru_cell()
    try:
        rule = [t for t in _texts(ax) if t.startswith("$h_t =")]
        assert rule == [r"$h_t = (1 - Z_t) \odot \tilde{h}_t + Z_t \odot h_{t-1}$"]
    finally:
        plt.close(ax.figure)
