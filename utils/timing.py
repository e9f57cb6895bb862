"""A tiny timer for speed comparisons: the best of a few repeats.

Timings on a shared or busy machine are noisy, and the noise only ever adds
time. The *minimum* over a few repeats is therefore the most stable estimate of
what the code itself costs (the same reasoning as Python's ``timeit``)::

    from utils.timing import best_of
    seconds = best_of(lambda: run_one_epoch(model, batches), repeats=3)

Timings depend on the machine, the PyTorch build and the thread count: compare
numbers measured in the same run, never across machines.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def measure(fn: Callable[[], object], *, repeats: int = 3, warmup: int = 0) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn()``, after ``warmup`` untimed calls.

    Returns a list of ``repeats`` floats, in call order.
    """
    if not callable(fn):
        raise TypeError(f"measure needs a function to call, got {type(fn).__name__}")
    _check_count("repeats", repeats, 1)
    _check_count("warmup", warmup, 0)
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def best_of(fn: Callable[[], object], *, repeats: int = 3, warmup: int = 0) -> float:
    """The shortest wall-clock time, in seconds, of ``repeats`` calls of ``fn()``.

    ``warmup`` untimed calls come first (e.g. to let PyTorch allocate its buffers).
    """
    return min(measure(fn, repeats=repeats, warmup=warmup))
