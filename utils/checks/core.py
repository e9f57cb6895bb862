"""The generic checks: shape, dtype, finiteness, closeness, gradients.

Every check either prints one ``[PASS] ...`` line or raises :class:`CheckError`
whose message says what was expected, what came, and the likely cause, e.g.::

    [FAIL] h_t has shape (3, 5), expected (5, 3). Did you transpose W_hh?

Checks compare against *independent* computations (finite differences, torch
autograd, ``nn.RNN`` with copied weights), never against a copy of an answer.
All functions accept NumPy arrays or torch tensors.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence

import numpy as np
import torch


class CheckError(AssertionError):
    """A self-check failed; the message says why."""


def fail(message: str, hint: str | None = None) -> CheckError:
    """A :class:`CheckError` reading ``[FAIL] message hint`` (raise it)."""
    return CheckError(f"[FAIL] {message}" + (f" {hint}" if hint else ""))


def passed(message: str) -> None:
    """Print one ``[PASS]`` line."""
    print(f"[PASS] {message}")


def to_numpy(x) -> np.ndarray:
    """A NumPy copy of ``x`` (tensor, array, list or scalar), detached from autograd."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _shape(x) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else tuple(np.shape(x))


def check_type(name: str, x, expected=(np.ndarray, torch.Tensor)) -> None:
    """Fail unless ``x`` is an array or tensor (or the given type); catches ``None``."""
    if not isinstance(x, expected):
        kinds = expected if isinstance(expected, tuple) else (expected,)
        want = " or ".join(k.__name__ for k in kinds)
        hint = "Did the function forget to `return` it?" if x is None else None
        raise fail(f"{name} is a {type(x).__name__}, expected a {want}.", hint)


def check_shape(name: str, x, expected: Sequence[int], hint: str | None = None) -> None:
    """Fail with ``"{name} has shape (a, b), expected (c, d)"`` when shapes differ."""
    check_type(name, x)
    got, want = _shape(x), tuple(expected)
    if got != want:
        if hint is None and sorted(got) == sorted(want) and len(got) > 1:
            hint = "The sizes are right but in the wrong order: is something transposed?"
        raise fail(f"{name} has shape {got}, expected {want}.", hint)


def check_dtype(name: str, x, expected) -> None:
    """Fail unless ``x`` has dtype ``expected`` (a NumPy or torch dtype)."""
    check_type(name, x)
    if x.dtype != expected:
        want = np.dtype(expected) if isinstance(x, np.ndarray) else expected
        raise fail(f"{name} has dtype {x.dtype}, expected {want}.")


def check_finite(name: str, x) -> None:
    """Fail if ``x`` holds NaN or inf, saying how many and where the first one is."""
    check_type(name, x)
    a = to_numpy(x)
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(a).any() else "inf"
        raise fail(
            f"{name} contains {int(bad.sum())} non-finite value(s) ({kind}), first at index {first}.",
            "Look for a division by zero, log of 0, or a learning rate that diverged.",
        )


def rel_error(x, y) -> float:
    """Maximum relative error ``max |x - y| / max(1e-8, |x| + |y|)`` (CS231n's measure)."""
    a, b = to_numpy(x).astype(np.float64), to_numpy(y).astype(np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def check_close(
    name: str,
    actual,
    expected,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    hint: str | None = None,
    quiet: bool = False,
) -> None:
    """Fail unless ``actual`` matches ``expected`` elementwise (shape, finiteness, value).

    The message names the largest difference and where it is, so a student sees
    *which* entry is wrong, not just that something is.
    """
    want = to_numpy(expected)
    check_shape(name, actual, want.shape)
    check_finite(name, actual)
    got = to_numpy(actual).astype(np.float64)
    want = want.astype(np.float64)
    diff = np.abs(got - want)
    tol = atol + rtol * np.abs(want)
    if (diff > tol).any():
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(diff - tol), diff.shape))
        at = f" at index {idx}" if idx else ""
        raise fail(
            f"{name} differs from the reference: max |difference| {diff.max():.3g}{at} "
            f"(got {got[idx]:.6g}, expected {want[idx]:.6g}; tolerance {atol:g} + {rtol:g}*|expected|).",
            hint,
        )
    if not quiet:
        passed(f"{name} matches the reference (max |difference| {diff.max():.1e}).")


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to array ``x``.

    ``x`` is perturbed in place (and restored), so ``f`` must read it, e.g.
    ``numerical_gradient(lambda: loss(params), params["W_hh"])``. Use float64.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"numerical_gradient needs a NumPy array, got {type(x).__name__}")
    if x.dtype != np.float64:
        raise TypeError(f"use float64 for gradient checks (got {x.dtype}): float32 is too coarse")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        f_plus = float(f())
        x[i] = old - h
        f_minus = float(f())
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
        it.iternext()
    return grad


