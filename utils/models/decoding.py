"""Generated from notebooks/06_seq2seq.ipynb (cells tagged export:decoding) by `make modules`.

Do not edit: change the notebook, then run `make modules`.
"""

from __future__ import annotations

import functools
import math

import pandas as pd
import torch
import torch.nn.functional as F

from utils.models.seq2seq import EOS, PAD, SOS, batches, check_source


def inference(fn):
    """Run ``fn(model, ...)`` in eval mode without gradients; restore the model's mode after."""

    @functools.wraps(fn)
    def wrapper(model, *args, **kwargs):
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return fn(model, *args, **kwargs)
        finally:
            model.train(was_training)

    return wrapper


@inference
def greedy_decode(model, src, src_lengths, max_len: int):
    """The most likely token at every step, fed back as the next input.

    ``src: (N, S)``, ``src_lengths: (N,)`` -> ``ids (N, T_out)`` with ``T_out <= max_len``, ``PAD``
    after each row's ``EOS``, and attention ``weights (N, T_out, S)`` or None. Stops when every row
    has produced ``EOS``.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    check_source(src, src_lengths)
    memory = model.encode(src, src_lengths)
    state = model.decoder.init_state(memory)
    y = torch.full((src.shape[0],), SOS, dtype=torch.long, device=src.device)
    finished = torch.zeros_like(y, dtype=torch.bool)
    ids, weights = [], []
    for _ in range(max_len):
        logits, state, w = model.decoder.step(y, state, memory)
        y = logits.argmax(dim=-1).masked_fill(finished, PAD)  # PAD after EOS
        ids.append(y)
        weights.append(w)
        finished = finished | (y == EOS)
        if finished.all():
            break
    return torch.stack(ids, dim=1), None if weights[0] is None else torch.stack(weights, dim=1)


def cut_at_eos(ids):
    """``ids: (N, T)`` -> N lists, each row's tokens before its first ``EOS``."""
    return [row[: row.index(EOS)] if EOS in row else row for row in ids.tolist()]


def predict(model, pairs, *, max_len=None, batch_size=256, beam_size=1, alpha=0.6):
    """The model's free-running output for every pair's source: greedy when ``beam_size == 1``,
    else beam search. Returns one id list per pair, ``EOS`` excluded. ``max_len`` defaults to the
    longest target + 5."""
    if len(pairs) == 0:
        raise ValueError("predict got no pairs")
    max_len = max_len or max(len(t) for _, t in pairs) + 5
    device = next(model.parameters()).device
    out = []
    for batch in batches(pairs, batch_size):
        src, src_lengths = batch.src.to(device), batch.src_lengths.to(device)
        if beam_size == 1:
            ids, _ = greedy_decode(model, src, src_lengths, max_len)
            out += cut_at_eos(ids)
        else:
            out += beam_search(
                model, src, src_lengths, beam_size=beam_size, max_len=max_len, alpha=alpha
            )
    return out


def score_predictions(predictions, pairs):
    """Per pair: exact match (the whole target, ``EOS`` at the right place) and token accuracy
    (targets' tokens, ``EOS`` included, matched position by position). Two lists."""
    exact, token = [], []
    for pred, (_, tgt) in zip(predictions, pairs, strict=True):
        pred = list(pred) + [EOS]
        exact.append(pred == list(tgt))
        token.append(sum(p == t for p, t in zip(pred, tgt)) / len(tgt))
    return exact, token


def accuracy_by_length(model, pairs, **kwargs):
    """Free-running exact match and token accuracy per source length (tokens before ``EOS``):
    a DataFrame indexed by ``length`` with columns ``count, exact, token``; kwargs to ``predict``."""
    exact, token = score_predictions(predict(model, pairs, **kwargs), pairs)
    table = pd.DataFrame({"length": [len(s) - 1 for s, _ in pairs], "exact": exact, "token": token})
    return table.groupby("length").agg(
        count=("exact", "size"), exact=("exact", "mean"), token=("token", "mean")
    )


