"""Lab 4: checks of truncated BPTT (``train_steps_from``) and of the validation loss
(``validation_loss_from``), on small random character models.

The references use PyTorch's modules (:class:`~utils.checks.lab04.common.Reference`) and
plain autograd: for each chunk the loss is the mean cross-entropy over its ``B x T``
characters, the gradient is taken with ``torch.autograd.grad`` from the state the previous
chunk left (held constant), scaled down to a global norm of at most ``clip`` as
``clip_grad_norm_`` does, and applied as ``w - lr * g``. The validation reference runs
each row of the stream through the model in one call, which carries the state across the
chunks by construction. Known wrong answers (the state reset at every chunk, no clipping,
clipping value by value, gradients never zeroed, a summed loss, bits instead of nats, a
loss divided by the stream's length) are the same references with one thing changed. The
training chunks are sent as non-contiguous views, as batchify makes them, so that a
``.view(-1)`` fails here as it would in the notebook's training loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from utils.checks.core import CheckError, passed, seeded
from utils.checks.engine import Cause, call_unchanged, compare, fail, number, tensor, unpack
from utils.checks.lab04.batches import _layout
from utils.checks.lab04.common import Reference, random_weights, state_tensors

__all__ = ["check_train_steps", "check_validation_loss"]

THRESHOLD = 1e-6


def _detached(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def _reference_steps(weights, X, Y, lr, clip, *, carry=True, clip_how="norm", zero=True,
                     reduction="mean"):  # fmt: skip
    """Losses (K,), weights and final state of K steps of truncated BPTT (variants by keyword)."""
    model = Reference(weights)
    params = list(model.parameters())
    state, losses, kept = None, [], [torch.zeros_like(p) for p in params]
    for x, y in zip(X, Y):
        logits, new_state = model(x, state if carry else None)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction=reduction
        )
        grads = torch.autograd.grad(loss, params)
        if not zero:
            grads = [g + k for g, k in zip(grads, kept)]
        if clip_how == "norm":
            norm = torch.sqrt(sum((g**2).sum() for g in grads))
            grads = [g * torch.clamp(clip / (norm + 1e-6), max=1.0) for g in grads]
        elif clip_how == "value":
            grads = [g.clamp(-clip, clip) for g in grads]
        kept = grads
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
        losses.append(loss.item())
        state = _detached(new_state)
    new_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return np.array(losses), new_weights, state


def _flat(weights: dict, keys) -> np.ndarray:
    return np.concatenate([weights[k].detach().reshape(-1).double().numpy() for k in keys])


_GRAPH_ERRORS = ("backward through the graph a second time", "modified by an inplace operation")


def check_train_steps(fn: Callable, *, K: int = 4, B: int = 3, T: int = 5, V: int = 13, E: int = 5,
                      H: int = 6, layers: int = 2, cell: str = "gru", lr: float = 0.3,
                      clip: float = 0.1, seed: int = 0) -> None:  # fmt: skip
    """Check ``train_steps_from(weights, X, Y, lr, clip) -> (losses, weights, state)``: K chunks
    (K, B, T) of a random stream through a random model, one SGD step per chunk with
    ``train_step``: the losses before each step, the weights after the last and the state it
    leaves must match truncated BPTT with the state carried and detached, gradients clipped
    to a global norm of ``clip``."""
    rng = seeded(seed)
    weights = random_weights(rng, V=V, E=E, H=H, layers=layers, cell=cell)
    stream = torch.from_numpy(rng.integers(0, V, size=B * K * T + 1)).long()
    x_idx, y_idx = _layout(len(stream), B, T)
    # (K, B, T) views of (B, K, T) tensors: each chunk is non-contiguous, as batchify's are
    X, Y = (stream[torch.from_numpy(i.transpose(1, 0, 2).copy())].transpose(0, 1)
            for i in (x_idx, y_idx))  # fmt: skip
    try:
        out = call_unchanged(fn, "train_steps_from", weights, X, Y, lr, clip)
    except CheckError as e:
        if "view size is not compatible" in str(e):
            raise fail(f"{str(e).removeprefix('[FAIL] ')}", "The chunks x, y that batchify gives "
                       "are views into the rows of the stream, not contiguous tensors: flatten "
                       "them with .reshape(-1), not .view(-1).") from e  # fmt: skip
        if any(s in str(e) for s in _GRAPH_ERRORS):
            raise fail(
                "train_step failed at the second chunk: the backward pass reached into the "
                "graph of the previous chunk.",
                "The state carried from chunk to chunk still holds the graph that made it: "
                "detach it (state.detach(), each tensor of an LSTM's (h, c)) so the gradient "
                "stops at the chunk boundary; that is what makes BPTT truncated.",
            ) from e
        raise
    losses, new_weights, state = unpack(out, "train_steps_from", ("losses", "weights", "state"))
    losses = tensor("losses", losses, (K,), f"One loss per chunk: {K} chunks.")
    if not isinstance(new_weights, dict) or set(new_weights) != set(weights):
        raise fail("train_steps_from returned weights that are not the model's state dict.",
                   "Return model.state_dict() after the last step.")  # fmt: skip
    keys = sorted(weights)
    got_w = {k: tensor(f"weights[{k!r}]", new_weights[k], tuple(weights[k].shape)) for k in keys}
    if np.allclose(_flat(got_w, keys), _flat(weights, keys), rtol=0, atol=1e-12):
        raise fail("the weights did not change in the steps.",
                   "Each step is zero_grad(), backward(), clip, optimizer.step(), in that order: "
                   "zeroing the gradients between backward() and step() leaves nothing to apply.")  # fmt: skip
    want_losses, want_weights, want_state = _reference_steps(weights, X, Y, lr, clip)
    variants = {
        "the state is reset at every chunk (state=None): carry the state returned by the "
        "previous chunk into the next one (detached), so the model reads the text as one "
        "stream.": dict(carry=False),
        "the gradient is not clipped: call torch.nn.utils.clip_grad_norm_(model.parameters(), "
        "clip) after backward() and before optimizer.step().": dict(clip_how=None),
        "each gradient entry is clipped to [-clip, clip]: clip the global norm of all the "
        "gradients together (clip_grad_norm_), which keeps their direction.": dict(clip_how="value"),
        "the gradients are never zeroed, so each step adds the previous ones: call "
        "optimizer.zero_grad() before backward().": dict(zero=False),
        "the loss is summed over the characters: average it (F.cross_entropy's default), so "
        "the step does not grow with B x T.": dict(reduction="sum"),
    }  # fmt: skip
    refs = {why: _reference_steps(weights, X, Y, lr, clip, **kw) for why, kw in variants.items()}
    compare("losses", losses.double(), want_losses, threshold=THRESHOLD, dtype=None,
            causes=[Cause(r[0], "The losses differ from the reference because " + why)
                    for why, r in refs.items()],
            hint="losses[k] is the mean cross-entropy of chunk k, before its update.")  # fmt: skip
    compare("the weights after the last step", _flat(got_w, keys), _flat(want_weights, keys),
            threshold=THRESHOLD,
            causes=[Cause(_flat(r[1], keys), "The weights differ because " + why) for why, r in refs.items()],
            hint="One step per chunk: zero the gradients, forward from the carried state, "
            "the mean loss, backward, clip the global norm, optimizer.step().")  # fmt: skip
    got_state = state_tensors(state)
    want = state_tensors(want_state)
    if len(got_state) != len(want):
        raise fail(f"the state has {len(got_state)} tensor(s), expected {len(want)} (the "
                   "recurrent layer's own state).")  # fmt: skip
    for i, (g, w) in enumerate(zip(got_state, want)):
        compare(f"state[{i}]", tensor(f"state[{i}]", g, tuple(w.shape)).double(), w.double().numpy(),
                threshold=THRESHOLD, dtype=None,
                hint="Return the state the last chunk's forward pass produced, detached.")  # fmt: skip
    passed(f"train_step: {K} chunks of ({B}, {T}), one SGD step each: losses, weights and the "
           "final state match truncated BPTT (state carried and detached, global-norm "
           "clipping).")  # fmt: skip


def _reference_loss(weights, ids, B, T, *, carry=True):
    """Mean cross-entropy (nats) of the batchified stream: each row in one call, or chunk by
    chunk from a zero state (``carry=False``)."""
    model = Reference(weights).eval()
    x_idx, y_idx = _layout(len(ids), B, T)
    X, Y = ids[torch.from_numpy(x_idx)], ids[torch.from_numpy(y_idx)]
    K = X.shape[0]
    with torch.no_grad():
        if carry:
            rows_x, rows_y = (
                X.permute(1, 0, 2).reshape(B, K * T),
                Y.permute(1, 0, 2).reshape(B, K * T),
            )
            logits, _ = model(rows_x)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), rows_y.reshape(-1)).item()
        losses = [F.cross_entropy(model(x)[0].reshape(-1, weights["head.weight"].shape[0]), y.reshape(-1)).item()
                  for x, y in zip(X, Y)]  # fmt: skip
        return float(np.mean(losses))


def check_validation_loss(fn: Callable, *, n: int = 700, B: int = 3, T: int = 9, V: int = 11,
                          E: int = 4, H: int = 5, layers: int = 2, cell: str = "gru",
                          dropout: float = 0.5, seed: int = 0) -> None:  # fmt: skip
    """Check ``validation_loss_from(weights, ids, batch_size, seq_len, dropout) -> nats``: the
    mean cross-entropy in nats per character of a random stream under a random model whose
    dropout is ``dropout``, with the state carried across the chunks, in eval mode."""
    rng = seeded(seed)
    weights = random_weights(rng, V=V, E=E, H=H, layers=layers, cell=cell)
    ids = torch.from_numpy(rng.integers(0, V, size=n)).long()
    label = "validation_loss_from"
    got = number(label, call_unchanged(fn, label, weights, ids, B, T, dropout))
    if not math.isfinite(got):
        raise fail(f"{label} returned {got}, expected a finite loss (non-finite).")
    again = number(label, call_unchanged(fn, label, weights, ids, B, T, dropout))
    if got != again and abs(got - again) > 1e-9 * abs(got):
        raise fail(f"{label} gives {got:.6f}, then {again:.6f} for the same model and text.",
                   "Dropout is still active: call model.eval() before measuring (and "
                   "torch.no_grad(): no gradient is needed).")  # fmt: skip
    want = _reference_loss(weights, ids, B, T)
    count = ((n - 1) // B // T) * B * T
    causes = [
        Cause(
            np.array(want / math.log(2)),
            "That is bits per character (log base 2): the loss "
            "is in nats (natural log), as F.cross_entropy gives it; bits = nats / ln 2.",
        ),  # fmt: skip
        Cause(
            np.array(_reference_loss(weights, ids, B, T, carry=False)),
            "The state is reset at "
            "every chunk: carry it from one chunk to the next, as in training, so every "
            "character is predicted from all the text before it.",
        ),  # fmt: skip
        Cause(
            np.array(want * count),
            "It is the summed loss: divide by the number of characters predicted.",
        ),  # fmt: skip
        Cause(
            np.array(want * count / n),
            f"It is divided by the length of the stream, n = {n}: only the {count} characters "
            "in the K chunks are predicted (batchify drops the end); divide by that count.",
        ),  # fmt: skip
        Cause(
            np.array(want * T),
            f"It is T = {T} times the loss: count every predicted "
            "character, B x T per chunk (y.numel()), not one per row.",
        ),  # fmt: skip
    ]
    compare("the validation loss", np.array(got), np.array(want), threshold=1e-6, causes=causes,
            dtype=None, hint="Average the cross-entropy over every predicted character of every "
            "chunk (batchify with batch_size and seq_len).")  # fmt: skip
    passed(f"validation_loss: {want:.4f} nats per character on {count} characters, the state "
           "carried across chunks, dropout off.")  # fmt: skip
