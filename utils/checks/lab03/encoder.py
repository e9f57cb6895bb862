"""Lab 3: checks of the bidirectional encoder of padded batches: ``reverse_padded(x, lengths)``
and ``bi_lstm_from(weights, x, lengths)`` (the lab's ``bi_lstm`` on two LSTMs that hold
``weights``: a module cannot cross to the grader's sandbox, a state dict can).

The reference for ``reverse_padded`` reverses each row with Python slicing; its gradient
must flow back to x (the same reversal of the upstream gradient), since the backward LSTM
learns through it. The reference for
``bi_lstm`` is PyTorch's own bidirectional ``nn.LSTM`` carrying the student's two LSTMs'
weights (``weight_*_l0`` from ``fwd``, ``weight_*_l0_reverse`` from ``bwd``) and run on a
*packed* batch, so no direction ever reads padding; its gradient with respect to the input
comes from autograd. Known
wrong answers (the whole row flipped with its padding, the backward LSTM run forward, the
final state read at the last position or at the wrong end, the two directions swapped)
are the same reference with one thing changed; any output at a padding position must be 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from utils.checks.core import CheckError, passed, seeded
from utils.checks.engine import Cause, call_unchanged, compare, fail, keeps_graph, tensor, unpack
from utils.checks.lab03.common import lengths_for, mask_of

__all__ = ["check_bi_lstm", "check_reverse_padded"]

THRESHOLD = 1e-7


def _reversed_rows(x: torch.Tensor, lengths: torch.Tensor, *, whole: bool = False, shift: int = 0):
    out = x.clone()
    for b, n in enumerate(lengths.tolist()):
        n = x.shape[1] if whole else n
        idx = [(n - 1 - t + shift) % n for t in range(n)]
        out[b, :n] = x[b, idx]
    return out


def check_reverse_padded(
    fn: Callable, *, B: int = 5, T: int = 7, D: int = 3, seed: int = 0
) -> None:
    """Check ``reverse_padded(x, lengths)``: each row's first ``lengths[b]`` entries in
    reverse order, the padding after them where it was; for (B, T, D) floats and (B, T) ids."""
    rng = seeded(seed)
    lengths = lengths_for(rng, B, T)
    x = torch.from_numpy(rng.normal(size=(B, T, D)))
    ids = torch.from_numpy(rng.integers(4, 50, size=(B, T))) * mask_of(lengths, T)
    for name, inp in (("reverse_padded(x, lengths) for x (B, T, D)", x),
                      ("reverse_padded(ids, lengths) for ids (B, T)", ids)):  # fmt: skip
        out = tensor(name, call_unchanged(fn, "reverse_padded", inp, lengths), tuple(inp.shape),
                     "It has the shape of x: the same rows, each reordered in time.")  # fmt: skip
        want = _reversed_rows(inp, lengths)
        if out.dtype != inp.dtype:
            raise fail(f"{name} has dtype {out.dtype}, expected {inp.dtype} (that of x).",
                       "Reorder the entries of x (gather or index); do not compute new values.")  # fmt: skip
        causes = [
            Cause(inp.flip(1).numpy(), "The whole row is flipped, padding included, so the "
                  "padding moves to the front. Reverse only the first lengths[b] positions of row b."),
            Cause(inp.numpy(), "Nothing was reversed: it returned x as it came."),
            Cause(_reversed_rows(inp, lengths, shift=1).numpy(), "The rows are reversed one "
                  "position off: position t of row b takes position lengths[b] - 1 - t."),
            Cause((_reversed_rows(inp, lengths) * mask_of(lengths, T).view(B, T, *([1] * (inp.dim() - 2)))).numpy(),
                  "The padding positions were changed: leave t >= lengths[b] as they were."),
        ]  # fmt: skip
        compare(name, out.double(), want.double().numpy(), threshold=1e-12, causes=causes,
                dtype=None, hint="Position t < lengths[b] of row b must hold x[b, lengths[b] - 1 - t].")  # fmt: skip
    twice = call_unchanged(
        fn, "reverse_padded", call_unchanged(fn, "reverse_padded", x, lengths), lengths
    )
    if not torch.equal(torch.as_tensor(twice), x):
        raise fail("reversing twice did not give x back.")
    graph = keeps_graph(fn)  # False for the grader's stand-in, which returns values only
    if graph:
        _check_reverse_gradient(fn, x, lengths, torch.from_numpy(rng.normal(size=tuple(x.shape))))
    passed(f"reverse_padded: each of {B} rows reversed within its length (lengths "
           f"{lengths.tolist()}), padding left in place; for floats and for ids.")  # fmt: skip


GRAD_HINT = ("The backward LSTM learns through reverse_padded: reorder the tensor itself "
             "(gather or indexing), without .detach(), .numpy() or torch.tensor(...).")  # fmt: skip


def _check_reverse_gradient(fn: Callable, x: torch.Tensor, lengths: torch.Tensor, R) -> None:
    """The gradient of <R, reverse_padded(x)> with respect to x is R reversed the same way."""
    x = x.clone().requires_grad_(True)
    label = "reverse_padded(x, lengths) for x that requires grad"
    try:
        out = call_unchanged(fn, "reverse_padded", x, lengths)
    except CheckError as e:
        raise fail(f"{str(e).removeprefix('[FAIL] ')}", GRAD_HINT) from e
    if not (isinstance(out, torch.Tensor) and out.requires_grad):
        raise fail(
            f"{label} returned a tensor that is not connected to x (no gradient).", GRAD_HINT
        )
    grad = torch.autograd.grad((out * R).sum(), x, allow_unused=True)[0]
    grad = torch.zeros_like(x) if grad is None else grad
    compare("the gradient of reverse_padded with respect to x", grad, _reversed_rows(R, lengths).numpy(),
            threshold=1e-12, hint=GRAD_HINT)  # fmt: skip


def _lstms(rng: np.random.Generator, E: int, H: int) -> tuple[nn.LSTM, nn.LSTM]:
    fwd, bwd = nn.LSTM(E, H, batch_first=True).double(), nn.LSTM(E, H, batch_first=True).double()
    with torch.no_grad():
        for p in [*fwd.parameters(), *bwd.parameters()]:
            p.copy_(torch.from_numpy(rng.normal(scale=0.6, size=tuple(p.shape))))
    return fwd, bwd


def _bidirectional(fwd: nn.LSTM, bwd: nn.LSTM) -> nn.LSTM:
    E, H = fwd.input_size, fwd.hidden_size
    both = nn.LSTM(E, H, batch_first=True, bidirectional=True).double()
    both.load_state_dict(
        {**fwd.state_dict(), **{k + "_reverse": v for k, v in bwd.state_dict().items()}}
    )
    return both


def _manual(fwd, bwd, x, lengths, *, flip_whole=False, reverse=True, unreverse=True, mask=True,
            last_f="length", last_b="first"):  # fmt: skip
    """The two-LSTM encoder with one thing changed (a known mistake): the backward LSTM fed
    the whole row flipped or the review forward, its outputs left reversed, the padding
    positions kept, or a final state read at the wrong position."""
    B, T, _ = x.shape
    H = fwd.hidden_size
    out_f, _ = fwd(x)
    if flip_whole:
        out_b = bwd(x.flip(1))[0].flip(1)
    elif not reverse:
        out_b = bwd(x)[0]
    else:
        out_b = bwd(_reversed_rows(x, lengths))[0]
        out_b = _reversed_rows(out_b, lengths) if unreverse else out_b
    outputs = torch.cat([out_f, out_b], -1)
    if mask:
        outputs = outputs * mask_of(lengths, T).unsqueeze(-1)
    rows = torch.arange(B)
    h_f = {
        "length": out_f[rows, lengths - 1],
        "end": out_f[:, -1],
        "masked end": outputs[:, -1, :H],
    }[last_f]
    h_b = out_b[:, 0] if last_b == "first" else out_b[rows, lengths - 1]
    return outputs, torch.cat([h_f, h_b], -1)


def _packed(fwd, bwd, x, lengths):
    """The reference: PyTorch's bidirectional LSTM with the same weights, on a packed batch."""
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, (h_n, _) = _bidirectional(fwd, bwd)(packed)
    outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return outputs, torch.cat([h_n[0], h_n[1]], -1)