def evaluate(model, pairs, **kwargs):
    """Free-running ``{"exact": ..., "token": ...}`` accuracy over ``pairs`` (kwargs to ``predict``)."""
    exact, token = score_predictions(predict(model, pairs, **kwargs), pairs)
    return {"exact": sum(exact) / len(exact), "token": sum(token) / len(token)}


def reorder_state(state, index):
    """The rows ``index: (K,)`` of every tensor in ``state`` (a tensor or a (named) tuple, batch
    first); None stays None."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.index_select(0, index)
    items = [reorder_state(s, index) for s in state]
    return type(state)(*items) if hasattr(state, "_fields") else type(state)(items)


def length_penalty(length, alpha: float):
    """``((5 + |y|) / 6) ** alpha`` (Wu et al., 2016); a score is divided by it."""
    return ((5.0 + length) / 6.0) ** alpha


@inference
def beam_search(
    model, src, src_lengths, *, beam_size: int = 4, max_len: int = 50, alpha: float = 0.6,
    return_scores: bool = False,
):  # fmt: skip
    """Keep the ``beam_size`` best partial hypotheses per source; batched over the N sources.

    ``src: (N, S)``, ``src_lengths: (N,)`` -> N id lists (each source's best hypothesis, ``EOS``
    excluded) and, with ``return_scores``, their normalised scores ``log p(y) / length_penalty(|y|)``
    (``|y|`` counts ``EOS``). A finished hypothesis keeps ``EOS`` and stops growing; the best
    finished one wins (an unfinished one only when none finished within ``max_len``).
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    check_source(src, src_lengths)
    N, K, dev = src.shape[0], beam_size, src.device
    memory = model.encode(src, src_lengths)
    rows = torch.arange(N, device=dev).repeat_interleave(K)  # row n * K + k: hypothesis k of n
    memory = reorder_state(memory, rows)
    state = model.decoder.init_state(memory)
    scores = torch.zeros(N, K, dtype=memory.final.dtype, device=dev)  # log p of each hypothesis
    scores[:, 1:] = -math.inf  # at first the K rows are one hypothesis: keep one copy
    tokens = torch.empty(N * K, 0, dtype=torch.long, device=dev)
    lengths = torch.zeros_like(scores).view(-1)  # tokens so far, EOS included
    finished = torch.zeros(N * K, dtype=torch.bool, device=dev)
    y = torch.full((N * K,), SOS, dtype=torch.long, device=dev)
    for _ in range(max_len):
        logits, state, _ = model.decoder.step(y, state, memory)
        logp = F.log_softmax(logits, dim=-1)  # (N * K, V)
        V = logp.shape[-1]
        done = torch.full_like(logp, -math.inf)
        done[:, PAD] = 0.0  # a finished hypothesis continues only with PAD, at no cost
        logp = torch.where(finished[:, None], done, logp)
        candidates = (scores.view(-1, 1) + logp).view(N, K * V)
        scores, flat = candidates.topk(K, dim=1)  # (N, K)
        parent = (torch.arange(N, device=dev)[:, None] * K + flat // V).view(-1)
        y = (flat % V).view(-1)
        tokens = torch.cat([tokens[parent], y[:, None]], dim=1)
        lengths = lengths[parent] + (~finished[parent]).to(lengths.dtype)
        finished = finished[parent] | (y == EOS)
        state = reorder_state(state, parent)
        if finished.all():
            break
    normalised = scores.view(-1) / length_penalty(lengths, alpha)
    any_finished = finished.view(N, K).any(dim=1).repeat_interleave(K)
    normalised = normalised.masked_fill(any_finished & ~finished, -math.inf).view(N, K)
    best_score, best = normalised.max(dim=1)
    hypotheses = cut_at_eos(tokens[torch.arange(N, device=dev) * K + best])
    return (hypotheses, best_score.tolist()) if return_scores else hypotheses
