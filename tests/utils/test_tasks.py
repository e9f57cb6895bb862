"""Synthetic sequence tasks: determinism, shapes, targets checked independently, bad input."""

from __future__ import annotations

import datetime as dt

import pytest
import torch

from utils.tasks import (
    COPY_BLANK,
    DATE_FORMATS,
    adding_problem,
    copy_task,
    counting_task,
    date_task,
    encode_strings,
    reversal_task,
)


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize(
    "make",
    [
        lambda s: adding_problem(16, 20, seed=s),
        lambda s: copy_task(16, 5, seed=s),
        lambda s: reversal_task(16, 7, seed=s),
        lambda s: reversal_task(16, 7, seed=s, variable_length=True),
        lambda s: counting_task(16, 12, seed=s),
        lambda s: date_task(16, seed=s),
    ],
    ids=["adding", "copy", "reversal", "reversal-var", "counting", "dates"],
)
def test_deterministic_by_seed_and_seed_matters(make):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    assert _same(make(0), make(0))
    assert not _same(make(0), make(1))
    assert torch.equal(state, torch.get_rng_state()), "the global RNG state must not change"


def test_adding_problem():
    X, Y = adding_problem(200, 11, seed=3)
    assert X.shape == (200, 11, 2) and Y.shape == (200,)
    assert X.dtype == Y.dtype == torch.float32
    half = 11 // 2
    for x, y in zip(X, Y):
        marked = [t for t in range(11) if x[t, 1] == 1.0]
        assert len(marked) == 2 and marked[0] < half <= marked[1]
        assert set(x[:, 1].tolist()) <= {0.0, 1.0}
        assert 0.0 <= x[:, 0].min() and x[:, 0].max() < 1.0
        assert y.item() == pytest.approx(x[marked[0], 0].item() + x[marked[1], 0].item())


def test_adding_problem_shortest():
    X, Y = adding_problem(5, 2)
    assert torch.all(X[:, :, 1] == 1.0)
    assert torch.allclose(Y, X[:, :, 0].sum(1))


def test_copy_task_layout():
    n, delay, L, K = 50, 7, 4, 5
    X, Y = copy_task(n, delay, num_symbols=K, seq_len=L, seed=2)
    T = delay + 2 * L
    assert X.shape == Y.shape == (n, T) and X.dtype == Y.dtype == torch.long
    delimiter = K + 1
    for x, y in zip(X.tolist(), Y.tolist()):
        symbols = x[:L]
        assert all(1 <= s <= K for s in symbols)
        assert x[L:] == [COPY_BLANK] * (delay - 1) + [delimiter] + [COPY_BLANK] * L
        assert y == [COPY_BLANK] * (delay + L) + symbols
    assert set(X[:, :L].unique().tolist()) == set(range(1, K + 1))


def test_reversal_fixed_length():
    X, Y = reversal_task(30, 6, vocab_size=4, seed=1)
    assert X.shape == Y.shape == (30, 6) and X.dtype == torch.long
    assert X.min() >= 1 and X.max() <= 3
    for x, y in zip(X.tolist(), Y.tolist()):
        assert y == x[::-1]


def test_reversal_variable_length():
    X, Y, lengths = reversal_task(100, 8, vocab_size=5, seed=4, variable_length=True, min_len=2)
    assert X.shape == Y.shape == (100, 8) and lengths.shape == (100,)
    assert lengths.min() >= 2 and lengths.max() <= 8 and len(set(lengths.tolist())) > 3
    for x, y, k in zip(X.tolist(), Y.tolist(), lengths.tolist()):
        assert all(1 <= v <= 4 for v in x[:k]) and x[k:] == [0] * (8 - k)
        assert y[:k] == x[:k][::-1] and y[k:] == [0] * (8 - k)