VARIANTS = {
    "flip_whole": "The backward LSTM read each row flipped whole, so it read the padding before "
    "the review. Reverse each row within its length (reverse_padded), run bwd, "
    "and reverse its outputs back the same way.",
    "reverse": "The backward LSTM read the review forward: feed it reverse_padded(x, lengths).",
    "unreverse": "The backward outputs are still in reversed order: reverse them back with "
    "reverse_padded(out_b, lengths) so position t holds the state after reading "
    "tokens t..lengths[b]-1.",
    "mask": "The outputs at padding positions (t >= lengths[b]) must be 0: multiply by the mask.",
    "last_f": "The forward half of `last` was read at the last position T - 1, which is padding "
    "for the shorter rows: read out_f at position lengths[b] - 1.",
    "last_f_masked": "The forward half of `last` was read at the last position T - 1 of the "
    "outputs, which is padding (zeros) for the shorter rows: read out_f at "
    "position lengths[b] - 1.",
    "last_b": "The backward half of `last` was read at position lengths[b] - 1; the backward "
    "LSTM ends its pass at token 0: read it at position 0.",
    "flip_zeros": "The backward LSTM read each row flipped whole, so it read the padding before "
    "the review (zeroing the padding does not help: zeros still change the state). Reverse "
    "each row within its length (reverse_padded), run bwd, and reverse its outputs back.",
    "lstms": "The two LSTMs are swapped: fwd reads the review forward, bwd reads it reversed.",
}
_CHANGED = {"last_f": "end", "last_f_masked": "masked end", "last_b": "length",  # tried first
            "flip_whole": True, "reverse": False, "unreverse": False, "mask": False}  # fmt: skip


