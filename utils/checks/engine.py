"""The diagnosis engine every lab's checks use.

A lab's check module describes *what* to test; this module does the rest:

- :func:`call` runs a student's function on copies of the inputs, turns a
  crash into a message that says what went in, names an unfinished helper, and
  fails when an input was changed in place;
- :func:`unpack` checks that a tuple of the right length came back, :func:`number`
  that one number did;
- :func:`compare` compares with a reference by relative error and, when they
  differ, tries the lab's list of known wrong variants (:class:`Cause`) and a
  few generic ones (all zeros, wrong sign, transposed, off by a factor), so the
  message names the likely mistake instead of only the largest difference.

The engine knows no lab: thresholds and known wrong variants are arguments.
A known wrong variant is the *output* of a deliberately changed reference (for
example autograd through a model without the tanh derivative), never code a
student could call to answer an exercise.
"""

from __future__ import annotations

import copy as _copy
import inspect
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
import torch

from utils.checks.core import (
    CheckError,
    check_finite,
    check_shape,
    check_type,
    fail,
    rel_error,
    run_safely,
)

__all__ = [
    "Cause",
    "CheckError",
    "as_array",
    "call",
    "call_unchanged",
    "compare",
    "describe",
    "fail",
    "number",
    "tensor",
    "unpack",
]


class Cause(NamedTuple):
    """A known wrong answer and what causes it: if the student's output equals
    ``variant``, the message says ``explanation``."""

    variant: np.ndarray
    explanation: str


def keeps_graph(fn: Callable) -> bool:
    """Whether a tensor ``fn`` returns can carry its autograd graph back to the check.

    True for a function called here; False for the grader's stand-in of a student's
    function, which runs in another process and returns data only. A check then
    grades the values and leaves "is the result still connected to its inputs?" to
    the notebook, where it runs on the student's own function.
    """
    return getattr(fn, "carries_autograd", True)


def describe(x) -> str:
    """``"ndarray (3, 4)"`` or the type's name: how a value is named in a message."""
    if hasattr(x, "shape"):
        return f"{type(x).__name__} {tuple(x.shape)}"
    return type(x).__name__


def _stub_name(error: BaseException, fn: Callable) -> str | None:
    """The name of the function that raised ``error``, when it is not ``fn`` itself."""
    if hasattr(error, "remote_stub"):  # raised in the grader's sandbox, which named it
        return error.remote_stub
    tb = error.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    if code is getattr(fn, "__code__", None) or code.co_name.startswith("<"):
        return None
    return code.co_name


NAME_ERROR_HINT = (
    "It uses a name that is not defined where it runs. If it is a helper function of "
    "yours, run its cell first (and add it to the list of exported functions); if it is a "
    "module or a constant, import or define it in a cell above (and in the export's header)."
)


def call(fn: Callable, label: str, *args):
    """Call the student's ``fn`` on copies of ``args``; name it when it fails.

    ``NotImplementedError`` passes through (the starter lab relies on it), naming
    the unfinished helper when ``fn`` calls one; any other exception becomes a
    :class:`CheckError` that says what went in. Array arguments must come back
    unchanged (the copies are compared with the originals).
    """
    if not callable(fn):
        raise fail(f"expected the function {label}, got a {type(fn).__name__}.")
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    try:
        out = run_safely(fn, *copies, name=label)
    except NotImplementedError as e:
        stub = _stub_name(e.__cause__ or e, fn)
        if stub is None:
            raise
        raise NotImplementedError(
            f"{label} calls {stub}, which is not implemented yet: finish {stub} and run its "
            f"cell, then run this check again."
        ) from e
    except NameError as e:
        raise fail(f"{label} raised NameError: {e}", NAME_ERROR_HINT) from e
    except CheckError:
        raise  # already says what is wrong (e.g. the grader found a lab rule broken)
    except Exception as e:
        inputs = ", ".join(describe(a) for a in args)
        raise fail(
            f"{label} raised {type(e).__name__}: {e}",
            f"It was called with ({inputs}). Compare the shapes in its docstring with yours.",
        ) from e
    try:
        arg_names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        arg_names = []
    for i, (a, c) in enumerate(zip(args, copies)):
        if isinstance(a, np.ndarray) and not np.array_equal(a, c, equal_nan=True):
            which = f" ({arg_names[i]})" if i < len(arg_names) else ""
            raise fail(
                f"{label} changed its argument number {i + 1}{which} in place.",
                "Compute new arrays (a = a * b, not a *= b; copy before writing into a slice) "
                "so the caller's data stays intact.",
            )
    return out


