"""Lab 4: checks of sampling (``sampling_probs``) and generation (``generate_from``).

``sampling_probs`` is compared with the distribution written out in float64 NumPy:
``exp(z - max z)`` normalised, with ``z = logits / T`` and every logit below the k-th
largest of its row set to minus infinity. Known wrong answers (the temperature applied
after the softmax, multiplied instead of divided, k + 1 logits kept, the others zeroed
instead of removed) are the same formula with one thing changed. One row (V,), as
``sample_ids`` passes it, must work as well as a batch (N, V).

``generate_from`` is checked by what any correct sampler must do: with ``top_k=1`` it is
greedy decoding, compared with the reference model fed the prompt and then its own
argmax, one character at a time; with ``top_k=3`` every character it draws is among the
three most likely under the reference given the text so far; the same seed gives the same
text, and different seeds give different texts. Last, 600 characters drawn at temperature
2 from a model whose next-character distribution never changes (the head's weight zero, its
bias b) must show character 0 about as often as softmax(b / 2) says: a temperature ignored
or applied twice, or a generator seeded anew at every step (the same random number every
time), does not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import CheckError, passed, seeded
from utils.checks.engine import Cause, call_unchanged, compare, fail, tensor
from utils.checks.lab04.common import Reference, long_tensor, random_weights

__all__ = ["check_generate", "check_sampling_probs"]


def _probs(logits: np.ndarray, T: float, k: int | None, *, after=False, times=False,
           zero_out=False) -> np.ndarray:  # fmt: skip
    z = logits * T if times else logits if after else logits / T
    if k is not None:
        kth = np.sort(z, axis=1)[:, -k][:, None]
        z = np.where(z >= kth, z, 0.0 if zero_out else -np.inf)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


CASES = [(1.0, None), (0.5, None), (2.0, 5), (0.8, 1), (1.5, 3)]


def check_sampling_probs(fn: Callable, *, N: int = 4, V: int = 12, seed: int = 0) -> None:
    """Check ``sampling_probs(logits, temperature, top_k) -> probs`` (N, V) for several
    temperatures and ``top_k`` (None: every character) against the formula."""
    rng = seeded(seed)
    logits = torch.tensor(rng.normal(scale=2.0, size=(N, V)))
    for T, k in CASES:
        label = f"sampling_probs(logits, temperature={T}, top_k={k})"
        got = tensor(label, call_unchanged(fn, "sampling_probs", logits, T, k), (N, V),
                     "One probability per character of each row: (N, V).")  # fmt: skip
        p = got.double().numpy()
        if not np.isfinite(p).all() or (p < 0).any():
            raise fail(f"{label} has negative or non-finite entries.",
                       "Set the logits outside the top k to -inf before the softmax, not the "
                       "probabilities.")  # fmt: skip
        sums = p.sum(axis=1)
        if not np.allclose(sums, 1, atol=1e-6):
            hint = (f"The rows sum to {sums[0]:.4g}, 1 / T = {1 / T:.4g}: the probabilities were "
                    "divided by T after the softmax; divide the logits instead."
                    if np.allclose(sums, 1 / T, atol=1e-6) else
                    "Renormalise after keeping the top k (a softmax over the kept logits does it).")  # fmt: skip
            raise fail(f"{label}: the rows sum to {sums.round(4).tolist()}, expected 1.", hint)
        L = logits.numpy()
        causes = [Cause(_probs(L, T, k, after=True), "The temperature has no effect: divide the "
                        "logits by T before the softmax (p ** (1/T) renormalised is the same), "
                        "not the probabilities after it.")]  # fmt: skip
        causes.append(Cause(_probs(L, T, k, times=True), "The logits are multiplied by T: divide "
                            "them (T < 1 sharpens the distribution, T > 1 flattens it)."))  # fmt: skip
        if k is not None:
            if k < V:
                causes.append(Cause(_probs(L, T, k + 1), f"It keeps k + 1 = {k + 1} characters: "
                                    "keep the logits >= the k-th largest."))  # fmt: skip
            if k > 1:
                causes.append(Cause(_probs(L, T, k - 1), f"It keeps k - 1 = {k - 1} characters: "
                                    "keep the logits >= the k-th largest (the k-th included)."))  # fmt: skip
            causes.append(Cause(_probs(L, T, k, zero_out=True), "The logits outside the top k "
                                "are set to 0, which still gives them probability: set them to "
                                "-inf."))  # fmt: skip
        compare(label, p, _probs(L, T, k), threshold=1e-6, causes=causes, dtype=None,
                hint="softmax(logits / T) over the k largest logits of each row, 0 elsewhere.")  # fmt: skip
    row, label = logits[-1].clone(), "sampling_probs(logits[-1], temperature=0.7, top_k=3)"
    one_d = ("sample_ids passes one row of logits, shape (V,): work on the last axis "
             "(dim=-1) for the top k and the softmax, so that (V,) and (N, V) both work.")  # fmt: skip
    try:
        got = call_unchanged(fn, "sampling_probs", row, 0.7, 3)
    except CheckError as e:
        raise fail(
            f"for a single row of {V} logits, {str(e).removeprefix('[FAIL] ')}", one_d
        ) from e
    got = tensor(label, got, (V,), "The shape of logits: (V,) for one row. " + one_d)
    compare(label, got.double(), _probs(row.numpy()[None], 0.7, 3)[0], threshold=1e-6,
            dtype=None, hint=one_d)  # fmt: skip
    passed(f"sampling_probs: {len(CASES)} settings of temperature and top_k on ({N}, {V}) "
           "logits: distributions as the formula gives them.")  # fmt: skip


def _greedy(weights, prompt, n, *, carry=True, prompt_tail=False):
    model = Reference(weights).eval()
    with torch.no_grad():
        logits, state = model((prompt[-1:] if prompt_tail else prompt)[None])
        out = []
        for _ in range(n):
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            logits, state = model(torch.tensor([[nxt]]), state if carry else None)
    return np.array(out, dtype=np.float64)


def check_generate(fn: Callable, *, P: int = 6, n: int = 25, V: int = 10, E: int = 4, H: int = 8,
                   layers: int = 2, cell: str = "gru", seed: int = 0) -> None:  # fmt: skip
    """Check ``generate_from(weights, prompt_ids, n, temperature, top_k, seed) -> ids`` (n,):
    greedy with ``top_k=1``; only top-3 characters with ``top_k=3``; reproducible for a
    seed; different for different seeds."""
    rng = seeded(seed)
    for _ in range(50):  # a model whose greedy text depends on the state and the whole prompt
        weights = random_weights(rng, V=V, E=E, H=H, layers=layers, cell=cell, scale=1.5)
        prompt = torch.from_numpy(rng.integers(0, V, size=P)).long()
        want = _greedy(weights, prompt, n)
        others = [
            _greedy(weights, prompt, n, carry=False),
            _greedy(weights, prompt, n, prompt_tail=True),
        ]
        if all((o != want).any() for o in others) and (
            P == 1 or _greedy(weights, prompt[:1], 1)[0] != want[0]
        ):
            break
    label = "generate_from"
    hint = f"{n} new ids, the prompt not included: (n,)."

    def run(T, k, s):
        out = call_unchanged(fn, label, weights, prompt, n, T, k, s)
        ids = long_tensor(f"{label}(..., temperature={T}, top_k={k}, seed={s})", out, (n,), hint)
        if ((ids < 0) | (ids >= V)).any():
            raise fail(f"{label} returned ids outside [0, {V}): {ids.tolist()}.")
        return ids

    greedy = run(1.0, 1, 0)
    causes = [
        Cause(
            others[0],
            "Each character is fed from a zero state: carry the state returned by "
            "the model from one step to the next.",
        ),  # fmt: skip
        Cause(
            others[1],
            "Only the last character of the prompt is read: feed the whole prompt "
            "first, then generate from its final state.",
        ),  # fmt: skip
    ]
    compare(f"{label}(..., top_k=1)", greedy.double().numpy(), want,
            threshold=1e-12, causes=causes, dtype=None,
            hint="With top_k=1 only the most likely character can be drawn: feed the prompt, "
            "then one character at a time with the state carried.")  # fmt: skip
    drawn = run(1.0, 3, 7)
    model = Reference(weights).eval()
    with torch.no_grad():
        logits, _ = model(torch.cat([prompt, drawn])[None])
    top3 = logits[0, P - 1 : P - 1 + n].topk(3, dim=1).indices
    outside = [i for i in range(n) if int(drawn[i]) not in top3[i].tolist()]
    if outside:
        i = outside[0]
        raise fail(f"{label}(..., top_k=3) drew id {int(drawn[i])} at step {i}, which is not among "
                   f"the 3 most likely ({top3[i].tolist()}) given the prompt and the text drawn "
                   "so far.", "Draw from sampling_probs(logits, temperature, top_k) of the last "
                   "position, and feed what you drew back in.")  # fmt: skip
    if not torch.equal(drawn, run(1.0, 3, 7)):
        raise fail(f"{label} gives another text for the same seed.",
                   "Draw with a torch.Generator seeded with `seed` (torch.multinomial(p, 1, "
                   "generator=g)), so a sample can be reproduced.")  # fmt: skip
    texts = {tuple(run(1.5, None, s).tolist()) for s in (1, 2, 3)}
    if len(texts) == 1:
        raise fail(f"{label} gives the same text for seeds 1, 2 and 3 (temperature 1.5, top_k "
                   "None).", "Sample from the distribution (torch.multinomial), not its argmax, "
                   "with a generator seeded by `seed`.")  # fmt: skip
    _check_frequencies(fn, weights, prompt, V)
    passed(f"generate: greedy with top_k=1 ({n} ids after a prompt of {P}), only the top 3 with "
           "top_k=3, the same text for the same seed, different texts for different seeds.")  # fmt: skip


def _check_frequencies(fn: Callable, weights: dict, prompt: torch.Tensor, V: int, *,
                       draws: int = 600, T: float = 2.0, seed: int = 5) -> None:  # fmt: skip
    """A model whose next character is always drawn from softmax(b / T) (the head's weight
    zero, its bias b): character 0 must come about as often as that says. Independent draws
    at the right temperature pass; the temperature ignored or applied twice, or the same
    random number at every step (a generator made anew each step), do not."""
    b0 = T * float(np.log(0.35 / 0.65 * (V - 1)))  # p(0) = 0.35 at temperature T
    flat = {**weights, "head.weight": torch.zeros_like(weights["head.weight"]),
            "head.bias": torch.zeros_like(weights["head.bias"])}  # fmt: skip
    flat["head.bias"][0] = b0

    def p0(t: float) -> float:
        return float(np.exp(b0 / t) / (np.exp(b0 / t) + V - 1))

    label = f"generate_from(..., n={draws}, temperature={T}, top_k=None, seed={seed})"
    ids = long_tensor(label, call_unchanged(fn, "generate_from", flat, prompt, draws, T, None, seed),
                      (draws,), f"{draws} new ids, the prompt not included.")  # fmt: skip
    if len(set(ids.tolist())) == 1:
        raise fail(f"{label} drew id {int(ids[0])} at all {draws} steps from a model that gives "
                   f"every one of its {V} characters a probability of at least "
                   f"{(1 - p0(T)) / (V - 1):.2f} at each step.", "The draws must be independent: "
                   "make the seeded torch.Generator once, before the loop, and draw every "
                   "character with it (not a generator seeded anew at every step).")  # fmt: skip
    got, want = float((ids == 0).double().mean()), p0(T)
    if abs(got - want) > 0.08:
        raise fail(f"{label} drew id 0 in {got:.0%} of {draws} steps from a model that always "
                   f"gives it probability softmax(logits / T) = {want:.0%} (T ignored: "
                   f"{p0(1.0):.0%}; T applied twice: {p0(T * T):.0%}).", "Pass `temperature` "
                   "to sampling_probs, once: it divides the logits by T (do not divide them "
                   "yourself as well).")  # fmt: skip
