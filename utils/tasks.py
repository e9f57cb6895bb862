"""Synthetic sequence tasks: small, deterministic by seed, each hard in one way.

| task | inputs -> targets | what makes it hard |
| --- | --- | --- |
| :func:`adding_problem` | ``(N, T, 2)`` floats -> ``(N,)`` | two numbers far apart must be remembered |
| :func:`copy_task` | ``(N, T)`` ids -> ``(N, T)`` ids | symbols must survive a long blank delay |
| :func:`reversal_task` | ``(N, T)`` ids -> ``(N, T)`` ids | the first input is needed for the last output |
| :func:`counting_task` | strings -> counts | a running count, not a pattern, must be kept |
| :func:`date_task` | date strings -> ISO strings | many surface forms, one normal form (seq2seq) |

Every function takes a ``seed`` and returns the same data for the same
arguments on any machine (a private ``torch.Generator`` or ``random.Random``;
the global random state is neither used nor changed).
"""

from __future__ import annotations

import datetime as _dt
import random

import torch

__all__ = ["COPY_BLANK", "DATE_FORMATS", "adding_problem", "copy_task", "counting_task",
           "date_task", "encode_strings", "reversal_task"]  # fmt: skip


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _generator(seed: int) -> torch.Generator:
    _check_int("seed", seed, 0)
    return torch.Generator().manual_seed(seed)


