"""Lab 4: the check of the contiguous batches (``batchify``).

The reference indexes the stream directly: batch ``k``, row ``b``, step ``t`` holds
character ``b * L + k * T + t`` of the stream, with ``L = (n - 1) // B`` characters per
row, and the targets are the characters one further on. Known wrong answers (rows taken
column-wise, inputs and targets swapped, rows of K T characters, no transpose) come from
the same indexing with one thing changed. A second stream, of a multiple of B ids, catches
rows of n // B characters (the last character has no target). Shapes::

    ids (n,) int64   X, Y (K, B, T) int64, K = L // T
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import CheckError, passed, seeded
from utils.checks.engine import Cause, call_unchanged, compare, fail, unpack
from utils.checks.lab04.common import long_tensor

__all__ = ["check_batchify"]


def _layout(n: int, B: int, T: int, *, shift: int = 1, columns: bool = False):
    """Indices into the stream of X and Y (K, B, T) under the lab's layout (``columns``: the
    known wrong variant that reads the rows column-wise)."""
    L = (n - 1) // B
    K = L // T
    k, b, t = np.meshgrid(np.arange(K), np.arange(B), np.arange(T), indexing="ij")
    pos = k * T + t
    x = pos * B + b if columns else b * L + pos
    return x, (pos + shift) * B + b if columns else x + shift


def check_batchify(fn: Callable, *, n: int = 1_003, B: int = 4, T: int = 7, seed: int = 0) -> None:
    """Check ``batchify(ids, batch_size, seq_len) -> (X, Y)`` on a random stream of ``n``
    ids: shapes (K, B, T), Y is X shifted by one character, row b of batch k + 1 continues
    row b of batch k, and every id is where the lab's layout puts it; then the same on a
    stream whose length is a multiple of B (its last character has no target)."""
    rng = seeded(seed)
    for m in dict.fromkeys((n, n - n % B)):  # n, then a multiple of B when n is not one
        try:
            _check_stream(fn, torch.from_numpy(rng.integers(0, 65, size=m)).long(), B, T)
        except CheckError as e:
            # a multiple of B: the added stream, or the given one where batchify raised
            if m % B == 0 and (m != n or " raised " in str(e)):
                raise fail(f"with n = {m} ids, a multiple of B = {B}: "
                           f"{str(e).removeprefix('[FAIL] ')}", "The last character has no "
                           "target, so a row holds L = (n - 1) // B characters, not n // B (X "
                           "stops one character before the end, Y ends there).") from e  # fmt: skip
            raise
    passed(f"batchify: {n} ids -> X, Y of shape ({(n - 1) // B // T}, {B}, {T}); Y is X shifted "
           "by one, each row continues from batch to batch, every id in its place.")  # fmt: skip


def _check_stream(fn: Callable, ids: torch.Tensor, B: int, T: int) -> None:
    n = len(ids)
    out = unpack(call_unchanged(fn, "batchify", ids, B, T), "batchify", ("X", "Y"))
    L = (n - 1) // B
    K = L // T
    hint = (
        f"{n} ids in {B} rows of L = (n - 1) // B = {L} characters (the targets need one more), "
        f"cut into K = L // T = {K} chunks of T = {T}: X and Y are (K, B, T), the last "
        "incomplete chunk dropped."
    )
    X, Y = (long_tensor(f"batchify(...)[{i}]", v, (K, B, T), hint) for i, v in enumerate(out))
    want_x, want_y = _layout(n, B, T)
    stream = ids.numpy()
    x, y = X.numpy(), Y.numpy()
    causes = [
        Cause(
            stream[_layout(n, B, T, columns=True)[0]],
            "The rows interleave the text "
            "(X[k, b, t] is character (k T + t) B + b): reshape the stream to (B, L) so that "
            "each row is a contiguous stretch, not to (L, B) transposed.",
        ),  # fmt: skip
        Cause(
            stream[want_y],
            "X holds the targets: return X, Y in that order (X the inputs, "
            "Y the characters one further on).",
        ),  # fmt: skip
        Cause(
            stream[want_x.transpose(1, 0, 2).reshape(B, K * T).reshape(K, B, T)],
            "The (B, K T) rows were reshaped straight to (K, B, T), which mixes the rows: "
            "reshape to (B, K, T), then swap the first two axes (transpose(0, 1)).",
        ),  # fmt: skip
        Cause(
            stream[(np.arange(B)[None, :, None] * K * T + want_x - want_x[0, :, :1])],
            f"Each row holds K T = {K * T} characters, not L = (n - 1) // B = {(n - 1) // B}: "
            "cut the stream into B rows of L first, then drop the end of each row that does "
            "not fill a chunk.",
        ),  # fmt: skip
    ]
    compare("X", x, stream[want_x].astype(np.float64), threshold=1e-12, causes=causes,
            dtype=None, hint="X[k, b, t] is character b * L + k * T + t of the stream.")  # fmt: skip
    if not np.array_equal(x[:, :, 1:], y[:, :, :-1]):
        raise fail(
            "Y is not X shifted by one character: Y[k, b, t] must equal X[k, b, t + 1].",
            "The target of each character is the next one: cut Y from the stream one "
            "position later than X.",
        )
    jumps = np.flatnonzero(x[1:, :, 0] != y[:-1, :, -1]) if K > 1 else []
    if len(jumps):
        k, b = divmod(int(jumps[0]), B)
        raise fail(
            f"Y[{k}, {b}, -1] is {y[k, b, -1]}, but the next character of row {b}, X[{k + 1}, "
            f"{b}, 0], is {x[k + 1, b, 0]}: the last target of a chunk is the first input of "
            "the next.",
            "Cut Y from the same rows as X, one position further on in the stream.",
        )
    compare("Y", y, stream[want_y].astype(np.float64), threshold=1e-12, dtype=None,
            hint="Y[k, b, t] is character b * L + k * T + t + 1 of the stream.")  # fmt: skip
