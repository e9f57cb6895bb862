"""Scoring a retriever the way the field does, and the A/B simulation.

- **1-of-10 and 1-of-2 Recall@k** (Lowe et al., 2015): each test context with its true
  response and 9 (or 1) distractors; Recall@k is the share of contexts whose true
  response ranks in the top k (``chatbot.data.one_of_n`` fixes the candidates).
- **Recall@k against the full index**: the true response among 10,000 distinct candidate
  texts, retrieved as the service retrieves (FAISS shortlist, then re-ranking).
- **A/B simulation**: the test contexts split at random between the model (A) and the
  TF-IDF baseline (B); a "success" is the true response ranked first of 10. The
  difference of success rates gets a bootstrap 95 % confidence interval.
"""

from __future__ import annotations

import numpy as np
import torch

from chatbot.baseline import TfidfRetriever
from chatbot.data import Pairs, one_of_n
from chatbot.train import score_candidates

KS = (1, 2, 3, 5)


def recalls(recall_at_k, scores, ks=KS) -> dict[str, float]:
    """``{"R@1": ..., ...}`` of the (N, n) scores (column 0 the truth's)."""
    return {f"R@{k}": recall_at_k(torch.as_tensor(scores), k) for k in ks if k < scores.shape[1]}


def one_of_n_report(model, vocab, tfidf: TfidfRetriever, pairs: Pairs, recall_at_k, *,
                    limit=None, seed=0) -> dict:  # fmt: skip
    """1-of-10 and 1-of-2 Recall@k of the model (matching and first-stage scores) and of
    TF-IDF, on the same candidates; also each row's top-1 success, for the A/B test."""
    cand = one_of_n(pairs, 10, seed=seed, limit=limit)
    first, match = score_candidates(model, vocab, pairs, cand)
    tf = torch.as_tensor(tfidf.score_candidates(pairs, cand))
    out = {"n": len(cand)}
    for name, s in (("model", match), ("model first stage", first), ("TF-IDF", tf)):
        out[name] = {
            "1 in 10": recalls(recall_at_k, s),
            "1 in 2": recalls(recall_at_k, s[:, :2], (1,)),
        }
    out["success"] = {
        "model": (match[:, 1:] < match[:, :1]).all(1).numpy(),
        "TF-IDF": (tf[:, 1:] < tf[:, :1]).all(1).numpy(),
    }
    return out


def bootstrap_ab(success_a, success_b, *, reps: int = 2000, seed: int = 0) -> dict:
    """A simulated A/B test: each context is shown to A or B (a fair coin), and the
    difference of success rates p_A - p_B gets a percentile bootstrap 95 % interval
    (resampling each arm with replacement)."""
    rng = np.random.default_rng(seed)
    success_a, success_b = np.asarray(success_a, float), np.asarray(success_b, float)
    arm = rng.random(len(success_a)) < 0.5
    a, b = success_a[arm], success_b[~arm]
    diffs = np.array([
        rng.choice(a, len(a)).mean() - rng.choice(b, len(b)).mean() for _ in range(reps)
    ])  # fmt: skip
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {
        "n_A": int(len(a)), "n_B": int(len(b)), "p_A": float(a.mean()), "p_B": float(b.mean()),
        "difference": float(a.mean() - b.mean()), "ci95": [float(low), float(high)],
    }  # fmt: skip


def candidate_texts(pairs: Pairs, n: int) -> list[str]:
    """The ``n`` most frequent distinct responses of ``pairs`` (ties: first seen first):
    the service's index, so the generic replies ("Is there anything else?") are in it."""
    counts = np.bincount(pairs.text_id)
    first = np.unique(pairs.text_id, return_index=True)[1]
    order = sorted(range(len(counts)), key=lambda t: (-counts[t], first[t]))[:n]
    return [pairs.responses[first[t]] for t in order]


def full_index_recall(retriever_factory, pairs: Pairs, *, n_candidates=10_000, rows=2_000,
                      ks=(1, 5, 10), seed=0) -> dict:  # fmt: skip
    """Recall@k of the true response among ``n_candidates`` distinct texts of ``pairs``
    (a seeded sample that includes the truths of the ``rows`` contexts scored), retrieved
    by ``retriever_factory(texts)`` as the service does."""
    rng = np.random.default_rng(seed)
    first = np.unique(pairs.text_id, return_index=True)[1]
    chosen = rng.choice(first, size=min(n_candidates, len(first)), replace=False)
    texts = [pairs.responses[i] for i in chosen]
    in_pool = {pairs.text_id[i] for i in chosen}
    eligible = [i for i in rng.permutation(len(pairs)) if pairs.text_id[i] in in_pool][:rows]
    retriever = retriever_factory(texts)
    hits = {k: 0 for k in ks}
    for i in eligible:
        got = [t for t, _ in retriever.reply_turns(pairs.contexts[i], k=max(ks)).responses]
        for k in ks:
            hits[k] += pairs.responses[i] in got[:k]
    return {
        "n": len(eligible),
        "candidates": len(texts),
        **{f"R@{k}": hits[k] / len(eligible) for k in ks},
    }