def adding_problem(n: int, num_steps: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem (Hochreiter & Schmidhuber, 1997).

    Hard because: the two marked numbers can be up to ``T - 1`` steps apart and the
    target depends on both, so the gradient must flow over a long time lag.

    Channel 0 holds numbers drawn uniformly from ``[0, 1)``. Channel 1 is 0
    everywhere except at exactly two positions, one in the first half
    (``t < T // 2``) and one in the second half (``t >= T // 2``), where it is 1.
    The target is the sum of the two marked numbers. Always predicting 1.0 gives a
    mean squared error of about 0.167: a model must beat that to have learned anything.

    Args:
        n: number of sequences ``N`` (>= 1).
        num_steps: sequence length ``T`` (>= 2).
        seed: random seed.

    Returns:
        ``X: (N, T, 2)`` float32 and ``Y: (N,)`` float32.
    """
    _check_int("n", n, 1)
    _check_int("num_steps", num_steps, 2)
    g = _generator(seed)
    half = num_steps // 2
    values = torch.rand(n, num_steps, generator=g)
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, num_steps, (n,), generator=g)
    marks = torch.zeros(n, num_steps)
    rows = torch.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    X = torch.stack([values, marks], dim=-1)
    Y = values[rows, first] + values[rows, second]
    return X, Y


COPY_BLANK = 0
"""Token id of the blank in :func:`copy_task` (ids ``1..num_symbols`` are symbols,
``num_symbols + 1`` is the delimiter)."""


def copy_task(
    n: int, num_steps: int, num_symbols: int = 8, seq_len: int = 10, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The copy (memory) task of Arjovsky, Shah & Bengio (2016).

    Hard because: the symbols must be held, unchanged, through ``num_steps`` blank
    steps; a model that forgets can do no better than guessing
    (cross-entropy ``seq_len * log(num_symbols) / (num_steps + 2 * seq_len)``).

    Vocabulary (``V = num_symbols + 2`` ids): ``0`` blank, ``1..num_symbols`` the
    symbols, ``num_symbols + 1`` the delimiter ("now copy"). With delay
    ``num_steps`` the total length is ``T = num_steps + 2 * seq_len``::

        X = s_1 .. s_L | blank x (num_steps - 1) | delimiter | blank x L
        Y = blank x (num_steps + L)                          | s_1 .. s_L

    Args:
        n: number of sequences ``N`` (>= 1).
        num_steps: the delay between the last symbol and the delimiter (>= 1).
        num_symbols: number of distinct symbols (>= 1).
        seq_len: number of symbols to copy, ``L`` (>= 1).
        seed: random seed.

    Returns:
        ``X: (N, T)`` and ``Y: (N, T)`` int64 token ids, ``T = num_steps + 2 * seq_len``.
    """
    _check_int("n", n, 1)
    _check_int("num_steps", num_steps, 1)
    _check_int("num_symbols", num_symbols, 1)
    _check_int("seq_len", seq_len, 1)
    g = _generator(seed)
    T = num_steps + 2 * seq_len
    symbols = torch.randint(1, num_symbols + 1, (n, seq_len), generator=g)
    X = torch.full((n, T), COPY_BLANK, dtype=torch.long)
    Y = torch.full((n, T), COPY_BLANK, dtype=torch.long)
    X[:, :seq_len] = symbols
    X[:, seq_len + num_steps - 1] = num_symbols + 1
    Y[:, -seq_len:] = symbols
    return X, Y


def reversal_task(
    n: int,
    seq_len: int,
    vocab_size: int = 10,
    seed: int = 0,
    *,
    variable_length: bool = False,
    min_len: int = 1,
):
    """Sequence reversal: the target is the input read backwards.

    Hard because: the first output is the last input and the last output is the
    first input, so an encoder-decoder must carry the whole sequence in its state.

    Id ``0`` is the padding id and never a token; tokens are ``1..vocab_size - 1``.
    With ``variable_length=True`` each sequence has a length drawn uniformly from
    ``[min_len, seq_len]``, positions past it are 0 in ``X`` and ``Y``, and only
    the first ``length`` tokens are reversed.

    Args:
        n: number of sequences ``N`` (>= 1).
        seq_len: (maximum) sequence length ``T`` (>= 1).
        vocab_size: ``V`` including the padding id (>= 2).
        seed: random seed.
        variable_length: draw a length per sequence and pad.
        min_len: shortest length when ``variable_length`` (1 <= min_len <= seq_len).

    Returns:
        ``(X, Y)`` with ``X, Y: (N, T)`` int64, or ``(X, Y, lengths)`` with
        ``lengths: (N,)`` int64 when ``variable_length=True``.
    """
    _check_int("n", n, 1)
    _check_int("seq_len", seq_len, 1)
    _check_int("vocab_size", vocab_size, 2)
    g = _generator(seed)
    X = torch.randint(1, vocab_size, (n, seq_len), generator=g)
    if not variable_length:
        return X, X.flip(1)
    _check_int("min_len", min_len, 1)
    if min_len > seq_len:
        raise ValueError(f"min_len ({min_len}) must not exceed seq_len ({seq_len})")
    lengths = torch.randint(min_len, seq_len + 1, (n,), generator=g)
    positions = torch.arange(seq_len).expand(n, seq_len)
    X = X.masked_fill(positions >= lengths[:, None], 0)
    # Position t of the target reads position length - 1 - t of the input.
    source = (lengths[:, None] - 1 - positions).clamp(min=0)
    Y = X.gather(1, source).masked_fill(positions >= lengths[:, None], 0)
    return X, Y, lengths


def counting_task(
    n: int, seq_len: int, alphabet: str = "abc", target: str = "a", seed: int = 0
) -> tuple[list[str], torch.Tensor]:
    """Character counting: how often does ``target`` occur in the string?

    Hard because: the answer is a count that grows over the whole string, so the
    hidden state must act as a counter rather than recognise a local pattern.

    Characters are drawn uniformly from ``alphabet``. Encode the strings with
    :func:`encode_strings` to feed them to a model.

    Args:
        n: number of strings ``N`` (>= 1).
        seq_len: length of every string ``T`` (>= 1).
        alphabet: the distinct characters to draw from.
        target: the single character to count (must be in ``alphabet``).
        seed: random seed.

    Returns:
        ``strings``: a list of ``N`` strings of length ``T``;
        ``counts: (N,)`` int64, occurrences of ``target`` in each string.
    """
    _check_int("n", n, 1)
    _check_int("seq_len", seq_len, 1)
    if not isinstance(alphabet, str) or not alphabet:
        raise ValueError(f"alphabet must be a non-empty string, got {alphabet!r}")
    if len(set(alphabet)) != len(alphabet):
        raise ValueError(f"alphabet has repeated characters: {alphabet!r}")
    if not isinstance(target, str) or len(target) != 1 or target not in alphabet:
        raise ValueError(f"target must be one character of alphabet {alphabet!r}, got {target!r}")
    g = _generator(seed)
    ids = torch.randint(0, len(alphabet), (n, seq_len), generator=g)
    strings = ["".join(alphabet[i] for i in row) for row in ids.tolist()]
    counts = (ids == alphabet.index(target)).sum(dim=1)
    return strings, counts


def encode_strings(strings, alphabet: str, one_hot: bool = False) -> torch.Tensor:
    """Encode equal-length strings as character ids (their index in ``alphabet``).

    Args:
        strings: ``N`` strings, all of length ``T``, using only ``alphabet``.
        alphabet: the characters, in id order.
        one_hot: return one-hot vectors instead of ids.

    Returns:
        ``(N, T)`` int64 ids, or ``(N, T, len(alphabet))`` float32 when ``one_hot``.
    """
    strings = list(strings)
    if not strings:
        raise ValueError("strings is empty: nothing to encode")
    lengths = {len(s) for s in strings}
    if len(lengths) != 1:
        raise ValueError(f"strings must all have the same length, got lengths {sorted(lengths)}")
    index = {c: i for i, c in enumerate(alphabet)}
    ids = []
    for s in strings:
        unknown = set(s) - index.keys()
        if unknown:
            raise ValueError(f"string {s!r} has characters {sorted(unknown)} not in {alphabet!r}")
        ids.append([index[c] for c in s])
    X = torch.tensor(ids, dtype=torch.long)
    if one_hot:
        return torch.nn.functional.one_hot(X, len(alphabet)).float()
    return X


_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _render(d: _dt.date, fmt: str) -> str:
    month, weekday = _MONTHS[d.month - 1], _WEEKDAYS[d.weekday()]
    return {
        "d_month_yyyy": f"{d.day} {month} {d.year}",  # 3 March 1998
        "dd/mm/yy": f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}",  # 03/03/98
        "weekday_month_d_yyyy": f"{weekday}, {month} {d.day}, {d.year}",  # Tuesday, March 3, 1998
        "month_d_yyyy": f"{month} {d.day}, {d.year}",  # March 3, 1998
        "d_mon_yyyy": f"{d.day} {month[:3]} {d.year}",  # 3 Mar 1998
        "dd-mon-yyyy": f"{d.day:02d}-{month[:3].upper()}-{d.year}",  # 03-MAR-1998
        "dd.mm.yyyy": f"{d.day:02d}.{d.month:02d}.{d.year}",  # 03.03.1998
        "mon_d_yy": f"{month[:3].lower()} {d.day} '{d.year % 100:02d}",  # mar 3 '98
    }[fmt]


DATE_FORMATS = ("d_month_yyyy", "dd/mm/yy", "weekday_month_d_yyyy", "month_d_yyyy",
                "d_mon_yyyy", "dd-mon-yyyy", "dd.mm.yyyy", "mon_d_yy")  # fmt: skip
"""Names of the source formats of :func:`date_task`, e.g. ``"dd/mm/yy"`` -> ``03/03/98``."""

_FIRST_DAY, _LAST_DAY = _dt.date(1950, 1, 1), _dt.date(2049, 12, 31)


def date_task(n: int, seed: int = 0, formats=None) -> list[tuple[str, str]]:
    """Date normalisation: human-readable dates -> ISO ``YYYY-MM-DD``.

    Hard because: one date has many surface forms (names, abbreviations, numbers,
    two-digit years, weekdays) that a seq2seq model must map to a single form.

    Dates are uniform over 1950-01-01 .. 2049-12-31, so every two-digit year is
    unambiguous (``50``-``99`` -> 19xx, ``00``-``49`` -> 20xx). Numeric dates are
    day first (``03/03/98`` is 3 March 1998). The format is drawn uniformly from
    ``formats`` (default: all of :data:`DATE_FORMATS`).

    Example pairs: ``("3 March 1998", "1998-03-03")``,
    ``("Tuesday, March 3, 1998", "1998-03-03")``, ``("03/03/98", "1998-03-03")``.

    Args:
        n: number of pairs (>= 1).
        seed: random seed.
        formats: names from :data:`DATE_FORMATS` to draw from.

    Returns:
        A list of ``n`` ``(source, target)`` string pairs.
    """
    _check_int("n", n, 1)
    _check_int("seed", seed, 0)
    formats = DATE_FORMATS if formats is None else tuple(formats)
    if not formats:
        raise ValueError("formats is empty: give at least one name from DATE_FORMATS")
    unknown = [f for f in formats if f not in DATE_FORMATS]
    if unknown:
        raise ValueError(f"unknown date formats {unknown}; choose from {list(DATE_FORMATS)}")
    rng = random.Random(seed)
    span = (_LAST_DAY - _FIRST_DAY).days
    pairs = []
    for _ in range(n):
        d = _FIRST_DAY + _dt.timedelta(days=rng.randint(0, span))
        pairs.append((_render(d, rng.choice(formats)), d.isoformat()))
    return pairs
