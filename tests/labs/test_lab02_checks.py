"""The visible checks of Lab 2 accept the solution and reject broken code with the right hint.

The correct functions come from the solution notebook's exercise cells; each broken
variant is a small text mutation of that code, or a wrapper that breaks what a
function returns (tests/labs/harness.py runs them all).
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import nbformat
import pytest

from tests.factories import ROOT
from tests.labs.harness import (
    assert_accepts,
    garbage,
    load_solution,
    parametrize,
    run_mutation,
    solution_sources,
    text,
)
from utils.checks import CheckError
from utils.checks import lab02 as lc
from utils.instructor.notebook import (
    HIDDEN,
    MARKERS,
    SOLUTION,
    fenced_lines,
    grade_id,
    is_exercise,
    is_test,
    nbgrader_meta,
)

SOLUTION_PATH = ROOT / "solutions" / "lab02_lstm_gru_from_scratch.ipynb"
LAB = ROOT / "labs" / "lab02_lstm_gru_from_scratch.ipynb"

CHECKS = {
    "lstm_step_forward": lc.check_lstm_step_forward,
    "lstm_step_backward": lc.check_lstm_step_backward,
    "lstm_forward": lc.check_lstm_forward,
    "lstm_backward": lc.check_lstm_backward,
    "lstm_grad_norms": lc.check_lstm_grad_norms,
    "gru_step_forward": lc.check_gru_step_forward,
    "gru_step_backward": lc.check_gru_step_backward,
}


def _given_helpers(path) -> str:
    """The lab's given sigmoid (a plain cell, not an exercise), for the preamble."""
    cells = nbformat.read(path, as_version=4).cells
    source = next(c.source for c in cells if c.source.startswith("def sigmoid("))
    return source.split("\n\n\nprint")[0]


PREAMBLE = "import numpy as np\n\n" + _given_helpers(SOLUTION_PATH)
SOL = load_solution(SOLUTION_PATH, preamble=PREAMBLE)


def test_solution_defines_every_exercise():
    assert set(CHECKS) <= set(SOL)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution(name):
    assert_accepts(CHECKS[name], SOL[name], name)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution_on_other_sizes(name):
    sizes = {
        "lstm_step_forward": dict(N=2, D=3, H=6, seed=7),
        "lstm_step_backward": dict(N=4, D=2, H=3, seed=7),
        "lstm_forward": dict(N=1, T=31, D=5, H=2, seed=7),
        "lstm_backward": dict(N=3, T=33, D=2, H=5, seed=7),
        "lstm_grad_norms": dict(N=1, T=30, D=2, H=3, seed=7),
        "gru_step_forward": dict(N=2, D=3, H=6, seed=7),
        "gru_step_backward": dict(N=4, D=2, H=3, seed=7),
    }[name]
    assert_accepts(CHECKS[name], SOL[name], name, **sizes)


def test_solution_code_uses_numpy_only():
    for source in solution_sources(SOLUTION_PATH):
        assert "torch" not in source, source


def test_the_check_modules_hold_no_exercise():
    """No function of the check package has an exercise's name (the references are
    torch functions with other signatures)."""
    for info in pkgutil.iter_modules(lc.__path__):
        module = importlib.import_module(f"{lc.__name__}.{info.name}")
        for name, value in vars(module).items():
            if callable(value) and getattr(value, "__module__", None) == module.__name__:
                assert name not in CHECKS and name != "sigmoid", name
        assert (
            len((ROOT / "utils" / "checks" / "lab02" / f"{info.name}.py").read_text().splitlines())
            < 250
        )