def _same(a, b) -> bool:
    """``a`` and ``b`` hold the same values (tensors, dicts, lists and tuples of them)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def call_unchanged(fn: Callable, label: str, *args):
    """:func:`call`, and a failure when a tensor, list or dict argument (or one inside
    them, such as a state dict's tensors) comes back changed in place."""
    copies = [_copy.deepcopy(a) for a in args]
    out = call(fn, label, *args)
    for i, (a, c) in enumerate(zip(args, copies)):
        if not _same(a, c):
            raise fail(
                f"{label} changed its argument number {i + 1} in place.",
                "Build new tensors and lists for the result (x = x * 2, not x.mul_(2), "
                "x[...] = ... or xs.append(...)); leave the inputs as they were.",
            )
    return out


def unpack(out, label: str, names: tuple[str, ...]):
    """Check that ``out`` is a tuple (or list) of ``len(names)`` items and return it."""
    want = f"({', '.join(names)})"
    if out is None:
        raise fail(f"{label} returned None, expected {want}.", "Did it forget to `return`?")
    if not isinstance(out, tuple | list):
        raise fail(f"{label} returned a {describe(out)}, expected the tuple {want}.")
    if len(out) != len(names):
        raise fail(f"{label} returned {len(out)} values, expected {len(names)}: {want}.")
    return out


def as_array(name: str, x) -> np.ndarray:
    """``x`` as a NumPy array (a tensor is detached and copied); fails on anything else."""
    check_type(name, x)
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


def _generic_cause(got: np.ndarray, want: np.ndarray) -> str | None:
    """Mistakes any lab can make: all zeros, wrong sign, transposed, off by a factor."""
    if np.allclose(got, 0) and not np.allclose(want, 0):
        return "It is all zeros: is it computed (and accumulated) before it is returned?"
    if np.allclose(got, -want, rtol=1e-6, atol=1e-12):
        return "It has the wrong sign."
    if want.ndim == 2 and want.shape[0] == want.shape[1] and rel_error(got, want.T) < 1e-6:
        return "It equals the transpose of the reference: check the order of the matmul."
    denom = float(np.sum(want * want))
    if denom > 0 and want.size > 1:  # any wrong scalar is "the reference times c"
        c = float(np.sum(got * want)) / denom
        if abs(c - 1) > 1e-3 and rel_error(got, c * want) < 1e-6:
            return f"It is the reference times {c:.4g}: a missing or extra factor?"
    return None


def tensor(label: str, out, shape: tuple, hint: str | None = None) -> torch.Tensor:
    """``out`` as a torch tensor of ``shape``, or a failure that says what came instead."""
    if isinstance(out, np.ndarray):
        out = torch.from_numpy(out)
    if not isinstance(out, torch.Tensor):
        raise fail(f"{label} is a {describe(out)}, expected a torch tensor.",
                   "Did the function forget to `return` it?" if out is None else None)  # fmt: skip
    check_shape(label, out, shape, hint=hint)
    return out.detach()


def compare(
    name: str,
    got,
    want: np.ndarray,
    *,
    threshold: float,
    causes: Iterable[Cause | tuple[np.ndarray, str]] = (),
    shape_hint: str | None = None,
    hint: str | None = None,
    dtype: np.dtype | None = np.dtype(np.float64),
    match: float = 1e-5,
) -> float:
    """Compare ``got`` with the reference ``want``; on failure, name the likely cause.

    Args:
        name: how the value is called in messages (``"dW_hh"``).
        got: the student's value (array or tensor).
        want: the reference, computed independently (autograd, ``nn.*`` modules).
        threshold: largest relative error accepted.
        causes: known wrong variants, tried in order; the first whose relative
            error to ``got`` is below ``match`` gives the message.
        shape_hint: said when the shape is wrong.
        hint: said when no known or generic cause matches.
        dtype: the dtype required (``None``: any floating type).

    Returns the relative error. Raises :class:`CheckError` otherwise.
    """
    got = as_array(name, got)
    check_shape(name, got, want.shape, hint=shape_hint)
    check_finite(name, got)
    if dtype is not None and got.dtype != dtype and got.dtype.kind == "f":
        raise fail(
            f"{name} has dtype {got.dtype}, expected {dtype}.",
            f"It is {got.dtype}: keep {dtype} (the inputs are {dtype}; do not cast them).",
        )
    got = got.astype(np.float64)
    err = rel_error(got, want)
    if err < threshold:
        return err
    head = (
        f"{name} differs from the reference: relative error {err:.1e}, threshold {threshold:.0e}."
    )
    for variant, explanation in causes:
        variant = np.asarray(variant)
        if variant.shape == got.shape and rel_error(got, variant) < match:
            raise fail(head, explanation)
    generic = _generic_cause(got, want)
    if generic:
        raise fail(head, generic)
    if want.size == 1:
        where = f" Got {got.item():.10g}, expected {want.item():.10g}."
    else:
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(got - want)), want.shape))
        where = (
            f" The largest difference is at index {idx}: got {got[idx]:.6g}, "
            f"expected {want[idx]:.6g}."
        )
    raise fail(head + where, hint)


