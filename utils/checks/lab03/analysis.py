"""Lab 3: the check of the attention measurement, ``attention_lift(weights, X, chosen)``.

The reference walks over the reviews one by one in Python: a review's attention mass on
the chosen words is the sum of its weights at the positions that hold one of them, its
share is the fraction of its real tokens (id != 0) that are chosen; both are averaged over
the reviews and the lift is their ratio. Known wrong answers (the padding counted in the
share, token-weighted instead of review-weighted averages, the mean of per-review ratios,
the ratio upside down) are the same reference with one thing changed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import passed, seeded
from utils.checks.engine import Cause, call_unchanged, compare, number, unpack
from utils.checks.lab03.common import lengths_for, mask_of

__all__ = ["check_attention_lift"]


def _reference(w: np.ndarray, X: np.ndarray, chosen: set[int], *, variant: str | None = None):
    """(mass, share, lift) of the reviews in w (N, T), X (N, T); ``variant`` names a mistake."""
    masses, shares, ratios, hits, reals = [], [], [], 0, 0
    for row_w, row_x in zip(w, X):
        real = row_x != 0
        hit = np.array([int(t) in chosen for t in row_x]) & real
        masses.append(row_w[hit].sum())
        shares.append(hit.sum() / (len(row_x) if variant == "padding counted" else real.sum()))
        ratios.append(masses[-1] / shares[-1] if shares[-1] else 0.0)
        hits, reals = hits + hit.sum(), reals + real.sum()
    mass, share = float(np.mean(masses)), float(np.mean(shares))
    if variant == "token share":
        share = hits / reals
    lift = {"mean of ratios": float(np.mean(ratios)), "upside down": share / mass}.get(
        variant, mass / share
    )
    return np.array([mass, share, lift])


VARIANTS = {
    "padding counted": "The share counts the padding positions as tokens: divide each review's "
    "count of chosen tokens by its own number of real tokens (X != 0), not by T.",
    "token share": "The share is taken over all the tokens of the batch together, so long "
    "reviews weigh more: take each review's fraction, then the mean over the reviews.",
    "mean of ratios": "The lift is the mean of each review's mass / share: it is the ratio of "
    "the two means, mass / share.",
    "upside down": "The lift is share / mass: it is mass / share (above 1 when the chosen "
    "words get more than their share of the weight).",
}


def check_attention_lift(fn: Callable, *, N: int = 6, T: int = 9, V: int = 12, K: int = 4,
                         seed: int = 0) -> None:  # fmt: skip
    """Check ``attention_lift(weights, X, chosen) -> (mass, share, lift)`` on random attention
    weights (a softmax over each review's real positions), padded ids and ``K`` chosen ids."""
    rng = seeded(seed)
    lengths = lengths_for(rng, N, T)
    mask = mask_of(lengths, T)
    X = torch.from_numpy(rng.integers(1, V, size=(N, T))) * mask
    chosen = torch.from_numpy(rng.choice(np.arange(1, V), size=K, replace=False)).long()
    X[0, 0] = chosen[0]  # at least one chosen token
    scores = torch.from_numpy(rng.normal(scale=2.0, size=(N, T))).float()
    weights = torch.exp(scores) * mask  # attention weights: 0 on padding, each row sums to 1
    weights = weights / weights.sum(dim=1, keepdim=True)
    out = unpack(call_unchanged(fn, "attention_lift", weights, X, chosen),
                 "attention_lift(weights, X, chosen)", ("mass", "share", "lift"))  # fmt: skip
    got = np.array([number(name, v) for name, v in zip(("mass", "share", "lift"), out)])
    w, x, c = weights.double().numpy(), X.numpy(), set(chosen.tolist())
    want = _reference(w, x, c)
    causes = [Cause(_reference(w, x, c, variant=k), why) for k, why in VARIANTS.items()]
    compare("(mass, share, lift)", got, want, threshold=1e-5, causes=causes, dtype=None,
            hint="mass: the mean over reviews of the weight on chosen tokens; share: the mean "
                 "over reviews of the fraction of real tokens that are chosen; lift = mass / share.")  # fmt: skip
    passed(f"attention_lift: mass {want[0]:.4f}, share {want[1]:.4f}, lift {want[2]:.4f} on {N} "
           f"reviews (lengths {lengths.tolist()}) and {K} chosen words.")  # fmt: skip
