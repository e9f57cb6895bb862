"""The visible checks of Lab 1 accept the solution and reject broken code with the right hint.

The correct functions come from the solution notebook itself (its exercise
cells); each broken variant is a small text mutation of that code, or a wrapper
that breaks what a function returns (tests/labs/harness.py runs them all).
"""

from __future__ import annotations

import re
import textwrap

import nbformat
import numpy as np
import pytest
import torch

from tests.factories import ROOT
from tests.labs.harness import (
    Mutation,
    assert_accepts,
    edit,
    garbage,
    load_solution,
    parametrize,
    run_mutation,
    solution_sources,
    text,
    wrap,
)
from utils.checks import CheckError
from utils.checks import lab01 as lc
from utils.checks.references import rnn_from_weights
from utils.instructor.notebook import (
    HIDDEN,
    MARKERS,
    SOLUTION,
    fenced_lines,
    grade_id,
    is_exercise,
    is_test,
    max_points,
    points,
)

SOLUTION_PATH = ROOT / "solutions" / "lab01_rnn_from_scratch.ipynb"
LAB = ROOT / "labs" / "lab01_rnn_from_scratch.ipynb"

CHECKS = {
    "rnn_step_forward": lc.check_rnn_step_forward,
    "rnn_forward": lc.check_rnn_forward,
    "temporal_softmax_loss": lc.check_temporal_softmax_loss,
    "rnn_step_backward": lc.check_rnn_step_backward,
    "rnn_backward": lc.check_rnn_backward,
    "loss_and_grads": lc.check_loss_and_grads,
    "clip_grad_norm": lc.check_clip_grad_norm,
}

SOL = load_solution(SOLUTION_PATH)


# ----------------------------------------------------------------------------- the solution passes


def test_solution_defines_every_exercise():
    assert set(CHECKS) <= set(SOL)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution(name):
    assert_accepts(CHECKS[name], SOL[name], name)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution_on_other_sizes(name):
    sizes = {
        "rnn_step_forward": dict(N=2, D=3, H=6, seed=7),
        "rnn_forward": dict(N=2, T=3, D=5, H=2, seed=7),
        "temporal_softmax_loss": dict(N=3, T=2, V=7, seed=7),
        "rnn_step_backward": dict(N=4, D=2, H=3, seed=7),
        "rnn_backward": dict(N=3, T=8, D=2, H=5, seed=7),
        "loss_and_grads": dict(N=3, T=3, V=5, H=4, seed=7),
        "clip_grad_norm": dict(seed=7),
    }[name]
    assert_accepts(CHECKS[name], SOL[name], name, **sizes)


def test_solution_code_uses_numpy_only():
    """The lab's rule: no torch in the functions (the checks use it as the reference)."""
    for source in solution_sources(SOLUTION_PATH):
        assert "torch" not in source, source


def test_the_check_module_holds_no_answer():
    """The module defines no public function but the checks: in particular nothing
    that returns (loss, grads) for given params, the answer to Exercise 6."""
    import importlib
    import pkgutil

    own = []
    for info in pkgutil.iter_modules(lc.__path__):
        module = importlib.import_module(f"{lc.__name__}.{info.name}")
        own += [
            name
            for name, value in vars(module).items()
            if callable(value) and getattr(value, "__module__", None) == module.__name__
        ]
    assert sorted(n for n in own if not n.startswith("_")) == sorted(f"check_{n}" for n in CHECKS)
    assert not hasattr(lc, "torch_loss_and_grads")


# ----------------------------------------------------------------------------- broken code is rejected


STEP = "h_t = np.tanh(x_t @ W_xh + h_prev @ W_hh + b_h)"
CACHE = "    cache = (x_t, h_prev, h_t, W_xh, W_hh)\n"
DSTATES = "    dscores /= N * T\n"
ACCUMULATE = "        dW_xh += dW_xh_t\n        dW_hh += dW_hh_t\n        db_h += db_h_t"
SCALE = "scale = min(1.0, max_norm / (total_norm + 1e-6))"
CLIPPED = "clipped = {name: g * scale for name, g in grads.items()}"
NORM = "total_norm = float(np.sqrt(sum(np.sum(g**2) for g in grads.values())))"
LOOP_BACK = "for t in reversed(range(T)):"
CALL = "h_t, cache = rnn_step_forward(X[:, t, :], h_t, W_xh, W_hh, b_h)"


def _float32(fn):
    def wrapper(*args):
        h_t, cache = fn(*args)
        return h_t.astype(np.float32), cache

    return wrapper


def _halves_h_prev(fn):
    def wrapper(x_t, h_prev, W_xh, W_hh, b_h):
        h_prev *= 0.5
        return fn(x_t, h_prev, W_xh, W_hh, b_h)

    return wrapper


