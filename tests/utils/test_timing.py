"""utils.timing: repeated wall-clock measurements, best of n."""

from __future__ import annotations

import time

import pytest

from utils.timing import best_of, measure


def test_measure_and_best_of():
    calls = []

    def work():
        calls.append(1)
        time.sleep(0.01)

    seconds = measure(work, repeats=3, warmup=2)
    assert len(seconds) == 3 and len(calls) == 5
    assert all(s >= 0.009 for s in seconds)
    assert 0.009 <= best_of(work, repeats=2) < 0.5


def test_best_of_is_the_minimum(monkeypatch):
    ticks = iter([0.0, 5.0, 10.0, 11.0, 20.0, 23.0])  # durations 5, 1, 3
    monkeypatch.setattr("utils.timing.time.perf_counter", lambda: next(ticks))
    assert best_of(lambda: None, repeats=3) == 1.0


@pytest.mark.parametrize(
    "kwargs", [{"repeats": 0}, {"repeats": 1.5}, {"warmup": -1}, {"repeats": True}]
)
def test_timing_rejects_bad_counts(kwargs):
    with pytest.raises(ValueError, match="must be an int"):
        measure(lambda: None, **kwargs)


def test_timing_rejects_non_callables():
    with pytest.raises(TypeError, match="function to call"):
        best_of(3.0)