C_T = "c_t = f_t * c_prev + i_t * g_t"
H_T = "h_t = o_t * np.tanh(c_t)"
DC = "dc = dc_t + dh_t * o_t * (1.0 - tanh_c**2)"
LOOP = "dstates[:, t] + dh_next, dc_next, caches[t]"
ACC = "        dW_x += dW_x_t\n        dW_h += dW_h_t\n        db += db_t\n"
NORM_C = "dc_norms[t] = np.linalg.norm(dc_next + dh * o_t * (1.0 - np.tanh(c_t) ** 2))"
H_GRU = "h_t = (1.0 - z_t) * n_t + z_t * h_prev"
N_GRU = "n_t = np.tanh(ax[:, 2 * H :] + r_t * hn_t)"
ORDER = "gate order"
FWD_LOOP = (
    "    h_t, c_t = h0, c0\n    steps, caches = [], []\n    for t in range(T):\n"
    "        h_t, c_t, cache = lstm_step_forward(X[:, t], h_t, c_t, W_x, W_h, b)\n"
    "        steps.append(h_t)\n"
)
BUFFER = (  # the states updated in place: every cache holds the same two arrays
    "    h_t, c_t = h0.copy(), c0.copy()\n    steps, caches = [], []\n    for t in range(T):\n"
    "        h_new, c_new, cache = lstm_step_forward(X[:, t], h_t, c_t, W_x, W_h, b)\n"
    "        h_t[...], c_t[...] = h_new, c_new\n        steps.append(h_t.copy())\n"
)