MUTATIONS = [
    # -- one step forward
    text("forward: missing tanh", STEP, "h_t = x_t @ W_xh + h_prev @ W_hh + b_h",
         "rnn_step_forward", "before tanh"),
    text("forward: transposed W_hh", "h_prev @ W_hh + b_h", "h_prev @ W_hh.T + b_h",
         "rnn_step_forward", "W_hh transposed"),
    text("forward: missing bias", "h_prev @ W_hh + b_h)", "h_prev @ W_hh)",
         "rnn_step_forward", "bias b_h is missing"),
    text("forward: transposed W_xh", "x_t @ W_xh +", "x_t @ W_xh.T +",
         "rnn_step_forward", "raised ValueError"),
    text("forward: bias added outside the tanh", STEP,
         "h_t = np.tanh(x_t @ W_xh + h_prev @ W_hh) + b_h",
         "rnn_step_forward", "b_h is added after the tanh"),
    text("forward: sigmoid instead of tanh", STEP,
         "h_t = 1 / (1 + np.exp(-(x_t @ W_xh + h_prev @ W_hh + b_h)))",
         "rnn_step_forward", "It uses the sigmoid"),
    text("forward: a_t stored in the cache instead of h_t", CACHE,
         "    cache = (x_t, h_prev, np.arctanh(h_t), W_xh, W_hh)\n",
         "rnn_step_forward", "Keep the line `cache = (x_t, h_prev, h_t, W_xh, W_hh)`"),
    text("forward: b_h added to the cache", CACHE, "    cache = (x_t, h_prev, h_t, W_xh, W_hh, b_h)\n",
         "rnn_step_forward", "cache is a tuple of 6 items, expected the tuple of 5"),
    Mutation("forward: float32", "rnn_step_forward",
             wrap("rnn_step_forward", _float32),
             "It is float32: keep float64"),
    Mutation("forward: changes h_prev in place", "rnn_step_forward",
             wrap("rnn_step_forward", _halves_h_prev),
             "changed its argument number 2 (h_prev) in place"),
    # -- the sequence
    text("sequence: off by one in time (stores h_{t-1})", f"        {CALL}\n        steps.append(h_t)",
         f"        steps.append(h_t)\n        {CALL}", "rnn_forward", "Off by one in time"),
    text("sequence: every step from h0", "rnn_step_forward(X[:, t, :], h_t,",
         "rnn_step_forward(X[:, t, :], h0,", "rnn_forward", "h_t must use h_{t-1}"),
    text("sequence: time-major shape", "np.stack(steps, axis=1)", "np.stack(steps, axis=0)",
         "rnn_forward", "has shape (6, 3, 5), expected (3, 6, 5)"),
    text("sequence: time reversed", "for t in range(T):", "for t in reversed(range(T)):",
         "rnn_forward", "The sequence is read backward"),
    text("sequence: h0 ignored", "    h_t = h0\n", "    h_t = np.zeros_like(h0)\n",
         "rnn_forward", "h0 is not used"),
    text("sequence: bias added outside the tanh (in the step)", STEP,
         "h_t = np.tanh(x_t @ W_xh + h_prev @ W_hh) + b_h", "rnn_forward",
         "b_h is added after the tanh"),
    text("sequence: sigmoid instead of tanh (in the step)", STEP,
         "h_t = 1 / (1 + np.exp(-(x_t @ W_xh + h_prev @ W_hh + b_h)))", "rnn_forward",
         "It uses the sigmoid"),
    text("sequence: caches hold W_hh and W_xh swapped", "        caches.append(cache)\n",
         "        caches.append((*cache[:3], W_hh, W_xh))\n", "rnn_forward",
         "caches[0][3] (W_xh of step t = 1)"),
    text("sequence: caches rebuilt after the loop, off by one at t = 2",
         "    states = np.stack(steps, axis=1)\n",
         "    states = np.stack(steps, axis=1)\n    caches = [(X[:, t], states[:, t - 1] if t > 1 "
         "else h0, states[:, t], W_xh, W_hh) for t in range(T)]\n",
         "rnn_forward", "caches[1][1] (h_prev of step t = 2)"),
    Mutation("sequence: calls an unfinished step", "rnn_forward",
             edit("rnn_forward", f"    {STEP}\n", "    raise NotImplementedError()\n"),
             "rnn_forward calls rnn_step_forward, which is not", NotImplementedError),
    Mutation("sequence: not a function", "rnn_forward", lambda sol: None,
             "expected the function rnn_forward"),
    # -- the loss
    text("loss: sum instead of mean", "axis=-1).mean()", "axis=-1).sum()",
         "temporal_softmax_loss", "divide by N * T"),
    text("loss: dscores not divided by N*T", DSTATES, "", "temporal_softmax_loss",
         "N * T times too large"),
    text("loss: unstable softmax", "shifted = scores - scores.max(axis=-1, keepdims=True)",
         "shifted = scores", "temporal_softmax_loss", "np.exp overflows"),
    text("loss: wrong sign of dscores", DSTATES, "    dscores /= -N * T\n",
         "temporal_softmax_loss", "wrong sign"),
    text("loss: dscores averaged over N only", DSTATES, "    dscores /= N\n",
         "temporal_softmax_loss", "dscores is averaged over N only"),
    # -- one step backward
    text("step backward: tanh derivative from h_prev", "da_t = dh_t * (1.0 - h_t**2)",
         "da_t = dh_t * (1.0 - h_prev**2)", "rnn_step_backward",
         "The tanh derivative is taken at h_prev"),
    text("step backward: dW_xh from dh_t instead of da_t", "dW_xh = x_t.T @ da_t",
         "dW_xh = x_t.T @ dh_t", "rnn_step_backward", "It misses the tanh derivative"),
    text("step backward: dW_xh with the batch rows misaligned", "dW_xh = x_t.T @ da_t",
         "dW_xh = x_t.T @ da_t[::-1]", "rnn_step_backward",
         "db_h is right, so da_t is right: dW_xh = x_t^T da_t"),
    text("step backward: missing tanh derivative", "da_t = dh_t * (1.0 - h_t**2)", "da_t = dh_t",
         "rnn_step_backward", "tanh derivative: multiply dh_t by (1 - h_t**2)"),
    text("step backward: dW_hh transposed", "dW_hh = h_prev.T @ da_t", "dW_hh = da_t.T @ h_prev",
         "rnn_step_backward", "transpose of the reference: check the order of the matmul"),
    text("step backward: dW_xh transposed", "dW_xh = x_t.T @ da_t", "dW_xh = da_t.T @ x_t",
         "rnn_step_backward", "dW_xh has shape (5, 4), expected (4, 5)"),
    text("step backward: dh_prev through W_hh untransposed", "dh_prev = da_t @ W_hh.T",
         "dh_prev = da_t @ W_hh", "rnn_step_backward", "flows back through W_hh"),
    text("step backward: db_h not summed over the batch", "db_h = da_t.sum(axis=0)",
         "db_h = da_t", "rnn_step_backward", "db_h has shape (3, 5), expected (5,)"),
    text("step backward: wrong sign", "db_h = da_t.sum(axis=0)", "db_h = -da_t.sum(axis=0)",
         "rnn_step_backward", "wrong sign"),
    # -- BPTT
    text("BPTT: missing tanh derivative (in the step)", "da_t = dh_t * (1.0 - h_t**2)",
         "da_t = dh_t", "rnn_backward", "tanh derivative"),
    text("BPTT: gradients not accumulated over time", ACCUMULATE,
         "        dW_xh = dW_xh_t\n        dW_hh = dW_hh_t\n        db_h = db_h_t",
         "rnn_backward", "accumulate dW over t"),
    text("BPTT: only the last step's gradient (overwrite)", ACCUMULATE,
         "        if t == T - 1:\n            dW_xh, dW_hh, db_h = dW_xh_t, dW_hh_t, db_h_t",
         "rnn_backward", "Only the last time step's gradient is counted"),
    text("BPTT: off by one in time (first step skipped)", LOOP_BACK,
         "for t in reversed(range(1, T)):", "rnn_backward", "Off by one in time"),
    text("BPTT: off by one in time (last step skipped)", LOOP_BACK,
         "for t in reversed(range(T - 1)):", "rnn_backward", "Off by one in time"),
    text("BPTT: dh_prev not carried back", "dstates[:, t] + dh_next, caches[t]",
         "dstates[:, t], caches[t]", "rnn_backward", "does not flow back through time"),
    text("BPTT: loop runs forward in time", LOOP_BACK, "for t in range(T):", "rnn_backward",
         "The loop runs forward in time"),
    text("BPTT: gradient carried 10 steps at most (passes T <= 10)",
         "dstates[:, t] + dh_next, caches[t]",
         "dstates[:, t] + (dh_next if T - t <= 10 else 0.0), caches[t]",
         "rnn_backward", "(over T = 25 steps) differs from the reference"),
    text("BPTT: dX shaped from dstates (works only for D <= H)", "dX = np.zeros((N, T, D))",
         "dX = np.zeros_like(dstates[..., :D])", "rnn_backward", "raised ValueError"),
    # -- the model
    text("model: h0 ignored", "states, caches = rnn_forward(X, h0,",
         "states, caches = rnn_forward(X, 0.0 * h0,", "loss_and_grads",
         "h0 is not used: pass the argument h0"),
    text("model: b_q missing from the scores", "scores = states @ W_hq + b_q",
         "scores = states @ W_hq", "loss_and_grads", "b_q is missing"),
    text("model: output layer gradient from the last step only",
         "dW_hq = states.reshape(-1, H).T @ dscores.reshape(-1, V)",
         "dW_hq = states[:, -1].T @ dscores[:, -1]", "loss_and_grads",
         "applied at every time step"),
    text("model: dW_hh transposed (via the step)", "dW_hh = h_prev.T @ da_t",
         "dW_hh = da_t.T @ h_prev", "loss_and_grads", "transpose of the reference"),
    text("model: missing key", ', "b_q": db_q}', "}", "loss_and_grads", "missing ['b_q']"),
    text("model: BPTT carried 10 steps at most (via rnn_backward)",
         "dstates[:, t] + dh_next, caches[t]",
         "dstates[:, t] + (dh_next if T - t <= 10 else 0.0), caches[t]",
         "loss_and_grads", "(over T = 25 steps) differs from the reference"),
    # -- clipping
    text("clip: always rescaled", SCALE, "scale = max_norm / (total_norm + 1e-6)",
         "clip_grad_norm", "only scale down, never up"),
    text("clip: never clipped", SCALE, "scale = 1.0", "clip_grad_norm", "Nothing was clipped"),
    text("clip: elementwise np.clip", CLIPPED,
         "clipped = {name: np.clip(g, -max_norm, max_norm) for name, g in grads.items()}",
         "clip_grad_norm", "np.clip clips each value"),
    text("clip: per-array norm", CLIPPED,
         "clipped = {name: g * min(1.0, max_norm / np.linalg.norm(g)) for name, g in grads.items()}",
         "clip_grad_norm", "its own norm"),
    text("clip: squared norm", NORM, "total_norm = float(sum(np.sum(g**2) for g in grads.values()))",
         "clip_grad_norm", "squared norm"),
    text("clip: modifies grads in place", CLIPPED,
         "clipped = grads\n    for g in grads.values():\n        g *= scale",
         "clip_grad_norm", "in place"),
    text("clip: divides by a zero norm (ZeroDivisionError)", SCALE,
         "scale = min(1.0, max_norm / total_norm)", "clip_grad_norm",
         "raised ZeroDivisionError: float division by zero (all-zero gradients)"),
    text("clip: NaN for a zero norm", CLIPPED,
         "clipped = {name: g * min(total_norm, max_norm) / total_norm for name, g in grads.items()}",
         "clip_grad_norm", "non-finite values (NaN or inf) for all-zero gradients"),
    text("clip: returns the input arrays when nothing is clipped", CLIPPED,
         "clipped = {name: g * scale if scale < 1.0 else g for name, g in grads.items()}",
         "clip_grad_norm", "is the input array grads['W_xh'] itself (norm below max_norm)"),
]  # fmt: skip