def check_gradient(
    name: str, analytic, numeric, *, threshold: float = 1e-7, hint: str | None = None
) -> float:
    """Compare an analytic gradient with a reference one by relative error.

    Prints ``[PASS] dW_hh: relative error 3.2e-10 < threshold 1e-07`` or raises a
    :class:`CheckError` with the same numbers. Returns the relative error.
    """
    check_shape(name, analytic, _shape(numeric))
    check_finite(name, analytic)
    err = rel_error(analytic, numeric)
    if not err < threshold:
        if hint is None:
            a, n = to_numpy(analytic), to_numpy(numeric)
            if np.allclose(a, 0) and not np.allclose(n, 0):
                hint = "It is all zeros: is the gradient computed and returned?"
            elif np.allclose(a, -n, rtol=1e-4, atol=1e-8):
                hint = "It has the wrong sign."
            elif n.ndim == 2 and n.shape[0] == n.shape[1] and np.allclose(a, n.T, rtol=1e-4):
                hint = "It equals the transpose of the reference: check the order of the matmul."
        raise fail(
            f"{name}: relative error {err:.1e} is not below threshold {threshold:.0e}.", hint
        )
    passed(f"{name}: relative error {err:.1e} < threshold {threshold:.0e}")
    return err


def check_scalar(name: str, value, *, low: float | None = None, high: float | None = None) -> float:
    """Fail unless ``value`` is one finite number, optionally within ``[low, high]``."""
    try:
        v = float(to_numpy(value))
    except (TypeError, ValueError):
        raise fail(
            f"{name} should be a single number, got {type(value).__name__} {_shape(value)}."
        ) from None
    if not np.isfinite(v):
        raise fail(f"{name} is {v}, expected a finite number.")
    if low is not None and v < low:
        raise fail(f"{name} is {v:.4g}, expected at least {low:g}.")
    if high is not None and v > high:
        raise fail(f"{name} is {v:.4g}, expected at most {high:g}.")
    return v


def run_safely(fn: Callable, *args, name: str | None = None, **kwargs):
    """Call a student's function, naming it if it is still a stub.

    ``NotImplementedError`` stays ``NotImplementedError`` (the starter lab relies on
    that), with a message that says which function to write.
    """
    label = name or getattr(fn, "__name__", "the function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as e:
        raise NotImplementedError(
            f"{label} is not implemented yet: replace `raise NotImplementedError()` with your code."
        ) from e


_SALT: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "workbook_check_salt", default=None
)


def seeded(seed: int) -> np.random.Generator:
    """The random generator of a check's inputs for ``seed``.

    In a notebook it is ``np.random.default_rng(seed)``: the same inputs every run,
    so a failing check fails the same way twice. While the grader grades
    (:func:`fresh_inputs`), every seed is mixed with a number drawn for that grading
    run, so no submission can know the inputs of a test in advance.
    """
    salt = _SALT.get()
    return np.random.default_rng(seed if salt is None else [int(salt), int(seed)])


class fresh_inputs:  # noqa: N801 - used like a function: ``with fresh_inputs(salt):``
    """Within the block, :func:`seeded` draws inputs specific to ``salt`` (None: off)."""

    def __init__(self, salt: int | None):
        self.salt = salt

    def __enter__(self):
        self.token = _SALT.set(self.salt)
        return self

    def __exit__(self, *exc):
        _SALT.reset(self.token)
        return False