MUTATIONS = [
    # -- LSTM step forward
    text("lstm fwd: forget gate on the candidate", C_T, "c_t = i_t * c_prev + f_t * g_t",
         "lstm_step_forward", "forget gate multiplies the candidate"),
    text("lstm fwd: no forget gate", C_T, "c_t = c_prev + i_t * g_t", "lstm_step_forward",
         "not multiplied by the forget gate"),
    text("lstm fwd: h_t without tanh", H_T, "h_t = o_t * c_t", "lstm_step_forward",
         "the output is o_t * tanh(c_t)"),
    text("lstm fwd: candidate with sigmoid", "g_t = np.tanh(a[:, 2 * H : 3 * H])",
         "g_t = sigmoid(a[:, 2 * H : 3 * H])", "lstm_step_forward", "uses a sigmoid"),
    text("lstm fwd: gate order i, f, o, g", "o_t = sigmoid(a[:, 3 * H :])",
         "o_t = sigmoid(a[:, 2 * H : 3 * H])\n    g_t = np.tanh(a[:, 3 * H :])",
         "lstm_step_forward", "wrong order: PyTorch's order is i, f, g, o"),
    text("lstm fwd: gate order g, i, f, o", "i_t = sigmoid(a[:, :H])\n    f_t = sigmoid(a[:, H : 2 * H])\n    g_t = np.tanh(a[:, 2 * H : 3 * H])",
         "g_t = np.tanh(a[:, :H])\n    i_t = sigmoid(a[:, H : 2 * H])\n    f_t = sigmoid(a[:, 2 * H : 3 * H])",
         "lstm_step_forward", "wrong order"),
    text("lstm fwd: h_prev missing", "a = x_t @ W_x + h_prev @ W_h + b", "a = x_t @ W_x + b",
         "lstm_step_forward", "h_prev is missing"),
    text("lstm fwd: W_h transposed", "h_prev @ W_h + b\n", "h_prev @ W_h.T + b\n", "lstm_step_forward",
         "raised ValueError"),
    text("lstm fwd: pre-activation in the cache", "    cache = (x_t, h_prev, c_prev, i_t, f_t, g_t, o_t, c_t, W_x, W_h)\n",
         "    cache = (x_t, h_prev, c_prev, a[:, :H], f_t, g_t, o_t, c_t, W_x, W_h)\n",
         "lstm_step_forward", "Keep the line `cache ="),
    # -- LSTM step backward
    text("lstm bwd: tanh'(c_t) forgotten", DC, "dc = dc_t + dh_t * o_t", "lstm_step_backward",
         "tanh'(c_t) is forgotten"),
    text("lstm bwd: missing the h_t path into c_t (and dh_prev)", DC, "dc = dc_t",
         "lstm_step_backward", "does not reach c_t"),
    text("lstm bwd: dc_t not used", DC, "dc = dh_t * o_t * (1.0 - tanh_c**2)", "lstm_step_backward",
         "The dc_t given is not used"),
    text("lstm bwd: missing sigmoid derivatives", "da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)",
         "da = np.concatenate([dc * g_t, dc * c_prev, da_g, dh_t * tanh_c], axis=1)",
         "lstm_step_backward", "sigmoid derivative is missing"),
    text("lstm bwd: missing candidate tanh derivative", "da_g = dc * i_t * (1.0 - g_t**2)",
         "da_g = dc * i_t", "lstm_step_backward", "derivative of the candidate's tanh"),
    text("lstm bwd: dc_prev without the forget gate", "dc_prev = dc * f_t", "dc_prev = dc",
         "lstm_step_backward", "dc_prev is missing the forget gate"),
    text("lstm bwd: gate gradients stacked in the wrong order", "[da_i, da_f, da_g, da_o]",
         "[da_f, da_i, da_g, da_o]", "lstm_step_backward", "in the order i, f, g, o"),
    text("lstm bwd: db not summed", "db = da.sum(axis=0)", "db = da", "lstm_step_backward",
         "db must be (4H,)"),
    text("lstm bwd: dW_h transposed", "dW_h = h_prev.T @ da\n", "dW_h = da.T @ h_prev\n",
         "lstm_step_backward", "dW_h must be (H, 4H)"),
    # -- LSTM forward over time
    text("lstm seq fwd: c0 ignored", "h_t, c_t = h0, c0", "h_t, c_t = h0, 0 * c0", "lstm_forward",
         "c0 is not used"),
    text("lstm seq fwd: h0 ignored", "h_t, c_t = h0, c0", "h_t, c_t = 0 * h0, c0", "lstm_forward",
         "h0 is not used"),
    text("lstm seq fwd: every step from h0, c0", "lstm_step_forward(X[:, t], h_t, c_t,",
         "lstm_step_forward(X[:, t], h0, c0,", "lstm_forward", "Every step starts from h0 and c0"),
    text("lstm seq fwd: c not carried", "lstm_step_forward(X[:, t], h_t, c_t,",
         "lstm_step_forward(X[:, t], h_t, c0,", "lstm_forward", "c_t is not carried"),
    text("lstm seq fwd: off by one (stores h_{t-1})",
         "        h_t, c_t, cache = lstm_step_forward(X[:, t], h_t, c_t, W_x, W_h, b)\n        steps.append(h_t)\n",
         "        steps.append(h_t)\n        h_t, c_t, cache = lstm_step_forward(X[:, t], h_t, c_t, W_x, W_h, b)\n",
         "lstm_forward", "Off by one in time"),
    text("lstm seq fwd: time reversed", "    for t in range(T):\n        h_t, c_t, cache",
         "    for t in reversed(range(T)):\n        h_t, c_t, cache", "lstm_forward",
         "read backward"),
    text("lstm seq fwd: time-major", "states = np.stack(steps, axis=1)",
         "states = np.stack(steps, axis=0)", "lstm_forward", "has shape"),
    text("lstm seq fwd: forget gate on the candidate (in the step)", C_T,
         "c_t = i_t * c_prev + f_t * g_t", "lstm_forward", "differs from the reference"),
    # -- LSTM backward over time
    text("lstm bptt: not accumulated", ACC, "        dW_x = dW_x_t\n        dW_h = dW_h_t\n        db = db_t\n",
         "lstm_backward", "Only the gradient of step t = 1 is counted"),
    text("lstm bptt: first step skipped", "for t in reversed(range(T)):\n        dx_t",
         "for t in reversed(range(1, T)):\n        dx_t", "lstm_backward", "Off by one in time"),
    text("lstm bptt: last step skipped", "for t in reversed(range(T)):\n        dx_t",
         "for t in reversed(range(T - 1)):\n        dx_t", "lstm_backward", "Off by one in time"),
    text("lstm bptt: dstates shifted", LOOP, "dstates[:, t - 1] + dh_next, dc_next, caches[t]",
         "lstm_backward", "caches[t] must go with dstates[:, t]"),
    text("lstm bptt: dh_prev not carried", LOOP, "dstates[:, t], dc_next, caches[t]",
         "lstm_backward", "dh_prev is not carried back"),
    text("lstm bptt: dc_prev not carried", LOOP, "dstates[:, t] + dh_next, 0 * dc_next, caches[t]",
         "lstm_backward", "dc_prev is not carried back"),
    text("lstm bptt: tanh'(c_t) forgotten (in the step)", DC, "dc = dc_t + dh_t * o_t",
         "lstm_backward", "tanh'(c_t) is forgotten"),
    text("lstm bptt: dc0 set to zero", "dh0, dc0 = dh_next, dc_next", "dh0, dc0 = dh_next, 0 * dc_next",
         "lstm_backward", "all zeros"),
    text("lstm bptt: dX reversed in time", "dX[:, t] = dx_t", "dX[:, T - 1 - t] = dx_t",
         "lstm_backward", "time order is reversed"),
    # -- gradient norms
    text("norms: dL/dh_t from dstates only", "dh_norms[t] = np.linalg.norm(dh)",
         "dh_norms[t] = np.linalg.norm(dstates[:, t])", "lstm_grad_norms", "norm of dstates only"),
    text("norms: dL/dc_t without the path through h_t", NORM_C,
         "dc_norms[t] = np.linalg.norm(dc_next)", "lstm_grad_norms", "misses the path through h_t"),
    text("norms: squared norm", "dh_norms[t] = np.linalg.norm(dh)",
         "dh_norms[t] = np.linalg.norm(dh) ** 2", "lstm_grad_norms", "squared norm"),
    text("norms: reversed", "dh_norms[t] = np.linalg.norm(dh)",
         "dh_norms[T - 1 - t] = np.linalg.norm(dh)", "lstm_grad_norms", "reversed"),
    text("norms: dh_prev not carried", "_, dh_next, dc_next, _, _, _ = lstm_step_backward(",
         "_, _, dc_next, _, _, _ = lstm_step_backward(", "lstm_grad_norms", "norm of dstates only"),
    text("norms: off by one (recorded after the step)",
         "        dh_norms[t] = np.linalg.norm(dh)\n", "", "lstm_grad_norms", "differs"),
    # -- GRU forward
    text("gru fwd: reset before the matmul", "hn_t = ah[:, 2 * H :]\n    n_t = np.tanh(ax[:, 2 * H :] + r_t * hn_t)",
         "hn_t = ah[:, 2 * H :]\n    n_t = np.tanh(ax[:, 2 * H :] + (r_t * h_prev) @ W_h[:, 2 * H :] + b_h[2 * H :])",
         "gru_step_forward", "applied before the matmul"),
    text("gru fwd: z flipped", H_GRU, "h_t = z_t * n_t + (1.0 - z_t) * h_prev", "gru_step_forward",
         "z_t and 1 - z_t are swapped"),
    text("gru fwd: b_hn outside the reset", N_GRU,
         "n_t = np.tanh(ax[:, 2 * H :] + r_t * (hn_t - b_h[2 * H :]) + b_h[2 * H :])",
         "gru_step_forward", "b_hn is outside the reset"),
    text("gru fwd: gate order z, r, n", "r_t = sigmoid(ax[:, :H] + ah[:, :H])\n    z_t = sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])",
         "z_t = sigmoid(ax[:, :H] + ah[:, :H])\n    r_t = sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])",
         "gru_step_forward", "PyTorch's order is r, z, n"),
    text("gru fwd: h_prev @ W_h missing", "ah = h_prev @ W_h + b_h", "ah = 0 * h_prev @ W_h + b_h",
         "gru_step_forward", "h_prev @ W_h is missing"),
    text("gru fwd: wrong hn_t in the cache", "    cache = (x_t, h_prev, r_t, z_t, n_t, hn_t, W_x, W_h)\n",
         "    cache = (x_t, h_prev, r_t, z_t, n_t, r_t * hn_t, W_x, W_h)\n", "gru_step_forward",
         "hn_t is h_prev @ W_hn + b_hn"),
    # -- GRU backward
    text("gru bwd: missing sigmoid derivative of z", "da_z = dh_t * (h_prev - n_t) * z_t * (1.0 - z_t)",
         "da_z = dh_t * (h_prev - n_t)", "gru_step_backward", "differs"),
    text("gru bwd: missing sigmoid derivatives", "da_z = dh_t * (h_prev - n_t) * z_t * (1.0 - z_t)\n    da_r = da_n * hn_t * r_t * (1.0 - r_t)",
         "da_z = dh_t * (h_prev - n_t)\n    da_r = da_n * hn_t", "gru_step_backward",
         "sigmoid derivative is missing"),
    text("gru bwd: missing tanh derivative", "da_n = dh_t * (1.0 - z_t) * (1.0 - n_t**2)",
         "da_n = dh_t * (1.0 - z_t)", "gru_step_backward", "tanh derivative of n_t is missing"),
    text("gru bwd: z flipped", "da_n = dh_t * (1.0 - z_t) * (1.0 - n_t**2)\n    da_z = dh_t * (h_prev - n_t)",
         "da_n = dh_t * z_t * (1.0 - n_t**2)\n    da_z = dh_t * (n_t - h_prev)", "gru_step_backward",
         "differs"),
    text("gru bwd: direct path missing", "dh_prev = dah @ W_h.T + dh_t * z_t", "dh_prev = dah @ W_h.T",
         "gru_step_backward", "The direct path is missing"),
    text("gru bwd: reset before the matmul", "dah = np.concatenate([da_r, da_z, da_n * r_t], axis=1)",
         "dah = np.concatenate([da_r, da_z, da_n], axis=1)", "gru_step_backward",
         ("db_h of the n block", "reset gate is treated as applied before")),
    text("gru bwd: db_h not summed", "db_x, db_h = dax.sum(axis=0), dah.sum(axis=0)",
         "db_x, db_h = dax.sum(axis=0), dah", "gru_step_backward", "db_h must be (3H,)"),
    text("gru bwd: dW_x from dah", "dW_x = x_t.T @ dax", "dW_x = x_t.T @ dah", "gru_step_backward",
         "differs"),
    # -- found by a second review: accepted or misdiagnosed by the earlier checks
    text("lstm fwd: no input gate", C_T, "c_t = f_t * c_prev + g_t", "lstm_step_forward",
         "not multiplied by the input gate"),
    text("lstm fwd: h_t and c_t returned swapped", "return h_t, c_t, cache",
         "return c_t, h_t, cache", "lstm_step_forward", "return h_t, c_t, cache in this order"),
    text("lstm bwd: tanh' at c_prev", DC, "dc = dc_t + dh_t * o_t * (1.0 - np.tanh(c_prev) ** 2)",
         "lstm_step_backward", "tanh' is taken at c_prev"),
    text("lstm bwd: sigmoid derivative taken as s", "da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)",
         "da = np.concatenate([dc * g_t * i_t, dc * c_prev * f_t, da_g, dh_t * tanh_c * o_t], axis=1)",
         "lstm_step_backward", "derivative is taken as s"),
    text("lstm seq fwd: last step dropped when T is odd", "    for t in range(T):\n        h_t, c_t, cache",
         "    for t in range(T - T % 2 if T > 1 else T):\n        h_t, c_t, cache", "lstm_forward",
         "T = 3"),
    text("lstm seq fwd: one state buffer in every cache", FWD_LOOP, BUFFER, "lstm_forward",
         "same array in memory"),
    text("lstm seq fwd: h not carried", "lstm_step_forward(X[:, t], h_t, c_t,",
         "lstm_step_forward(X[:, t], h0, c_t,", "lstm_forward", "h_t is not carried"),
    text("lstm seq fwd: reads the input of the step before", "lstm_step_forward(X[:, t], h_t, c_t,",
         "lstm_step_forward(X[:, t - 1], h_t, c_t,", "lstm_forward", "Off by one in time in the inputs"),
    text("lstm seq fwd: states are the cell states", "        steps.append(h_t)\n",
         "        steps.append(c_t)\n", "lstm_forward", "holds the cell states"),
    text("lstm bptt: dh0 and dc0 swapped", "dh0, dc0 = dh_next, dc_next", "dh0, dc0 = dc_next, dh_next",
         "lstm_backward", "dh0 and dc0 are swapped"),
    text("lstm bptt: dh0, dc0 from the first iteration", "dh0, dc0 = dh_next, dc_next\n",
         "dh0, dc0 = dh_next, dc_next\n    if T > 1:\n        dh0, dc0 = lstm_step_backward(dstates[:, -1], "
         "np.zeros((N, H)), caches[-1])[1:3]\n", "lstm_backward", "comes out of step t = T"),
    text("norms: dL/dc_t without dc_prev of step t + 1", NORM_C,
         "dc_norms[t] = np.linalg.norm(dh * o_t * (1.0 - np.tanh(c_t) ** 2))", "lstm_grad_norms",
         "misses dc_prev of step t + 1"),
    text("norms: dL/dc_t without tanh'", NORM_C, "dc_norms[t] = np.linalg.norm(dc_next + dh * o_t)",
         "lstm_grad_norms", "tanh'(c_t) is forgotten"),
    text("norms: dc norm taken after the step", NORM_C + "\n        _, dh_next, dc_next, _, _, _ = lstm_step_backward(dh, dc_next, caches[t])\n",
         "_, dh_next, dc_next, _, _, _ = lstm_step_backward(dh, dc_next, caches[t])\n"
         "        dc_norms[t] = np.linalg.norm(dc_next)\n", "lstm_grad_norms", "passes back"),
    text("norms: dc_prev not carried", "_, dh_next, dc_next, _, _, _ = lstm_step_backward(",
         "_, dh_next, _, _, _, _ = lstm_step_backward(", "lstm_grad_norms", "dc_prev is not carried back"),
    text("norms: last step dropped when T is odd", "    for t in reversed(range(T)):\n        dh = ",
         "    for t in reversed(range(T - T % 2 if T > 1 else T)):\n        dh = ", "lstm_grad_norms",
         "T = 3"),
    text("gru bwd: dW_hn as if the reset came first", "dW_h = h_prev.T @ dah",
         "dW_h = np.concatenate([h_prev.T @ dah[:, : 2 * h_prev.shape[1]], (r_t * h_prev).T @ da_n], axis=1)",
         "gru_step_backward", "as if the reset came before the matmul"),
    text("gru bwd: direct path without z", "dh_prev = dah @ W_h.T + dh_t * z_t",
         "dh_prev = dah @ W_h.T + dh_t", "gru_step_backward", "not dh_t"),
    text("gru bwd: db_x and db_h swapped", "db_x, db_h = dax.sum(axis=0), dah.sum(axis=0)",
         "db_h, db_x = dax.sum(axis=0), dah.sum(axis=0)", "gru_step_backward", "It is db_h"),
    text("gru bwd: dz with the wrong sign", "da_z = dh_t * (h_prev - n_t)", "da_z = dh_t * (n_t - h_prev)",
         "gru_step_backward", "z block has the wrong sign"),
    text("gru bwd: sigmoid derivative taken as s", "da_z = dh_t * (h_prev - n_t) * z_t * (1.0 - z_t)\n    da_r = da_n * hn_t * r_t * (1.0 - r_t)",
         "da_z = dh_t * (h_prev - n_t) * z_t\n    da_r = da_n * hn_t * r_t", "gru_step_backward",
         "derivative is taken as s"),
    # -- found by a third review: rejected without a hint by the earlier checks
    text("lstm fwd: forget bias of 1 (TensorFlow's)", "f_t = sigmoid(a[:, H : 2 * H])",
         "f_t = sigmoid(a[:, H : 2 * H] + 1.0)", "lstm_step_forward", "extra bias of 1"),
    text("lstm fwd: output gate with tanh", "o_t = sigmoid(a[:, 3 * H :])",
         "o_t = np.tanh(a[:, 3 * H :])", "lstm_step_forward", "o_t uses tanh"),
    text("lstm fwd: forget gate with tanh", "f_t = sigmoid(a[:, H : 2 * H])",
         "f_t = np.tanh(a[:, H : 2 * H])", "lstm_step_forward", "f_t uses tanh"),
    text("lstm fwd: gate order i, o, f, g (ONNX)", "f_t = sigmoid(a[:, H : 2 * H])\n    g_t = np.tanh(a[:, 2 * H : 3 * H])\n    o_t = sigmoid(a[:, 3 * H :])",
         "o_t = sigmoid(a[:, H : 2 * H])\n    f_t = sigmoid(a[:, 2 * H : 3 * H])\n    g_t = np.tanh(a[:, 3 * H :])",
         "lstm_step_forward", "wrong order"),
    text("gru fwd: update gate with tanh", "z_t = sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])",
         "z_t = np.tanh(ax[:, H : 2 * H] + ah[:, H : 2 * H])", "gru_step_forward", "z_t uses tanh"),
    text("gru fwd: reset gate with tanh", "r_t = sigmoid(ax[:, :H] + ah[:, :H])",
         "r_t = np.tanh(ax[:, :H] + ah[:, :H])", "gru_step_forward", "r_t uses tanh"),
    text("gru bwd: direct path with 1 - z", "dh_prev = dah @ W_h.T + dh_t * z_t",
         "dh_prev = dah @ W_h.T + dh_t * (1.0 - z_t)", "gru_step_backward", "not dh_t * (1 - z_t)"),
    text("lstm bptt: dstates changed in place", "dstates[:, t] + dh_next, dc_next, caches[t]",
         "dstates[:, t].__iadd__(dh_next), dc_next, caches[t]", "lstm_backward", "in place"),
]  # fmt: skip