# Wrong code an independent review found that the earlier checks accepted (hard-coded
# sizes, T even only, D == V assumed, torch tensors, float32 numbers, caches changed in
# place, softmax shifted by the global max or the mean, max_norm ignored, ...) or
# explained with a generic message (aliased caches, dh0 taken at h_1, dstates and caches
# paired off by one, ...).
FORWARD_LOOP = f"    h_t = h0\n    steps, caches = [], []\n    for t in range(T):\n        {CALL}\n        steps.append(h_t)\n"
BPTT_BODY = "            dstates[:, t] + dh_next, caches[t]\n        )\n"
BPTT_TAIL = "        dX[:, t] = dx_t\n" + ACCUMULATE + "\n    dh0 = dh_next\n"
DA = "da_t = dh_t * (1.0 - h_t**2)"

REVIEW_MUTATIONS = [
    text("forward: hard-coded sizes (N = 3, H = 5)", STEP,
         "h_t = np.zeros((3, 5)) + np.tanh(x_t @ W_xh + h_prev @ W_hh + b_h)",
         "rnn_step_forward", "could not be broadcast together with shapes (3,5) (2,3)"),
    text("sequence: hard-coded sizes (N = 3, T = 6, H = 5)", "np.stack(steps, axis=1)",
         "np.zeros((3, 6, 5)) + np.stack(steps, axis=1)", "rnn_forward",
         "could not be broadcast together with shapes (3,6,5) (2,7,4)"),
    text("sequence: two steps per iteration (T even only)", "    for t in range(T):\n",
         "    for t in [s for u in range(0, T - 1, 2) for s in (u, u + 1)]:\n", "rnn_forward",
         "(N = 2, T = 7, D = 3, H = 4) has shape (2, 6, 4), expected (2, 7, 4)"),
    text("sequence: one state buffer overwritten in place (aliased caches)", FORWARD_LOOP,
         "    h_t = h0.copy()\n    steps, caches = [], []\n    for t in range(T):\n"
         "        h_new, cache = rnn_step_forward(X[:, t, :], h_t, W_xh, W_hh, b_h)\n"
         "        h_t[...] = h_new\n        steps.append(h_t.copy())\n",
         "rnn_forward", "are the same array in memory"),
    text("sequence: one state buffer appended T times", FORWARD_LOOP,
         "    h_t = h0.copy()\n    steps, caches = [], []\n    for t in range(T):\n"
         "        h_new, cache = rnn_step_forward(X[:, t, :], h_t, W_xh, W_hh, b_h)\n"
         "        h_t[...] = h_new\n        steps.append(h_t)\n",
         "rnn_forward", "Every entry of states is h_T"),
    text("sequence: step t reads X[:, t - 1]", "X[:, t, :]", "X[:, t - 1, :]", "rnn_forward",
         "Off by one in time in the inputs"),
    text("loss: softmax shifted by the largest of all scores",
         "scores.max(axis=-1, keepdims=True)", "scores.max()", "temporal_softmax_loss",
         "with scores thousands apart"),
    text("loss: softmax shifted by the row mean", "scores.max(axis=-1, keepdims=True)",
         "scores.mean(axis=-1, keepdims=True)", "temporal_softmax_loss",
         "with scores thousands apart"),
    text("loss: hard-coded N * T = 6", DSTATES, "    dscores /= 6\n", "temporal_softmax_loss",
         "dscores (N = 3, T = 4, V = 3) differs"),
    text("loss: float32 loss", "return float(loss), dscores", "return np.float32(loss), dscores",
         "temporal_softmax_loss", "loss has dtype float32, expected float64"),
    text("step backward: hard-coded batch of 3", "db_h = da_t.sum(axis=0)",
         "db_h = da_t[0] + da_t[1] + da_t[2]", "rnn_step_backward",
         "rnn_step_backward raised IndexError"),
    text("step backward: squares h_t of the cache in place", DA,
         "h_t **= 2\n    da_t = dh_t * (1.0 - h_t)", "rnn_step_backward",
         "changed h_t (item 2) of the cache in place"),
    text("step backward: tanh applied to h_t again", DA, "da_t = dh_t * (1.0 - np.tanh(h_t)**2)",
         "rnn_step_backward", "It applies np.tanh to h_t again"),
    text("step backward: derivative 1 - h_t (the db_h hint)", DA, "da_t = dh_t * (1.0 - h_t)",
         "rnn_step_backward", "db_h is the sum over the batch of da_t"),
    text("BPTT: caches.pop() empties the caller's list", "dstates[:, t] + dh_next, caches[t]",
         "dstates[:, t] + dh_next, caches.pop()", "rnn_backward", "changed the list caches"),
    text("BPTT: the step squares h_t of the caches in place", DA,
         "h_t **= 2\n    da_t = dh_t * (1.0 - h_t)", "rnn_backward",
         "changed h_t (item 2) of the cache of step t = 1 in place"),
    text("BPTT: steps in pairs, then step 1 (T odd only)", LOOP_BACK,
         "for t in [s for u in range(T - 1, 0, -2) for s in (u, u - 1)] + [0]:",
         "rnn_backward", "(over T = 4 steps, N = 1) differs"),
    text("BPTT: dh0 is the gradient at h_1", BPTT_BODY + BPTT_TAIL,
         "            (dh := dstates[:, t] + dh_next), caches[t]\n        )\n"
         + BPTT_TAIL.replace("dh0 = dh_next", "dh0 = dh"),
         "rnn_backward", "dh0 is the gradient reaching h_1"),
    text("BPTT: dh0 from the first iteration (step T)", BPTT_TAIL,
         BPTT_TAIL.replace("    dh0 = dh_next\n", "")
         + "        if t == T - 1:\n            dh0 = dh_next\n",
         "rnn_backward", "dh0 is the dh_prev of the last step t = T"),
    text("BPTT: dstates[:, t - 1] with caches[t]", "dstates[:, t] + dh_next, caches[t]",
         "dstates[:, t - 1] + dh_next, caches[t]", "rnn_backward", "paired with different indices"),
    text("BPTT: dstates[:, t] with caches[t - 1]", "dstates[:, t] + dh_next, caches[t]",
         "dstates[:, t] + dh_next, caches[t - 1]", "rnn_backward", "paired with different indices"),
    text("BPTT: dstates added after the step (step T gets none)", BPTT_BODY,
         "            dh_next, caches[t]\n        )\n"
         "        dh_next = dh_next + (dstates[:, t - 1] if t > 0 else 0.0)\n",
         "rnn_backward", "the gradient of the last step t = T never enters"),
    text("BPTT: dW_hh from h_t (via the step)", "dW_hh = h_prev.T @ da_t", "dW_hh = h_t.T @ da_t",
         "rnn_backward", "Does check_rnn_step_backward pass?"),
    text("model: V read from X (assumes D == V)", "H, V = W_hq.shape",
         "H, V = W_hq.shape[0], X.shape[2]", "loss_and_grads", "cannot reshape array of size 375"),
    text("clip: max_norm ignored (clips to 1)", SCALE, "scale = min(1.0, 1.0 / (total_norm + 1e-6))",
         "clip_grad_norm", "not to max_norm"),
    text("clip: scale from the squared norm", SCALE,
         "scale = min(1.0, max_norm / (total_norm**2 + 1e-6))", "clip_grad_norm",
         "The scale uses the squared norm"),
    text("clip: sum of the arrays' norms", NORM,
         "total_norm = float(sum(np.linalg.norm(g) for g in grads.values()))", "clip_grad_norm",
         "sum of the arrays' norms"),
    text("clip: float32 total_norm", "return clipped, total_norm",
         "return clipped, np.float32(total_norm)", "clip_grad_norm",
         "total_norm has dtype float32, expected float64"),
    text("clip: hard-coded keys W_xh, W_hh, b_h", CLIPPED,
         "clipped = {name: grads[name] * scale for name in ('W_xh', 'W_hh', 'b_h')}",
         "clip_grad_norm", "expected a dict with the keys of grads"),
]  # fmt: skip


