"""The visible checks of Lab 1 accept the solution and reject broken code with the right hint.

The correct functions come from the solution notebook itself (the code cells
with nbgrader solution metadata); each broken variant is a small text mutation
of that code, or a wrapper that breaks what a function returns.
"""

from __future__ import annotations

import json
import re

import nbformat
import numpy as np
import pytest

from tests.factories import ROOT
from utils.checks import lab01 as lc
from utils.checks import CheckError
from utils.instructor import labgen

SOLUTION = ROOT / "solutions" / "lab01_rnn_from_scratch.ipynb"
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


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) or {}


def _solution_sources(path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and _nbgrader(c).get("solution")]


def _namespace(sources: list[str]) -> dict:
    ns: dict = {"np": np, "__name__": "lab01_solution"}
    for src in sources:
        exec(compile(src, str(SOLUTION), "exec"), ns)
    return ns


SOURCES = _solution_sources(SOLUTION)


def mutated(name: str, old: str, new: str):
    """The function ``name`` from the solution, with ``old`` replaced by ``new`` (exactly once)."""
    hits = [i for i, src in enumerate(SOURCES) if old in src]
    assert len(hits) == 1 and SOURCES[hits[0]].count(old) == 1, (
        f"mutation target not unique: {old!r}"
    )
    sources = list(SOURCES)
    sources[hits[0]] = sources[hits[0]].replace(old, new)
    return _namespace(sources)[name]


@pytest.fixture(scope="module")
def solution() -> dict:
    return _namespace(SOURCES)


# ----------------------------------------------------------------------------- the solution passes


def test_solution_defines_every_exercise(solution):
    assert set(CHECKS) <= set(solution)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution(solution, name, capsys):
    CHECKS[name](solution[name])
    out = capsys.readouterr().out
    assert out.startswith(f"[PASS] {name}:"), out


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution_on_other_sizes(solution, name):
    sizes = {
        "rnn_step_forward": dict(N=2, D=3, H=6, seed=7),
        "rnn_forward": dict(N=2, T=3, D=5, H=2, seed=7),
        "temporal_softmax_loss": dict(N=3, T=2, V=7, seed=7),
        "rnn_step_backward": dict(N=4, D=2, H=3, seed=7),
        "rnn_backward": dict(N=3, T=8, D=2, H=5, seed=7),
        "loss_and_grads": dict(N=3, T=3, V=5, H=4, seed=7),
        "clip_grad_norm": dict(seed=7),
    }[name]
    CHECKS[name](solution[name], **sizes)


# ----------------------------------------------------------------------------- broken code is rejected

