"""utils.widgets: the plain functions behind the chapters' sliders (ch01, ch02)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from utils.checks.references import rnn_from_weights
from utils.widgets import (
    RNN_INPUTS,
    bptt_grad_norms,
    interactive,
    plot_bptt_grad_norms,
    plot_rnn_dynamics,
    rnn_dynamics,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --- utils/widgets/ch01.py: the plain function behind the slider -----------------------------


def _nn_rnn_reference(W_xh, W_hh, x):
    """nn.RNN (zero bias) with the given row-convention weights run on x: (T,); returns (T, H)."""
    W_xh, W_hh = np.asarray(W_xh, dtype=float), np.asarray(W_hh, dtype=float)
    rnn = rnn_from_weights(W_xh, W_hh, np.zeros(W_hh.shape[0]))
    with torch.no_grad():
        outputs, _ = rnn(torch.as_tensor(x, dtype=torch.float64).reshape(1, -1, 1))
    return outputs[0].numpy()


@pytest.mark.parametrize("inputs", RNN_INPUTS)
@pytest.mark.parametrize("w_hh,input_scale", [(0.9, 1.0), (1.5, 0.5), (-0.7, 2.0)])
def test_one_unit_dynamics_equal_nn_rnn(inputs, w_hh, input_scale):
    T = 12
    t = np.arange(T)
    x = {"pulse": t == 0, "constant": np.ones(T), "alternating": (-1.0) ** t}[inputs]
    H = rnn_dynamics(w_hh, input_scale, inputs=inputs, num_steps=T)
    assert H.shape == (T, 1)
    expected = _nn_rnn_reference([[input_scale]], [[w_hh]], x.astype(float))
    np.testing.assert_allclose(H, expected, rtol=1e-12, atol=1e-12)


def test_two_units_rotate_by_the_given_angle():
    """Near zero (tiny input) and with w_hh = 1 the state turns by `rotation` degrees per step."""
    H = rnn_dynamics(1.0, 1e-4, hidden_size=2, rotation=30.0, num_steps=6)
    assert H.shape == (6, 2)
    angles = np.degrees(np.arctan2(H[:, 1], H[:, 0]))
    np.testing.assert_allclose(np.diff(angles), 30.0, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(H, axis=1), 1e-4, rtol=1e-3)
    # and shrinks by w_hh per step when w_hh < 1
    H = rnn_dynamics(0.8, 1e-4, hidden_size=2, rotation=45.0, num_steps=5)
    norms = np.linalg.norm(H, axis=1)
    np.testing.assert_allclose(norms[1:] / norms[:-1], 0.8, rtol=1e-3)


def test_the_regimes_the_chapter_describes():
    decay = rnn_dynamics(0.5, num_steps=20)[:, 0]
    assert decay[0] == pytest.approx(math.tanh(1.0)) and abs(decay[-1]) < 1e-4
    assert np.all(np.diff(decay) < 0)
    held = rnn_dynamics(1.5, num_steps=60)[:, 0]
    h_star = held[-1]
    assert h_star > 0.8 and h_star == pytest.approx(math.tanh(1.5 * h_star), abs=1e-9)
    flips = rnn_dynamics(-0.9, num_steps=10)[:, 0]
    assert np.all(np.sign(flips[1:]) == -np.sign(flips[:-1]))
    saturated = rnn_dynamics(0.5, 3.0, inputs="constant", num_steps=10)[:, 0]
    assert saturated[-1] > 0.99


def test_plot_returns_axes_with_one_line_per_unit():
    ax = plot_rnn_dynamics()
    assert isinstance(ax, plt.Axes)
    data_lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 30]
    assert len(data_lines) == 1
    np.testing.assert_allclose(data_lines[0].get_ydata(), rnn_dynamics()[:, 0])
    assert "w_hh=0.9" in ax.get_title()

    _, given = plt.subplots()
    ax2 = plot_rnn_dynamics(0.95, hidden_size=2, rotation=30, num_steps=12, ax=given)
    assert ax2 is given
    assert len([ln for ln in ax2.get_lines() if len(ln.get_xdata()) == 12]) == 2


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"hidden_size": 3}, "hidden_size must be 1 or 2"),
        ({"inputs": "noise"}, "inputs must be one of"),
        ({"num_steps": 0}, "num_steps must be a positive integer"),
        ({"num_steps": 2.5}, "num_steps must be a positive integer"),
        ({"w_hh": float("nan")}, "w_hh must be a finite number"),
        ({"w_hh": "0.9"}, "w_hh must be a finite number"),
        ({"input_scale": float("inf")}, "input_scale must be a finite number"),
        ({"rotation": None}, "rotation must be a finite number"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rnn_dynamics(**kwargs)
    with pytest.raises(ValueError, match=match):
        plot_rnn_dynamics(**kwargs)


def test_interactive_wraps_the_plain_function_with_its_defaults():
    calls = []

    def plot(w_hh=0.9, input_scale=1.0, *, hidden_size=1):
        calls.append((w_hh, input_scale, hidden_size))
        return plot_rnn_dynamics(w_hh, input_scale, hidden_size=hidden_size)

    wrapped = interactive(plot, w_hh=(-2.0, 2.0, 0.1), hidden_size=[1, 2])
    sliders = {w.description: w for w in wrapped.widget.children if hasattr(w, "description")}
    assert sliders["w_hh"].value == pytest.approx(0.9)  # the function's default, not mid-range
    assert sliders["hidden_size"].value == 1
    assert calls[-1] == (0.9, 1.0, 1)  # drawn once at once
    sliders["w_hh"].value = -0.5
    assert calls[-1] == (-0.5, 1.0, 1)  # redrawn when the slider moves


def test_interactive_rejects_bad_arguments():
    with pytest.raises(ValueError, match="no argument named 'wHH'"):
        interactive(plot_rnn_dynamics, wHH=(0.0, 1.0))
    with pytest.raises(ValueError, match="at least one control"):
        interactive(plot_rnn_dynamics)
    with pytest.raises(TypeError, match="plotting function"):
        interactive("plot_rnn_dynamics", w_hh=(0.0, 1.0))


# --------------------------------------------------------------------------- widget
@pytest.mark.parametrize("rho", [0.8, 1.0, 1.3])
def test_bptt_grad_norms_linear_is_exactly_rho_power(rho):
    norms = bptt_grad_norms(rho, "linear", 25, hidden_size=16)
    expected = rho ** (25 - np.arange(1, 26)) * np.sqrt(16)  # dL/dh_T = ones, W_hh = rho * Q
    np.testing.assert_allclose(norms, expected, rtol=1e-9)


def test_bptt_grad_norms_regimes():
    T = 60
    ratio = {nl: bptt_grad_norms(1.2, nl, T) for nl in ("linear", "tanh", "relu")}
    ratio = {nl: n[0] / n[-1] for nl, n in ratio.items()}
    assert ratio["linear"] > 1e4  # 1.2^59
    assert ratio["tanh"] < ratio["linear"]  # tanh' <= 1 holds the growth back
    assert ratio["relu"] < ratio["linear"]
    small = bptt_grad_norms(0.5, "tanh", T)
    assert small[0] / small[-1] < 0.5**30  # sigma_max < 1 with tanh: vanishing guaranteed
    assert np.array_equal(bptt_grad_norms(1.1, "tanh", 20), bptt_grad_norms(1.1, "tanh", 20))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nonlinearity": "sigmoid"}, "nonlinearity"),
        ({"num_steps": 1}, "num_steps"),
        ({"num_steps": 10.0}, "num_steps"),
        ({"spectral_radius": -1.0}, "spectral_radius"),
        ({"spectral_radius": float("nan")}, "spectral_radius"),
        ({"hidden_size": 0}, "hidden_size"),
    ],
)
def test_bptt_grad_norms_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bptt_grad_norms(**kwargs)


def test_plot_bptt_grad_norms_with_defaults():
    ax = plot_bptt_grad_norms()
    assert ax.get_yscale() == "log"
    lines = ax.get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_ydata(), bptt_grad_norms())
    plt.close(ax.figure)


def test_widget_wraps_the_plot_function():
    widget = interactive(
        plot_bptt_grad_norms,
        spectral_radius=(0.0, 2.0, 0.05),
        nonlinearity=["tanh", "relu", "linear"],
        num_steps=(5, 200, 5),
    )
    values = {child.description: child.value for child in widget.widget.children[:-1]}
    assert values == {"spectral_radius": 1.0, "nonlinearity": "tanh", "num_steps": 50}
    plt.close("all")