# Wrong code a later review found that the checks accepted (a tanh written with np.exp,
# the loss as np.log of the softmax: both fine on small inputs) or explained generically
# (the upstream gradient used in place of the carried one, not added to it).
LATER_MUTATIONS = [
    text("forward: tanh written with np.exp (overflows)", STEP,
         "a = x_t @ W_xh + h_prev @ W_hh + b_h\n    "
         "h_t = (np.exp(a) - np.exp(-a)) / (np.exp(a) + np.exp(-a))",
         "rnn_step_forward", "a tanh written with np.exp overflows"),
    text("forward: tanh as (exp(2a) - 1) / (exp(2a) + 1)", STEP,
         "a = x_t @ W_xh + h_prev @ W_hh + b_h\n    h_t = (np.exp(2 * a) - 1) / (np.exp(2 * a) + 1)",
         "rnn_step_forward", "(inputs 1000 times larger, tanh saturated) is not finite"),
    text("loss: np.log of the softmax (underflows)",
         "log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))",
         "probs = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)\n    "
         "log_probs = np.log(probs)", "temporal_softmax_loss", "np.log(0) is -inf"),
    text("BPTT: dstates used at t = T only, dh_next after", "dstates[:, t] + dh_next, caches[t]",
         "dstates[:, t] if t == T - 1 else dh_next, caches[t]", "rnn_backward",
         "Only the loss at the last step t = T enters"),
]  # fmt: skip