MUTATIONS = [
    # (id, function, old, new, check, expected words in the message)
    (
        "forward: missing tanh",
        "rnn_step_forward",
        "h_t = np.tanh(x_t @ W_xh + h_prev @ W_hh + b_h)",
        "h_t = x_t @ W_xh + h_prev @ W_hh + b_h",
        "rnn_step_forward",
        "before tanh",
    ),
    (
        "forward: transposed W_hh",
        "rnn_step_forward",
        "h_prev @ W_hh + b_h",
        "h_prev @ W_hh.T + b_h",
        "rnn_step_forward",
        "W_hh transposed",
    ),
    (
        "forward: missing bias",
        "rnn_step_forward",
        "h_prev @ W_hh + b_h)",
        "h_prev @ W_hh)",
        "rnn_step_forward",
        "bias b_h is missing",
    ),
    (
        "forward: transposed W_xh",
        "rnn_step_forward",
        "x_t @ W_xh +",
        "x_t @ W_xh.T +",
        "rnn_step_forward",
        "raised ValueError",
    ),
    (
        "sequence: off by one in time (stores h_{t-1})",
        "rnn_forward",
        "        h_t, cache = rnn_step_forward(X[:, t, :], h_t, W_xh, W_hh, b_h)\n        steps.append(h_t)",
        "        steps.append(h_t)\n        h_t, cache = rnn_step_forward(X[:, t, :], h_t, W_xh, W_hh, b_h)",
        "rnn_forward",
        "Off by one in time",
    ),
    (
        "sequence: every step from h0",
        "rnn_forward",
        "rnn_step_forward(X[:, t, :], h_t,",
        "rnn_step_forward(X[:, t, :], h0,",
        "rnn_forward",
        "h_t must use h_{t-1}",
    ),
    (
        "sequence: time-major shape",
        "rnn_forward",
        "np.stack(steps, axis=1)",
        "np.stack(steps, axis=0)",
        "rnn_forward",
        "has shape (6, 3, 5), expected (3, 6, 5)",
    ),
    (
        "sequence: time reversed",
        "rnn_forward",
        "for t in range(T):",
        "for t in reversed(range(T)):",
        "rnn_forward",
        "The sequence is read backward",
    ),
    (
        "loss: sum instead of mean",
        "temporal_softmax_loss",
        "axis=-1).mean()",
        "axis=-1).sum()",
        "temporal_softmax_loss",
        "divide by N * T",
    ),
    (
        "loss: dscores not divided by N*T",
        "temporal_softmax_loss",
        "    dscores /= N * T\n",
        "",
        "temporal_softmax_loss",
        "N * T times too large",
    ),
    (
        "loss: unstable softmax",
        "temporal_softmax_loss",
        "shifted = scores - scores.max(axis=-1, keepdims=True)",
        "shifted = scores",
        "temporal_softmax_loss",
        "np.exp overflows",
    ),
    (
        "loss: wrong sign of dscores",
        "temporal_softmax_loss",
        "    dscores /= N * T\n",
        "    dscores /= -N * T\n",
        "temporal_softmax_loss",
        "wrong sign",
    ),
    (
        "sequence: h0 ignored",
        "rnn_forward",
        "    h_t = h0\n",
        "    h_t = np.zeros_like(h0)\n",
        "rnn_forward",
        "h0 is not used",
    ),
    (
        "forward: a_t stored in the cache instead of h_t",
        "rnn_step_forward",
        "    cache = (x_t, h_prev, h_t, W_xh, W_hh)\n",
        "    cache = (x_t, h_prev, np.arctanh(h_t), W_xh, W_hh)\n",
        "rnn_step_forward",
        "Keep the line `cache = (x_t, h_prev, h_t, W_xh, W_hh)`",
    ),
    (
        "forward: b_h added to the cache",
        "rnn_step_forward",
        "    cache = (x_t, h_prev, h_t, W_xh, W_hh)\n",
        "    cache = (x_t, h_prev, h_t, W_xh, W_hh, b_h)\n",
        "rnn_step_forward",
        "cache is a tuple of 6 items, expected the tuple of 5",
    ),
    (
        "loss: dscores averaged over N only",
        "temporal_softmax_loss",
        "    dscores /= N * T\n",
        "    dscores /= N\n",
        "temporal_softmax_loss",
        "dscores is averaged over N only",
    ),
    (
        "step backward: tanh derivative from h_prev",
        "rnn_step_backward",
        "da_t = dh_t * (1.0 - h_t**2)",
        "da_t = dh_t * (1.0 - h_prev**2)",
        "rnn_step_backward",
        "db_h is the sum over the batch of da_t",
    ),
    (
        "step backward: dW_xh from dh_t instead of da_t",
        "rnn_step_backward",
        "dW_xh = x_t.T @ da_t",
        "dW_xh = x_t.T @ dh_t",
        "rnn_step_backward",
        "It misses the tanh derivative",
    ),
    (
        "step backward: dW_xh with the batch rows misaligned",
        "rnn_step_backward",
        "dW_xh = x_t.T @ da_t",
        "dW_xh = x_t.T @ da_t[::-1]",
        "rnn_step_backward",
        "db_h is right, so da_t is right: dW_xh = x_t^T da_t",
    ),
    (
        "model: h0 ignored",
        "loss_and_grads",
        "states, caches = rnn_forward(X, h0,",
        "states, caches = rnn_forward(X, 0.0 * h0,",
        "loss_and_grads",
        "h0 is not used: pass the argument h0",
    ),
    (
        "model: b_q missing from the scores",
        "loss_and_grads",
        "scores = states @ W_hq + b_q",
        "scores = states @ W_hq",
        "loss_and_grads",
        "b_q is missing",
    ),
    (
        "step backward: missing tanh derivative",
        "rnn_step_backward",
        "da_t = dh_t * (1.0 - h_t**2)",
        "da_t = dh_t",
        "rnn_step_backward",
        "tanh derivative: multiply dh_t by (1 - h_t**2)",
    ),
    (
        "step backward: dW_hh transposed",
        "rnn_step_backward",
        "dW_hh = h_prev.T @ da_t",
        "dW_hh = da_t.T @ h_prev",
        "rnn_step_backward",
        "transpose of the reference: check the order of the matmul",
    ),
    (
        "step backward: dW_xh transposed",
        "rnn_step_backward",
        "dW_xh = x_t.T @ da_t",
        "dW_xh = da_t.T @ x_t",
        "rnn_step_backward",
        "dW_xh has shape (5, 4), expected (4, 5)",
    ),
    (
        "step backward: dh_prev through W_hh untransposed",
        "rnn_step_backward",
        "dh_prev = da_t @ W_hh.T",
        "dh_prev = da_t @ W_hh",
        "rnn_step_backward",
        "flows back through W_hh",
    ),
    (
        "step backward: db_h not summed over the batch",
        "rnn_step_backward",
        "db_h = da_t.sum(axis=0)",
        "db_h = da_t",
        "rnn_step_backward",
        "db_h has shape (3, 5), expected (5,)",
    ),
    (
        "step backward: wrong sign",
        "rnn_step_backward",
        "db_h = da_t.sum(axis=0)",
        "db_h = -da_t.sum(axis=0)",
        "rnn_step_backward",
        "wrong sign",
    ),
    (
        "BPTT: missing tanh derivative (in the step)",
        "rnn_backward",
        "da_t = dh_t * (1.0 - h_t**2)",
        "da_t = dh_t",
        "rnn_backward",
        "tanh derivative",
    ),
    (
        "BPTT: gradients not accumulated over time",
        "rnn_backward",
        "        dW_xh += dW_xh_t\n        dW_hh += dW_hh_t\n        db_h += db_h_t",
        "        dW_xh = dW_xh_t\n        dW_hh = dW_hh_t\n        db_h = db_h_t",
        "rnn_backward",
        "accumulate dW over t",
    ),
    (
        "BPTT: only the last step's gradient (loop forward, overwrite)",
        "rnn_backward",
        "        dW_xh += dW_xh_t\n        dW_hh += dW_hh_t\n        db_h += db_h_t",
        "        if t == T - 1:\n            dW_xh, dW_hh, db_h = dW_xh_t, dW_hh_t, db_h_t",
        "rnn_backward",
        "Only the last time step's gradient is counted",
    ),
    (
        "BPTT: off by one in time (t = 0 skipped)",
        "rnn_backward",
        "for t in reversed(range(T)):",
        "for t in reversed(range(1, T)):",
        "rnn_backward",
        "Off by one in time",
    ),
    (
        "BPTT: off by one in time (last step skipped)",
        "rnn_backward",
        "for t in reversed(range(T)):",
        "for t in reversed(range(T - 1)):",
        "rnn_backward",
        "Off by one in time",
    ),
    (
        "BPTT: dh_prev not carried back",
        "rnn_backward",
        "dstates[:, t] + dh_next, caches[t]",
        "dstates[:, t], caches[t]",
        "rnn_backward",
        "does not flow back through time",
    ),
    (
        "model: output layer gradient from the last step only",
        "loss_and_grads",
        "dW_hq = states.reshape(-1, H).T @ dscores.reshape(-1, V)",
        "dW_hq = states[:, -1].T @ dscores[:, -1]",
        "loss_and_grads",
        "applied at every time step",
    ),
    (
        "model: dW_hh transposed (via the step)",
        "loss_and_grads",
        "dW_hh = h_prev.T @ da_t",
        "dW_hh = da_t.T @ h_prev",
        "loss_and_grads",
        "transpose of the reference",
    ),
    (
        "model: missing key",
        "loss_and_grads",
        ', "b_q": db_q}',
        "}",
        "loss_and_grads",
        "missing ['b_q']",
    ),
    (
        "clip: always rescaled",
        "clip_grad_norm",
        "scale = min(1.0, max_norm / (total_norm + 1e-6))",
        "scale = max_norm / (total_norm + 1e-6)",
        "clip_grad_norm",
        "only scale down, never up",
    ),
    (
        "clip: never clipped",
        "clip_grad_norm",
        "scale = min(1.0, max_norm / (total_norm + 1e-6))",
        "scale = 1.0",
        "clip_grad_norm",
        "Nothing was clipped",
    ),
    (
        "clip: elementwise np.clip",
        "clip_grad_norm",
        "clipped = {name: g * scale for name, g in grads.items()}",
        "clipped = {name: np.clip(g, -max_norm, max_norm) for name, g in grads.items()}",
        "clip_grad_norm",
        "np.clip clips each value",
    ),
    (
        "clip: per-array norm",
        "clip_grad_norm",
        "clipped = {name: g * scale for name, g in grads.items()}",
        "clipped = {name: g * min(1.0, max_norm / np.linalg.norm(g)) for name, g in grads.items()}",
        "clip_grad_norm",
        "its own norm",
    ),
    (
        "clip: squared norm",
        "clip_grad_norm",
        "total_norm = float(np.sqrt(sum(np.sum(g**2) for g in grads.values())))",
        "total_norm = float(sum(np.sum(g**2) for g in grads.values()))",
        "clip_grad_norm",
        "squared norm",
    ),
    (
        "clip: modifies grads in place",
        "clip_grad_norm",
        "clipped = {name: g * scale for name, g in grads.items()}",
        "clipped = grads\n    for g in grads.values():\n        g *= scale",
        "clip_grad_norm",
        "in place",
    ),
]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize(
    "fn_name, old, new, check, words", [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_check_rejects_mutation_with_hint(fn_name, old, new, check, words):
    # fn_name is the function whose code changes; the check may test a caller of it.
    assert fn_name in CHECKS
    fn = mutated(check, old, new)
    with pytest.raises(CheckError) as info:
        CHECKS[check](fn)
    message = str(info.value)
    assert message.startswith("[FAIL]"), message
    assert words in message, message


# Wrappers that break what a correct function returns.


def _nan_like(x):
    if isinstance(x, np.ndarray):
        return np.full(x.shape, np.nan)
    if isinstance(x, dict):
        return {k: _nan_like(v) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return type(x)(_nan_like(v) for v in x)
    if isinstance(x, float):
        return float("nan")
    return x


def _returns_nan(fn):
    def wrapper(*args):
        out = fn(*args)
        return (_nan_like(out[0]), *out[1:])

    return wrapper


def _returns_none(fn):
    def wrapper(*args):
        fn(*args)

    return wrapper


def _raises(fn):
    def wrapper(*args):
        raise ValueError("operands could not be broadcast together")

    return wrapper


def _returns_short_tuple(fn):
    def wrapper(*args):
        return fn(*args)[:-1]

    return wrapper


def _returns_wrong_type(fn):
    def wrapper(*args):
        return "not a result"

    return wrapper


def _returns_transposed_first(fn):
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


def _stub(fn):
    def wrapper(*args):
        raise NotImplementedError()

    wrapper.__name__ = fn.__name__
    return wrapper


WRAPPERS = [
    (_returns_nan, ["non-finite"]),
    (_returns_none, ["returned None", "Did it forget to `return`?"]),
    (_raises, ["raised ValueError: operands could not be broadcast together"]),
    (_returns_short_tuple, ["values, expected"]),
    (_returns_wrong_type, ["returned a str"]),
    (_returns_transposed_first, ["has shape"]),
]


@pytest.mark.parametrize("name", CHECKS)
@pytest.mark.parametrize("wrap, words", WRAPPERS, ids=[w[0].__name__ for w in WRAPPERS])
def test_check_rejects_broken_returns(solution, name, wrap, words):
    if wrap is _returns_transposed_first and name in ("temporal_softmax_loss", "loss_and_grads"):
        words = (
            ["loss has shape (2,)", "one number"]
            if name == "temporal_softmax_loss"
            else ["one number"]
        )
    with pytest.raises(CheckError) as info:
        CHECKS[name](wrap(solution[name]))
    message = str(info.value)
    assert any(w in message for w in words), message


@pytest.mark.parametrize("name", CHECKS)
def test_check_lets_not_implemented_through(solution, name):
    with pytest.raises(NotImplementedError, match=f"{name} is not implemented yet"):
        CHECKS[name](_stub(solution[name]))


def test_check_names_the_unfinished_function_a_caller_uses():
    # rnn_forward is written, but the rnn_step_forward it calls is still the stub.
    fn = mutated(
        "rnn_forward",
        "    h_t = np.tanh(x_t @ W_xh + h_prev @ W_hh + b_h)\n",
        "    raise NotImplementedError()\n",
    )
    with pytest.raises(
        NotImplementedError, match="rnn_forward calls rnn_step_forward, which is not"
    ):
        lc.check_rnn_forward(fn)


def test_check_names_float32(solution):
    def float32(*args):
        h_t, cache = solution["rnn_step_forward"](*args)
        return h_t.astype(np.float32), cache

    with pytest.raises(CheckError, match="It is float32: keep float64"):
        lc.check_rnn_step_forward(float32)


def test_check_rejects_a_non_function():
    with pytest.raises(CheckError, match="expected the function rnn_forward"):
        lc.check_rnn_forward(None)


def test_check_names_the_changed_argument(solution):
    def in_place(x_t, h_prev, W_xh, W_hh, b_h):
        h_prev *= 0.5
        return solution["rnn_step_forward"](x_t, h_prev, W_xh, W_hh, b_h)

    with pytest.raises(CheckError, match=r"changed its argument number 2 \(h_prev\) in place"):
        lc.check_rnn_step_forward(in_place)


def test_check_explains_an_undefined_name(solution):
    def uses_a_missing_helper(x_t, h_prev, W_xh, W_hh, b_h):
        return my_tanh(x_t @ W_xh + h_prev @ W_hh + b_h)  # noqa: F821

    with pytest.raises(CheckError) as info:
        lc.check_rnn_step_forward(uses_a_missing_helper)
    message = str(info.value)
    assert "raised NameError" in message and "exported functions" in message, message
    assert "Compare the shapes" not in message, message


def test_a_wrong_scalar_is_not_called_a_missing_factor(solution):
    def loss_off_by_a_bit(params, X, Y, h0):
        loss, grads = solution["loss_and_grads"](params, X, Y, h0)
        return loss + 0.1, grads

    with pytest.raises(CheckError) as info:
        lc.check_loss_and_grads(loss_off_by_a_bit)
    message = str(info.value)
    assert "loss differs" in message and "missing or extra factor" not in message, message
    assert "Got " in message and "index ()" not in message, message


def test_torch_reference_is_independent_of_numpy(solution):
    """The reference model agrees with the solution, and a finite difference agrees with it."""
    rng = np.random.default_rng(0)
    params = {
        "W_xh": rng.normal(size=(3, 4)),
        "W_hh": rng.normal(size=(4, 4)) * 0.5,
        "b_h": rng.normal(size=4),
        "W_hq": rng.normal(size=(4, 3)),
        "b_q": rng.normal(size=3),
    }
    X, Y, h0 = rng.normal(size=(2, 5, 3)), rng.integers(0, 3, size=(2, 5)), rng.normal(size=(2, 4))
    loss, grads = lc.torch_loss_and_grads(params, X, Y, h0)
    eps = 1e-6
    params["b_q"][1] += eps
    up = lc.torch_loss_and_grads(params, X, Y, h0)[0]
    params["b_q"][1] -= 2 * eps
    down = lc.torch_loss_and_grads(params, X, Y, h0)[0]
    params["b_q"][1] += eps
    assert abs((up - down) / (2 * eps) - grads["b_q"][1]) < 1e-7
    np_loss, np_grads = solution["loss_and_grads"](params, X, Y, h0)
    assert abs(np_loss - loss) < 1e-12
    for k in params:
        np.testing.assert_allclose(np_grads[k], grads[k], rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- the generated lab


def _lab():
    return nbformat.read(LAB, as_version=4)


def _fenced_lines(source: str, begin: str, end: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() == begin:
            inside = True
        elif line.strip() == end:
            inside = False
        elif inside and line.strip() and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


def _unfenced_lines(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() in (labgen.BEGIN_SOLUTION, labgen.BEGIN_HIDDEN):
            inside = True
        elif line.strip() in (labgen.END_SOLUTION, labgen.END_HIDDEN):
            inside = False
        elif not inside:
            lines.append(line)
    return lines


def test_lab_contains_no_solution_code_and_no_hidden_tests():
    nb = nbformat.read(SOLUTION, as_version=4)
    fenced = []
    for cell in nb.cells:
        fenced += _fenced_lines(cell.source, labgen.BEGIN_SOLUTION, labgen.END_SOLUTION)
        fenced += _fenced_lines(cell.source, labgen.BEGIN_HIDDEN, labgen.END_HIDDEN)
    # Lines the lab gives anyway (e.g. a loop header also used in given code) are no secret.
    given = {line.strip() for cell in nb.cells for line in _unfenced_lines(cell.source)}
    secret = [line for line in fenced if re.search(r"\w", line) and line not in given]
    assert len(secret) > 40
    lab_lines = {line.strip() for cell in _lab().cells for line in cell.source.splitlines()}
    leaked = [line for line in secret if line in lab_lines]
    assert not leaked, f"solution or hidden-test lines in the lab: {leaked}"
    text = LAB.read_text()
    for marker in labgen.MARKERS:
        assert marker not in text


def test_lab_has_stubs_no_outputs_and_the_grading_metadata():
    lab, sol = _lab(), nbformat.read(SOLUTION, as_version=4)
    assert len(lab.cells) == len(sol.cells)
    ids, points = [], 0
    for lab_cell, sol_cell in zip(lab.cells, sol.cells):
        meta = _nbgrader(lab_cell)
        assert meta == _nbgrader(sol_cell)
        if lab_cell.cell_type == "code":
            assert lab_cell.outputs == [] and lab_cell.execution_count is None
        if meta.get("solution"):
            assert "raise NotImplementedError()" in lab_cell.source
            assert "# YOUR CODE HERE" in lab_cell.source
        if meta.get("grade") or meta.get("solution"):
            ids.append(meta["grade_id"])
        if meta.get("grade"):
            points += meta["points"]
            assert "raises-exception" in lab_cell.metadata.get("tags", [])
    assert len(ids) == len(set(ids)) == 14
    assert points == 11
    assert sorted(i for i in ids if not i.startswith("test_")) == sorted(CHECKS)


def test_lab_matches_the_generator_output():
    """labs/ is what `make labs` writes (ignoring the tags that need a kernel to compute)."""
    expected = labgen.strip_solutions(nbformat.read(SOLUTION, as_version=4), SOLUTION)
    have = json.loads(LAB.read_text())
    for cell in have["cells"]:
        tags = [t for t in cell["metadata"].get("tags", []) if t != labgen.RAISES]
        cell["metadata"].pop("tags", None)
        if tags:
            cell["metadata"]["tags"] = tags
    assert have == json.loads(labgen.serialize(expected))


@pytest.mark.parametrize("name", CHECKS)
def test_checks_on_the_starter_stubs_raise_not_implemented_or_check_error(name):
    stubs = _namespace(_solution_sources(LAB))
    with pytest.raises((NotImplementedError, CheckError)):
        CHECKS[name](stubs[name])


def test_solution_notebook_prints_relative_errors_below_threshold():
    """The stored full-mode run shows every gradient check passing below 1e-7."""
    text = "".join(
        o.get("text", "")
        for c in nbformat.read(SOLUTION, as_version=4).cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    errors = re.findall(
        r"\[PASS\] d\w+ vs (finite differences|torch autograd): relative error (\S+) < threshold 1e-07",
        text,
    )
    assert len(errors) == 10, text
    assert all(float(e) < 1e-7 for _, e in errors)
    assert "[metric] lab01 hello accuracy: 100%" in text
    assert "[metric] lab01 exploding run accuracy with clipping: 100%" in text