ALL_MUTATIONS = MUTATIONS + garbage(CHECKS)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@parametrize(ALL_MUTATIONS)
def test_check_rejects_the_mutation_with_its_hint(mutation):
    run_mutation(mutation, CHECKS, SOL)


def test_every_check_has_at_least_8_mutations():
    counts = {name: sum(m.check == name for m in ALL_MUTATIONS) for name in CHECKS}
    assert all(n >= 8 for n in counts.values()), counts
    own = {name: sum(m.check == name for m in MUTATIONS) for name in CHECKS}
    assert all(n >= 6 for n in own.values()), own


def test_grade_cells_and_the_written_answer():
    sol = nbformat.read(SOLUTION_PATH, as_version=4)
    exercises = [grade_id(c) for c in sol.cells if is_exercise(c) and c.cell_type == "code"]
    tests = {grade_id(c): c.source for c in sol.cells if is_test(c)}
    assert sorted(exercises) == sorted(CHECKS)
    for name in exercises:
        assert f"check_{name}({name})" in tests[f"test_{name}"]
        assert "# BEGIN HIDDEN TESTS" in tests[f"test_{name}"]
    answers = [c for c in sol.cells if c.cell_type == "markdown" and is_exercise(c)]
    assert len(answers) == 1 and nbgrader_meta(answers[0])["grade"]
    assert nbgrader_meta(answers[0])["points"] > 0