def _as_torch(fn):
    """The first output as torch tensors (float64): the lab is NumPy only."""

    def wrapper(*args):
        out = fn(*args)
        first = out[0]
        if isinstance(first, dict):
            first = {k: torch.from_numpy(v) for k, v in first.items()}
        else:
            first = torch.tensor(first, dtype=torch.float64)
        return (first, *out[1:])

    return wrapper


TORCH = [
    Mutation(f"{name}: first output as torch tensors", name, wrap(name, _as_torch),
             "is a torch Tensor, expected a NumPy array")
    for name in CHECKS
]  # fmt: skip


def _transposed_first(fn):
    """The first output transposed (an array), or given twice (a number)."""

    def wrapper(*args):
        out = fn(*args)
        first = out[0]
        if isinstance(first, np.ndarray) and first.ndim >= 2:
            first = np.swapaxes(first, 0, 1)
        elif isinstance(first, dict):
            first = {k: v.T for k, v in first.items()}
        else:
            first = np.array([first, first])
        return (first, *out[1:])

    return wrapper


TRANSPOSED = [
    Mutation(f"{name}: first output transposed", name, wrap(name, _transposed_first),
             ("loss has shape (2,)", "one number") if "loss" in name else "has shape")
    for name in CHECKS
]  # fmt: skip