def test_counting_task_and_encoding():
    strings, counts = counting_task(40, 15, alphabet="xyz", target="y", seed=5)
    assert len(strings) == 40 and counts.shape == (40,) and counts.dtype == torch.long
    assert all(len(s) == 15 and set(s) <= set("xyz") for s in strings)
    assert counts.tolist() == [s.count("y") for s in strings]
    ids = encode_strings(strings, "xyz")
    assert ids.shape == (40, 15) and ids.dtype == torch.long
    assert "".join("xyz"[i] for i in ids[0].tolist()) == strings[0]
    one_hot = encode_strings(strings, "xyz", one_hot=True)
    assert one_hot.shape == (40, 15, 3) and one_hot.dtype == torch.float32
    assert torch.equal(one_hot.argmax(-1), ids) and torch.all(one_hot.sum(-1) == 1)


_PARSERS = {
    "d_month_yyyy": "%d %B %Y",
    "dd/mm/yy": "%d/%m/%y",
    "weekday_month_d_yyyy": "%A, %B %d, %Y",
    "month_d_yyyy": "%B %d, %Y",
    "d_mon_yyyy": "%d %b %Y",
    "dd-mon-yyyy": "%d-%b-%Y",
    "dd.mm.yyyy": "%d.%m.%Y",
    "mon_d_yy": "%b %d '%y",
}


@pytest.mark.parametrize("fmt", DATE_FORMATS)
def test_date_task_each_format_parses_to_target(fmt):
    pairs = date_task(60, seed=7, formats=[fmt])
    for source, target in pairs:
        parsed = dt.datetime.strptime(source, _PARSERS[fmt]).date()  # C locale names
        if "%y" in _PARSERS[fmt] and parsed.year > 2049:  # documented pivot: 50-99 -> 19xx
            parsed = parsed.replace(year=parsed.year - 100)
        assert parsed.isoformat() == target, (source, target)
        if fmt.startswith("weekday"):  # strptime does not check the weekday itself
            assert source.split(",")[0] == parsed.strftime("%A"), source
        assert dt.date(1950, 1, 1) <= parsed <= dt.date(2049, 12, 31)


def test_date_task_examples_and_mix():
    pairs = date_task(400, seed=0)
    assert len(pairs) == 400 and all(len(t) == 10 and t[4] == t[7] == "-" for _, t in pairs)
    assert len({s for s, _ in pairs}) > 350  # mostly distinct sources
    # Every format is used.
    used = {fmt for source, _ in pairs for fmt, p in _PARSERS.items() if _parses(source, p)}
    assert used == set(DATE_FORMATS)


def _parses(source: str, pattern: str) -> bool:
    try:
        dt.datetime.strptime(source, pattern)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: adding_problem(0, 10), "n must be at least 1"),
        (lambda: adding_problem(4, 1), "num_steps must be at least 2"),
        (lambda: adding_problem(4, 10.0), "num_steps must be an int"),
        (lambda: adding_problem(4, 10, seed=-1), "seed must be at least 0"),
        (lambda: copy_task(4, 0), "num_steps must be at least 1"),
        (lambda: copy_task(4, 5, num_symbols=0), "num_symbols must be at least 1"),
        (lambda: copy_task(4, 5, seq_len=True), "seq_len must be an int"),
        (lambda: reversal_task(4, 0), "seq_len must be at least 1"),
        (lambda: reversal_task(4, 5, vocab_size=1), "vocab_size must be at least 2"),
        (lambda: reversal_task(4, 5, variable_length=True, min_len=6), "min_len .6. must not"),
        (lambda: counting_task(4, 5, alphabet=""), "alphabet must be a non-empty"),
        (lambda: counting_task(4, 5, alphabet="aab"), "repeated characters"),
        (lambda: counting_task(4, 5, target="z"), "target must be one character"),
        (lambda: encode_strings(["ab", "abc"], "abc"), "same length"),
        (lambda: encode_strings(["abd"], "abc"), "not in"),
        (lambda: encode_strings([], "abc"), "strings is empty"),
        (lambda: date_task(0), "n must be at least 1"),
        (lambda: date_task(3, formats=["yyyy"]), "unknown date formats"),
        (lambda: date_task(3, formats=[]), "formats is empty"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
