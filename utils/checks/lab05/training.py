"""Lab 5: checks of scheduled sampling (the teacher-forcing schedule and the mixed inputs).

A schedule is graded by its properties, not by one formula (linear, exponential and
inverse-sigmoid decays are all right): every value a probability, close to 1 at the
start, never increasing, never falling by more than 0.5 within 5 % of training (a
rounded or integer-divided progress), still mostly teacher forcing at 10 % of training,
and well below its start at the end. The mixed inputs are compared id by id with ``torch.where`` written
as a loop over the rows; the known wrong answers (the comparison inverted, the argmax
over the batch, always the truth, ...) are the same loop with one thing changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import passed, seeded
from utils.checks.engine import call_unchanged, describe, fail, number

__all__ = ["check_mix_inputs", "check_teacher_forcing_ratio"]


# ------------------------------------------------------------------ teacher_forcing_ratio


def check_teacher_forcing_ratio(fn: Callable, *, total_steps: int = 1000) -> None:
    """Check ``teacher_forcing_ratio(step, total_steps) -> p`` on about 200 steps from 0 to
    ``total_steps``: a probability, >= 0.9 at the start, never increasing, >= 0.5 at 10 %
    of training, and at least 0.25 below its start at the end."""
    steps = sorted({int(s) for s in np.linspace(0, total_steps, 200).round()}
                   | {round(0.1 * total_steps)})  # fmt: skip
    values = []
    for step in steps:
        out = call_unchanged(fn, "teacher_forcing_ratio", step, total_steps)
        p = number(f"teacher_forcing_ratio({step}, {total_steps})", out)
        if not (math.isfinite(p) and 0.0 <= p <= 1.0):
            raise fail(f"teacher_forcing_ratio({step}, {total_steps}) is {p:.6g}, expected a "
                       "probability in [0, 1].", "Clip it, or use a decay that stays in [0, 1].")  # fmt: skip
        values.append(p)
    head = f"teacher_forcing_ratio(step, total_steps={total_steps})"
    if values[0] < 0.9:
        raise fail(f"{head} starts at {values[0]:.4g} (step 0), expected at least 0.9.",
                   "Training starts with (almost) full teacher forcing: the ratio decays "
                   "from 1, it does not grow towards 1.")  # fmt: skip
    for (s0, p0), (s1, p1) in zip(zip(steps, values), zip(steps[1:], values[1:])):
        if p1 > p0 + 1e-12:
            raise fail(f"{head} increases from {p0:.6g} at step {s0} to {p1:.6g} at step {s1}.",
                       "The schedule must never increase: the model gets more of its own "
                       "guesses as training goes on.")  # fmt: skip
    drops = [
        (p0 - p1, s0, s1)
        for (s0, p0), (s1, p1) in zip(zip(steps, values), zip(steps[1:], values[1:]))
        if s1 - s0 <= total_steps / 20
    ]
    drop, s0, s1 = max(drops, default=(0.0, 0, 0))
    if drop > 0.5:
        raise fail(f"{head} falls by {drop:.3g} at once, from step {s0} to step {s1}.",
                   "A schedule decays gradually: is the progress rounded or an integer "
                   "division (step // total_steps, round(...))? Use step / total_steps.")  # fmt: skip
    tenth = values[steps.index(round(0.1 * total_steps))]
    if tenth < 0.5:
        raise fail(f"{head} is already {tenth:.4g} at 10 % of training (step "
                   f"{round(0.1 * total_steps)}), expected at least 0.5.",
                   "It collapses at once: decay with the progress step / total_steps, slowly "
                   "at first, so the model learns from the truth before its own guesses.")  # fmt: skip
    if values[-1] > values[0] - 0.25:
        raise fail(f"{head} goes from {values[0]:.4g} at the start to {values[-1]:.4g} at the "
                   "end, expected at least 0.25 lower: a schedule that never decays.",
                   "Let it fall with step / total_steps (e.g. an inverse sigmoid or a linear "
                   "decay).")  # fmt: skip
    passed(f"teacher_forcing_ratio: {len(steps)} steps to {total_steps}: a probability, "
           f"{values[0]:.3g} at the start, never increasing, {tenth:.3g} at 10 %, "
           f"{values[-1]:.3g} at the end.")  # fmt: skip


# ------------------------------------------------------------------ mix_inputs


def _mixed(y_true, logits, ratio, u, *, truth_if="below", argmax_dim=1, always=None):
    """The reference, row by row; the keywords give the known wrong variants."""
    best = logits.argmax(dim=argmax_dim)
    out = []
    for i in range(len(y_true)):
        take = (u[i] < ratio) if truth_if == "below" else (u[i] >= ratio)
        if always is not None:
            take = always
        out.append(int(y_true[i]) if take else int(best[i % len(best)]))
    return out


def _case(rng: np.random.Generator, N: int, V: int, ratio: float):
    logits = torch.tensor(rng.normal(scale=1.5, size=(N, V)))
    best = logits.argmax(1).numpy()
    y_true = torch.from_numpy((best + rng.integers(1, V, N)) % V)  # never the argmax
    u = rng.random(N)
    u[:2] = [0.25, 0.75][:N]  # both sides of ratio 0.5
    u = np.where(np.abs(u - ratio) < 1e-6, (u + 0.25) % 1.0, u)  # never u == ratio
    return y_true, logits, ratio, torch.from_numpy(u)


def check_mix_inputs(fn: Callable, *, N: int = 20, V: int = 7, seed: int = 10) -> None:
    """Check ``mix_inputs(y_true, logits_prev, ratio, u) -> (N,) ids``: the true token where
    u < ratio, else the argmax of logits_prev over the vocabulary; ratios 0, 1 and 0.5
    (and a square case N = V)."""
    if V < 2:
        raise ValueError("V must be at least 2")
    rng = seeded(seed)
    cases = [_case(rng, V, V, 0.5)] + [_case(rng, N, V, r) for r in (0.5, 0.0, 1.0)]
    for y_true, logits, ratio, u in cases:
        n = len(y_true)
        out = call_unchanged(fn, "mix_inputs", y_true, logits, ratio, u)
        label = f"mix_inputs(ratio={ratio}, N={n}, V={V})"
        if not isinstance(out, torch.Tensor):
            raise fail(f"{label} returned a {describe(out)}, expected a tensor of {n} ids.",
                       "Did it forget to `return`?" if out is None else "Stay in torch.")  # fmt: skip
        if tuple(out.shape) != (n,):
            raise fail(f"{label} returned shape {tuple(out.shape)}, expected ({n},).",
                       "One id per row: argmax over the vocabulary (dim 1).")  # fmt: skip
        if out.dtype != torch.long:
            raise fail(f"{label} returned dtype {out.dtype}, expected torch.int64 (long) ids.",
                       "Keep the ids' dtype (no float mask arithmetic): the embedding "
                       "needs int64 ids. Use torch.where(u < ratio, y_true, guess).")  # fmt: skip
        got = out.tolist()
        want = _mixed(y_true, logits, ratio, u)
        if got == want:
            continue
        head = f"{label} returned {got}, expected {want}."
        for variant, why in [
            (_mixed(y_true, logits, ratio, u, argmax_dim=0), "The argmax runs over the batch "
             "(dim 0): the model's guess is the argmax over the vocabulary (dim 1)."),
            (_mixed(y_true, logits, ratio, u, truth_if="above"), "The comparison is inverted: "
             "the true token goes where u < ratio (ratio = 1 is full teacher forcing)."),
            (_mixed(y_true, logits, ratio, u, always=True), "It always returns the true "
             "tokens: where u >= ratio the input is the model's own guess."),
            (_mixed(y_true, logits, ratio, u, always=False), "It always returns the model's "
             "guesses: where u < ratio the input is the true token."),
        ]:  # fmt: skip
            if got == variant:
                raise fail(head, why)
        guess = [i for i in range(n) if not u[i] < ratio]
        if any(got[i] != want[i] for i in guess) and all(0 <= got[i] < V for i in guess):
            raise fail(head, "Where u >= ratio the input is the argmax of logits_prev (the "
                       "model's best guess), not a sample from it.")  # fmt: skip
        raise fail(head, "Row i is y_true[i] when u[i] < ratio, else logits_prev[i].argmax().")
    passed(f"mix_inputs: int64 ids, the true token where u < ratio and the argmax of the "
           f"logits elsewhere (ratios 0, 1 and 0.5; N = {N}, V = {V}).")  # fmt: skip