ALL_MUTATIONS = (
    MUTATIONS + REVIEW_MUTATIONS + LATER_MUTATIONS + garbage(CHECKS) + TRANSPOSED + TORCH
)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@parametrize(ALL_MUTATIONS)
def test_check_rejects_the_mutation_with_its_hint(mutation):
    run_mutation(mutation, CHECKS, SOL)


def test_every_check_is_mutated():
    assert {m.check for m in MUTATIONS} == set(CHECKS)
    assert len(ALL_MUTATIONS) >= 100


def test_the_harness_fails_when_a_check_lets_a_mutation_through():
    unchanged = Mutation("no change", "clip_grad_norm", wrap("clip_grad_norm", lambda f: f), "x")
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        run_mutation(unchanged, CHECKS, SOL)
    wrong_words = Mutation(
        "wrong words",
        "clip_grad_norm",
        edit("clip_grad_norm", SCALE, "scale = 1.0"),
        "no such hint",
    )
    with pytest.raises(AssertionError, match="Nothing was clipped"):
        run_mutation(wrong_words, CHECKS, SOL)
    with pytest.raises(AssertionError, match="not found exactly once"):
        SOL.mutated("rnn_backward", "dW_xh", "dW_hh")


def test_check_explains_an_undefined_name():
    def uses_a_missing_helper(x_t, h_prev, W_xh, W_hh, b_h):
        return my_tanh(x_t @ W_xh + h_prev @ W_hh + b_h)  # noqa: F821

    with pytest.raises(CheckError) as info:
        lc.check_rnn_step_forward(uses_a_missing_helper)
    message = str(info.value)
    assert "raised NameError" in message and "exported functions" in message, message
    assert "Compare the shapes" not in message, message