def _values(outputs, last, x, R1, R2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """outputs, last and the gradient of <R1, outputs> + <R2, last> with respect to the
    input x (zeros where no gradient reaches), as NumPy arrays."""
    loss = (outputs * R1).sum() + (last * R2).sum()
    grad = torch.autograd.grad(loss, x, allow_unused=True)[0] if loss.requires_grad else None
    grad = torch.zeros_like(x) if grad is None else grad
    return outputs.detach().numpy(), last.detach().numpy(), grad.detach().numpy()


def check_bi_lstm(fn: Callable, *, B: int = 4, T: int = 6, E: int = 3, H: int = 2,
                  seed: int = 0) -> None:  # fmt: skip
    """Check ``bi_lstm_from(weights, x, lengths) -> (outputs (B, T, 2H), last (B, 2H))`` (your
    ``bi_lstm`` on two LSTMs holding ``weights``) against PyTorch's bidirectional LSTM on a
    packed batch with the same weights: the outputs (zero at padding), the final states of
    both directions, and (in the notebook) the gradient that reaches x through them."""
    rng = seeded(seed)
    fwd, bwd = _lstms(rng, E, H)
    weights = {f"{name}.{k}": v.detach().clone() for name, lstm in (("fwd", fwd), ("bwd", bwd))
               for k, v in lstm.state_dict().items()}  # fmt: skip
    lengths = lengths_for(rng, B, T)
    real = mask_of(lengths, T).unsqueeze(-1)
    x = torch.from_numpy(rng.normal(size=(B, T, E))) * real
    x = (x + 2.0 * torch.from_numpy(rng.normal(size=(B, T, E))) * ~real).requires_grad_(True)
    R1 = torch.from_numpy(rng.normal(size=(B, T, 2 * H)))
    R2 = torch.from_numpy(rng.normal(size=(B, 2 * H)))
    out = unpack(call_unchanged(fn, "bi_lstm_from", weights, x, lengths),
                 "bi_lstm_from(weights, x, lengths)", ("outputs", "last"))  # fmt: skip
    outputs = tensor("outputs", out[0], (B, T, 2 * H), "outputs is (B, T, 2H): the forward and the "
                     "backward output of each position, concatenated on the last dimension.")  # fmt: skip
    last = tensor("last", out[1], (B, 2 * H), "last is (B, 2H): the forward state after the last "
                  "real token, then the backward state after token 0.")  # fmt: skip
    want = _values(*_packed(fwd, bwd, x, lengths), x, R1, R2)
    known = {k: _values(*_manual(fwd, bwd, x, lengths, **{k.replace("_masked", ""): v}), x, R1, R2)
             for k, v in _CHANGED.items()}  # fmt: skip
    known["flip_zeros"] = _values(*_manual(fwd, bwd, x * real, lengths, flip_whole=True), x, R1, R2)
    known["lstms"] = _values(*_manual(bwd, fwd, x, lengths), x, R1, R2)
    padding = (outputs != 0).any(-1) & ~mask_of(lengths, T)
    if padding.any():
        b, t = (int(i) for i in padding.nonzero()[0])
        raise fail(f"outputs[{b}, {t}] is not 0, but position {t} is padding in row {b} (lengths[{b}] "
                   f"= {int(lengths[b])}).", "The outputs at padding positions (t >= lengths[b]) "
                   "must be 0: multiply by the mask arange(T) < lengths[b] (strictly less: "
                   "the real positions are 0 .. lengths[b] - 1).")  # fmt: skip
    for i, name in enumerate(("outputs", "last")):
        halves = np.concatenate([want[i][..., H:], want[i][..., :H]], axis=-1)
        causes = [Cause(v[i], VARIANTS[k]) for k, v in known.items()]
        causes.append(Cause(halves, f"The two directions are swapped in {name}: the forward "
                            "half comes first, then the backward half (torch.cat([forward, "
                            "backward], dim=-1))."))  # fmt: skip
        compare(name, (outputs, last)[i], want[i], threshold=THRESHOLD, causes=causes,
                hint="Compare with Chapter 5: what does each direction read, and where does it end?")  # fmt: skip
    where = f"PyTorch's bidirectional LSTM on a packed batch (lengths {lengths.tolist()})"
    if not keeps_graph(fn):  # the grader's stand-in returns values only
        passed(f"bi_lstm: outputs ({B}, {T}, {2 * H}) and last ({B}, {2 * H}) match {where} "
               "(gradient checked in the notebook).")  # fmt: skip
        return
    got = _values(out[0], out[1], x, R1, R2)
    if not np.any(got[2]):
        raise fail("no gradient reaches the input x through outputs and last.",
                   "Do not detach, use .data or torch.no_grad() inside bi_lstm: training needs the graph.")  # fmt: skip
    compare("the gradient with respect to x", got[2], want[2], threshold=1e-6,
            hint="The values are right but the gradient is not: is something detached or computed in place?")  # fmt: skip
    passed(
        f"bi_lstm: outputs ({B}, {T}, {2 * H}), last ({B}, {2 * H}) and their gradients match {where}."
    )