def test_lab_contains_no_solution_and_no_hidden_tests():
    sol = nbformat.read(SOLUTION_PATH, as_version=4)
    fenced = {
        line.strip()
        for cell in sol.cells
        for fence in (SOLUTION, HIDDEN)
        for line in fenced_lines(cell.source, fence)
        if re.search(r"\w", line) and not line.strip().startswith("#")
    }
    text = LAB.read_text()
    for marker in MARKERS:
        assert marker not in text
    lab = nbformat.read(LAB, as_version=4)
    code_lines = {
        ln.strip() for c in lab.cells if c.cell_type == "code" for ln in c.source.splitlines()
    }
    assert len(fenced) > 40
    assert not fenced & code_lines, sorted(fenced & code_lines)
    answers = [c for c in lab.cells if c.cell_type == "markdown" and is_exercise(c)]
    assert [c.source for c in answers] == ["YOUR ANSWER HERE"]


@pytest.mark.parametrize("name", CHECKS)
def test_checks_on_the_starter_stubs_raise(name):
    stubs = load_solution(LAB, preamble=PREAMBLE)
    with pytest.raises((NotImplementedError, CheckError)):
        CHECKS[name](stubs[name])


def test_solution_notebook_prints_its_metrics():
    text = "".join(
        o.get("text", "")
        for c in nbformat.read(SOLUTION_PATH, as_version=4).cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    errors = re.findall(r"relative error (\S+) < threshold 1e-07", text)
    assert len(errors) == 12 and all(float(e) < 1e-7 for e in errors)
    rnn = float(re.search(r"\[metric\] lab02 adding T=50 rnn val mse: (\S+)", text).group(1))
    lstm = float(re.search(r"\[metric\] lab02 adding T=50 lstm val mse: (\S+)", text).group(1))
    assert lstm < 0.05 < 0.15 < rnn