def test_a_wrong_scalar_is_not_called_a_missing_factor():
    def loss_off_by_a_bit(params, X, Y, h0):
        loss, grads = SOL["loss_and_grads"](params, X, Y, h0)
        return loss + 0.1, grads

    with pytest.raises(CheckError) as info:
        lc.check_loss_and_grads(loss_off_by_a_bit)
    message = str(info.value)
    assert "loss differs" in message and "missing or extra factor" not in message, message
    assert "Got " in message and "index ()" not in message, message


def _complex_step_loss_and_grads(params, X, Y, h0):
    """Loss by a NumPy forward pass written here, gradients by the complex step
    Im L(theta + i eps e_k) / eps: exact to round-off, and shares no code with the
    solution's backward pass or with PyTorch."""

    def loss(p):
        h, total = h0.astype(complex), 0.0
        for t in range(X.shape[1]):
            h = np.tanh(X[:, t] @ p["W_xh"] + h @ p["W_hh"] + p["b_h"])
            o = h @ p["W_hq"] + p["b_q"]
            o = o - o.real.max(axis=1, keepdims=True)
            log_z = np.log(np.exp(o).sum(axis=1))
            total = total + (log_z - o[np.arange(len(o)), Y[:, t]]).sum()
        return total / Y.size

    eps, grads = 1e-30, {}
    for k, v in params.items():
        g = np.zeros_like(v)
        for i in np.ndindex(v.shape):
            p = {n: a.astype(complex) for n, a in params.items()}
            p[k][i] += 1j * eps
            g[i] = loss(p).imag / eps
        grads[k] = g
    return float(loss(params).real), grads


def test_the_reference_of_check_loss_and_grads_is_independent_of_numpy_and_right():
    """The reference is computed inside the check (no callable returns it): the
    check accepts complex-step derivatives of a forward pass written here, and
    rejects them when one entry is off by 1e-6."""
    assert_accepts(lc.check_loss_and_grads, _complex_step_loss_and_grads, "loss_and_grads")

    def nudged(params, X, Y, h0):
        loss, grads = _complex_step_loss_and_grads(params, X, Y, h0)
        grads["W_hh"][0, 0] += 1e-6
        return loss, grads

    with pytest.raises(CheckError, match=r"grads\['W_hh'\] differs"):
        lc.check_loss_and_grads(nudged)


def _exercise_code(name: str) -> str:
    """The Python block that defines ``name`` in the markdown (the Exercises' solutions)."""
    nb = nbformat.read(SOLUTION_PATH, as_version=4)
    blocks = [
        textwrap.dedent(block)
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for block in re.findall(r"```python\n(.*?)```", cell.source, flags=re.S)
        if f"def {name}(" in block
    ]
    assert len(blocks) == 1, blocks
    return blocks[0]


