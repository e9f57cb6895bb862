"""Training and scoring the dual encoder (given code; the project's exercises are
passed in as ``parts``: ``sample_negatives``, ``attention_match``, ``info_nce_loss``).

Each step takes B contexts, their B true responses and ``negatives`` sampled responses
per context; every context is scored against all B * (1 + negatives) candidates (the
other contexts' responses are in-batch negatives). Candidates with the text of a
context's true response are left out of its loss (``same_text``). The loss is InfoNCE on
the matching score plus InfoNCE on the first-stage score, so the vectors FAISS searches
are trained too.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from chatbot.data import Pairs
from chatbot.model import DualEncoder
from chatbot.text import Vocab, pad_batch, tokenize, tokenize_turns

MAX_CONTEXT, MAX_RESPONSE = 80, 40


def context_ids(vocab: Vocab, contexts) -> list[list[int]]:
    return [vocab.encode(tokenize_turns(c)) for c in contexts]


def response_ids(vocab: Vocab, responses) -> list[list[int]]:
    return [vocab.encode(tokenize(r)) for r in responses]


def _batch(ids, index, max_len, keep):
    return pad_batch([ids[i] for i in index], max_len, keep=keep)


def fit(
    model: DualEncoder,
    train: Pairs,
    vocab: Vocab,
    parts: SimpleNamespace,
    *,
    steps: int,
    seconds: float | None = None,
    batch_size: int = 64,
    negatives: int = 5,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train ``model`` on ``train`` for ``steps`` steps (a cosine schedule over them), or
    until ``seconds`` have passed. Each pass over the data reshuffles it and draws new
    negatives. Returns the history: step, loss, seconds."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    X = context_ids(vocab, train.contexts)
    Y = response_ids(vocab, train.responses)
    text_id = torch.as_tensor(train.text_id)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(s / steps, 1.0)))
    )
    per_pass = len(train) // batch_size
    if per_pass == 0:
        raise ValueError(f"{len(train)} pairs make no batch of {batch_size}")
    history = {"step": [], "loss": [], "seconds": []}
    t0 = time.perf_counter()
    model.train()
    with tqdm(total=steps, desc="training", unit="step", disable=not progress) as bar:
        for step in range(steps):
            b = step % per_pass
            if b == 0:  # a new pass over the data
                negs = parts.sample_negatives(train.text_id, negatives, seed + step // per_pass)
                order = rng.permutation(len(train))
            rows = order[b * batch_size : (b + 1) * batch_size]
            cand = np.concatenate([rows, np.asarray(negs)[rows].ravel()])
            x, xl = _batch(X, rows, MAX_CONTEXT, "end")
            y, yl = _batch(Y, cand, MAX_RESPONSE, "start")
            C, mask, c = model.encode_context(x, xl)
            r = model.encode_response(y, yl)
            positive = torch.arange(len(rows))
            same = text_id[cand][None, :] == text_id[rows][:, None]
            S_match, _ = model.matching(C, mask, r)
            loss = parts.info_nce_loss(S_match, positive, same) + parts.info_nce_loss(
                model.first_stage(c, r), positive, same
            )
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            elapsed = time.perf_counter() - t0
            history["step"].append(step + 1)
            history["loss"].append(loss.item())
            history["seconds"].append(elapsed)
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if seconds is not None and elapsed > seconds:
                break
    model.eval()
    return history


@torch.no_grad()
def encode_responses(model, vocab, texts, batch_size: int = 512) -> torch.Tensor:
    """The unit vectors r (M, H) of ``texts``, in order."""
    model.eval()
    ids = response_ids(vocab, texts)
    order = np.argsort([len(i) for i in ids])  # similar lengths together: less padding
    out = torch.empty(len(texts), model.config["H"])
    for b in range(0, len(order), batch_size):
        index = order[b : b + batch_size]
        y, yl = _batch(ids, index, MAX_RESPONSE, "start")
        out[torch.as_tensor(index)] = model.encode_response(y, yl)
    return out


@torch.no_grad()
def score_candidates(model, vocab, pairs: Pairs, cand: np.ndarray, batch_size: int = 256):
    """Scores of each row's candidates: ``cand`` (N, n) indices into ``pairs`` (column 0 the
    row's own pair, see :func:`chatbot.data.one_of_n`). Returns the first-stage and the
    matching scores, each (N, n)."""
    model.eval()
    distinct, where = np.unique(cand, return_inverse=True)
    r_all = encode_responses(model, vocab, [pairs.responses[i] for i in distinct])
    R = r_all[torch.as_tensor(where.reshape(cand.shape))]  # (N, n, H)
    X = context_ids(vocab, [pairs.contexts[i] for i in cand[:, 0]])
    first, match = [], []
    for b in range(0, len(cand), batch_size):
        index = np.arange(b, min(b + batch_size, len(cand)))
        x, xl = _batch(X, index, MAX_CONTEXT, "end")
        C, mask, c = model.encode_context(x, xl)
        r = R[b : b + len(index)]
        first.append(torch.einsum("nh,nkh->nk", c, r) / model.tau)
        match.append(model.matching(C, mask, r)[0])
    return torch.cat(first), torch.cat(match)