def number(name: str, x) -> float:
    """``x`` as one float, or a CheckError saying what it is instead."""
    if x is None:
        raise fail(
            f"{name} is None, expected one number.", "Did the function forget to `return` it?"
        )
    try:
        value = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(f"{name} is a {describe(x)}, expected one number.") from None
    if value.size != 1:
        raise fail(f"{name} has shape {value.shape}, expected one number.")
    return float(value.reshape(()))


def snapshot(caches) -> list:
    """Copies of the arrays in a list of step caches (tuples), to see later whether they changed."""
    return [tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in c) for c in caches]


LIST_HINT = "Read it without changing it: walk back with for t in reversed(range(T))."
VALUES_HINT = "The caches belong to the forward pass: compute new arrays (a = a * b, not a *= b)."


def check_unchanged(
    label: str,
    caches,
    items: list,
    before: list,
    parts: tuple[str, ...],
    *,
    per_step: bool = True,
    list_hint: str = LIST_HINT,
    values_hint: str = VALUES_HINT,
) -> None:
    """A backward pass left the forward pass's caches as they were.

    ``caches``: the list the function received; ``items``: its caches before the call
    (``list(caches)``); ``before``: :func:`snapshot` of them; ``parts``: the names of a
    cache's items. Fails when the list changed (length, order, items) or an array in a
    cache changed in place, naming the item and, with ``per_step``, the step t.
    """
    if not (isinstance(caches, list) and len(caches) == len(items)) or any(
        a is not b for a, b in zip(caches, items)
    ):
        raise fail(
            f"{label} changed the list caches in place (its length, order or items).", list_hint
        )
    for t, (cache, copy) in enumerate(zip(items, before)):
        for i, (part, a, b) in enumerate(zip(parts, cache, copy)):
            if isinstance(b, np.ndarray) and not np.array_equal(a, b):
                step = f" of step t = {t + 1}" if per_step else ""
                raise fail(
                    f"{label} changed {part} (item {i}) of the cache{step} in place.", values_hint
                )


def check_cache(
    name: str,
    cache,
    expected: tuple,
    parts: tuple[str, ...],
    hint: str | None = None,
    step: str = "",
    *,
    threshold: float = 1e-7,
    compare_with=None,
) -> None:
    """A step cache is a tuple of the arrays ``expected``, item by item (named ``parts``).

    ``compare_with(name, got, want, hint=...)`` replaces :func:`compare` (a lab's own
    wrapper, e.g. one that refuses torch tensors); else ``compare`` with ``threshold``.
    """
    if compare_with is None:

        def compare_with(label, got, want, hint=None):
            return compare(label, got, want, threshold=threshold, hint=hint)

    if not isinstance(cache, tuple | list) or len(cache) != len(parts):
        size = f" of {len(cache)} items" if isinstance(cache, tuple | list) else ""
        raise fail(
            f"{name} is a {describe(cache)}{size}, expected the tuple of {len(parts)} "
            f"({', '.join(parts)}).",
            hint,
        )
    for i, (part, value, want) in enumerate(zip(parts, cache, expected)):
        compare_with(f"{name}[{i}] ({part}{step})", value, want, hint=hint)


def numpy_only(name: str, x) -> None:
    """Fail when a NumPy-only lab's function returned a torch tensor."""
    if isinstance(x, torch.Tensor):
        raise fail(
            f"{name} is a torch Tensor, expected a NumPy array.",
            "This lab is NumPy only: no torch in your functions (the checks use it only "
            "for their reference).",
        )