def test_the_truncated_bptt_of_exercise_2_is_right():
    """k = T gives rnn_backward, k = 1 the gradient without flow through time, and in
    between each loss reaches exactly k steps back (checked against autograd)."""
    ns = dict(SOL.namespace)
    exec(_exercise_code("rnn_backward_truncated"), ns)
    truncated = ns["rnn_backward_truncated"]
    rng = np.random.default_rng(0)
    N, T, D, H, k = 2, 7, 3, 4, 3
    X, h0 = rng.normal(size=(N, T, D)), rng.normal(size=(N, H))
    W_xh, W_hh, b_h = rng.normal(size=(D, H)), rng.normal(size=(H, H)), rng.normal(size=H)
    dstates = rng.normal(size=(N, T, H))
    _, caches = SOL["rnn_forward"](X, h0, W_xh, W_hh, b_h)
    full = SOL["rnn_backward"](dstates, caches)
    got = truncated(dstates, caches, T)
    for a, b in zip(got, (full[0], *full[2:])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    # k steps per loss, by autograd: the loss at step t sees the states h_{t-k+1} .. h_t
    # computed from a detached h_{t-k}.
    cell = rnn_from_weights(W_xh, W_hh, b_h, cell=True)
    X_t = torch.tensor(X, requires_grad=True)
    total = 0.0
    for t in range(T):
        start = max(0, t - k + 1)
        h = torch.tensor(h0) if start == 0 else torch.tensor(caches[start][1])
        for s in range(start, t + 1):
            h = cell(X_t[:, s], h)
        total = total + (h * torch.tensor(dstates[:, t])).sum()
    total.backward()
    got = truncated(dstates, caches, k)
    want = (X_t.grad, cell.weight_ih.grad.T, cell.weight_hh.grad.T, cell.bias_ih.grad)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-10, atol=1e-12)
    no_carry = truncated(dstates, caches, 1)
    assert not np.allclose(no_carry[2], full[3])
    # One sweep that drops dh_prev every k steps is not the same (as the solution says).
    dh, sweep = np.zeros((N, H)), 0.0
    for t in reversed(range(T)):
        if (T - 1 - t) % k == 0:
            dh = np.zeros((N, H))
        _, dh, _, dW_hh_t, _ = SOL["rnn_step_backward"](dstates[:, t] + dh, caches[t])
        sweep = sweep + dW_hh_t
    assert not np.allclose(sweep, want[2].numpy(), rtol=1e-6)


# ----------------------------------------------------------------------------- the generated lab


def _lab():
    return nbformat.read(LAB, as_version=4)


def _unfenced_lines(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() in (SOLUTION[0], HIDDEN[0]):
            inside = True
        elif line.strip() in (SOLUTION[1], HIDDEN[1]):
            inside = False
        elif not inside:
            lines.append(line)
    return lines


def test_lab_contains_no_solution_code_and_no_hidden_tests():
    nb = nbformat.read(SOLUTION_PATH, as_version=4)
    fenced = [
        line.strip()
        for cell in nb.cells
        for fence in (SOLUTION, HIDDEN)
        for line in fenced_lines(cell.source, fence)
        if line.strip() and not line.strip().startswith("#")
    ]
    # Lines the lab gives anyway (e.g. a loop header also used in given code) are no secret.
    given = {line.strip() for cell in nb.cells for line in _unfenced_lines(cell.source)}
    secret = [line for line in fenced if re.search(r"\w", line) and line not in given]
    assert len(secret) > 40
    lab_lines = {line.strip() for cell in _lab().cells for line in cell.source.splitlines()}
    leaked = [line for line in secret if line in lab_lines]
    assert not leaked, f"solution or hidden-test lines in the lab: {leaked}"
    text = LAB.read_text()
    for marker in MARKERS:
        assert marker not in text


def test_every_exercise_has_a_check_and_a_graded_test():
    """Read from the solution's metadata: each exercise function has a visible check
    here and a graded test cell that calls it (the lab is held to the solution by
    tests/labs/test_labs_in_sync.py)."""
    sol = nbformat.read(SOLUTION_PATH, as_version=4)
    exercises = [grade_id(c) for c in sol.cells if is_exercise(c) and c.cell_type == "code"]
    tests = {grade_id(c): c.source for c in sol.cells if is_test(c)}
    functions = [e for e in exercises if e in CHECKS]
    assert sorted(functions) == sorted(CHECKS)
    for name in functions:
        assert f"test_{name}" in tests, f"exercise {name} has no graded test cell"
        assert f"check_{name}({name})" in tests[f"test_{name}"]
    assert max_points(sol) == sum(points(c) for c in sol.cells if is_test(c)) > 0


@pytest.mark.parametrize("name", CHECKS)
def test_checks_on_the_starter_stubs_raise_not_implemented_or_check_error(name):
    stubs = load_solution(LAB)
    with pytest.raises((NotImplementedError, CheckError)):
        CHECKS[name](stubs[name])


def _stored_output() -> str:
    return "".join(
        o.get("text", "")
        for c in nbformat.read(SOLUTION_PATH, as_version=4).cells
        if c.cell_type == "code"
        for o in c.outputs
    )


def test_solution_notebook_prints_relative_errors_below_threshold():
    """The stored full-mode run shows every gradient check passing below 1e-7."""
    text = _stored_output()
    errors = re.findall(
        r"\[PASS\] d\w+ vs (finite differences|torch autograd): relative error (\S+) < threshold 1e-07",
        text,
    )
    assert len(errors) == 10, text
    assert all(float(e) < 1e-7 for _, e in errors)
    for metric in (
        "[metric] lab01 max relative error vs finite differences:",
        "[metric] lab01 max relative error vs autograd:",
        "[metric] lab01 hello accuracy: 100%",
        "[metric] lab01 exploding run accuracy with clipping: 100%",
        "[metric] lab01 exploding run accuracy without clipping:",
    ):
        assert metric in text, metric
