"""Lab 5: the check of corpus BLEU.

The reference is sacrebleu's ``corpus_bleu`` (no tokenisation, no smoothing), on corpora
drawn from a small vocabulary as perturbations of the references, so that every n-gram
order has matches: hypotheses shorter in total (the brevity penalty at work), longer,
with repeated words (clipping at work), a corpus without any 4-gram match (BLEU 0), and
one where a third of the hypotheses have 1 to 3 words (no 4-gram, maybe no bigram).
The known wrong answers (no brevity penalty, unclipped counts, a mean of sentence BLEUs,
n-grams up to 3, ...) come from a separate count of the n-grams, combined wrongly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import sacrebleu

from utils.checks.core import CheckError, passed, seeded
from utils.checks.engine import Cause, call_unchanged, compare, fail, number

__all__ = ["check_corpus_bleu"]

WORDS = ["le", "la", "chat", "chien", "est", "sur", "table", "noir", "petit", "il", "a",
         "un", "une", "maison", "!", "?"]  # fmt: skip
ALIEN = "xyz"  # a word no reference has


def _sacrebleu(hyps, refs) -> float:
    return sacrebleu.corpus_bleu(hyps, [refs], tokenize="none", smooth_method="none").score


def _stats(hyps, refs):
    """sacrebleu's clipped matches and totals (n = 1..4) and the lengths c, r: the wrong
    variants below are built from the reference's own statistics."""
    s = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none", smooth_method="none")
    return list(s.counts), list(s.totals), s.sys_len, s.ref_len


def _unclipped(hyps, refs) -> list[int]:
    """Matches without clipping: every hypothesis n-gram found anywhere in its reference."""
    matches = [0] * 4
    for hyp, ref in zip(hyps, refs):
        words, ref_words = hyp.split(), ref.split()
        for n in range(1, 5):
            seen = {tuple(ref_words[i : i + n]) for i in range(len(ref_words) - n + 1)}
            matches[n - 1] += sum(
                tuple(words[i : i + n]) in seen for i in range(len(words) - n + 1)
            )
    return matches


def _combine(correct, total, c, r, *, orders=4, mean="geometric", bp="r/c", percent=100.0):
    p = [k / t if t else 0.0 for k, t in zip(correct[:orders], total[:orders])]
    if mean == "arithmetic":
        m = sum(p) / orders
    elif min(p) == 0:
        return 0.0
    else:
        m = math.exp(sum(math.log(x) for x in p) / orders)
    if bp == "none" or c == 0:
        brevity = 1.0
    elif bp == "always":
        brevity = math.exp(1 - r / c)
    elif c >= r:
        brevity = 1.0
    else:
        brevity = math.exp(1 - (r / c if bp == "r/c" else c / r))
    return percent * brevity * m


def _variants(hyps, refs) -> list[tuple[float, str]]:
    counts = _stats(hyps, refs)
    matches, totals, c, r = counts
    ref_totals = _stats(refs, hyps)[1]  # hypotheses and references swapped: the references' n-grams
    sentence = [_sacrebleu([h], [g]) for h, g in zip(hyps, refs)]
    variants = [
        (_combine(*counts, bp="none"), "The brevity penalty is missing: multiply by "
         "exp(1 - r / c) when the hypotheses are shorter (c < r tokens in all)."),
        (_combine(_unclipped(hyps, refs), totals, c, r), "The n-gram counts are not clipped: a "
         "hypothesis n-gram counts at most as often as it occurs in the reference."),
        (float(np.mean(sentence)), "It is the mean of the sentence BLEUs: corpus BLEU pools "
         "the n-gram counts and lengths of all sentences first."),
        (_combine(*counts, orders=3), "It uses n-grams up to 3: BLEU takes n = 1, 2, 3, 4."),
        (_combine(*counts, mean="arithmetic"), "It is the arithmetic mean of the precisions: "
         "BLEU takes their geometric mean, exp(mean of the logs)."),
        (_combine(*counts, bp="c/r"), "The brevity penalty is exp(1 - c / r): it is "
         "exp(1 - r / c), r reference and c hypothesis tokens."),
        (_combine(*counts, bp="always"), "The brevity penalty is applied when the hypotheses "
         "are longer too: only when c < r."),
        (_combine(*counts, percent=1.0), "It is a fraction: return the score in percent "
         "(times 100), as sacrebleu does."),
        (_combine(matches, ref_totals, c, r), "The precisions divide by the "
         "references' n-grams: divide by the hypotheses' (that is what precision means)."),
    ]  # fmt: skip
    negative = [sum(len(h.split()) - n + 1 for h in hyps) for n in range(1, 5)]
    if min(negative) > 0 and negative != totals:
        variants.append((_combine(matches, negative, c, r), "A sentence of fewer than n words "
                         "is counted with a negative number of n-grams (len - n + 1 < 0): it "
                         "has none, max(len - n + 1, 0)."))  # fmt: skip
    return variants


def _perturbed(rng: np.random.Generator, ref: list[str]) -> list[str]:
    """The reference with one or two edits after its first 4 words (a 4-gram stays)."""
    h = list(ref)
    for _ in range(int(rng.integers(1, 3))):
        i = int(rng.integers(4, len(h) + 1))
        op = rng.integers(3)
        if op == 0 and i < len(h):
            h[i] = WORDS[rng.integers(len(WORDS))]
        elif op == 1 and i < len(h) and len(h) > 5:
            del h[i]
        else:
            h.insert(i, WORDS[rng.integers(len(WORDS))])
    return h


def _corpora(rng: np.random.Generator, n: int) -> list[tuple[str, list[str], list[str]]]:
    refs = [[WORDS[k] for k in rng.integers(0, len(WORDS), rng.integers(6, 12))] for _ in range(n)]
    mixed = [_perturbed(rng, g) for g in refs]
    shorter = [g[: len(g) - 1 - int(rng.integers(0, 2))] for g in refs]
    longer = [g + [WORDS[rng.integers(len(WORDS))] for _ in range(2)] for g in mixed]
    repeated = [g[:4] + [g[0]] * 3 + g[4:-1] for g in refs]
    no_4gram = [[w for i, x in enumerate(g) for w in ([x, ALIEN] if i % 3 == 2 else [x])]
                for g in refs]  # fmt: skip
    short = [g[: int(rng.integers(1, 4))] if i % 3 == 0 else g for i, g in enumerate(mixed)]
    ref_text = [" ".join(g) for g in refs]
    return [
        (name, [" ".join(h) for h in hyps], list(ref_text))
        for name, hyps in [("perturbed", mixed), ("shorter: brevity penalty", shorter),
                           ("longer", longer), ("repeated words: clipping", repeated),
                           ("no 4-gram in common", no_4gram),
                           ("some hypotheses of 1 to 3 words", short)]
    ]  # fmt: skip


def check_corpus_bleu(fn: Callable, *, n: int = 20, seed: int = 12) -> None:
    """Check ``corpus_bleu(hypotheses, references) -> BLEU in percent`` against sacrebleu
    (tokenize="none", no smoothing) on six corpora of ``n`` sentences: perturbed, shorter
    (brevity penalty), longer, with repeated words (clipping), with no 4-gram match (0), and
    with some hypotheses of 1 to 3 words."""
    rng = seeded(seed)
    results = []
    for name, hyps, refs in _corpora(rng, n):
        try:
            out = call_unchanged(fn, "corpus_bleu", hyps, refs)
        except CheckError as e:
            if "math domain error" not in str(e) and "ZeroDivisionError" not in str(e):
                raise
            raise fail(f"corpus_bleu failed on the corpus '{name}': "
                       f"{str(e).removeprefix('[FAIL] ').split(' It was called')[0]}.",
                       "When a precision is 0 (no 4-gram in common), BLEU is 0: return 0.0 "
                       "before taking the log.") from e  # fmt: skip
        if isinstance(out, tuple | list):
            raise fail(f"corpus_bleu returned a {type(out).__name__}, expected one number.",
                       "Return the score alone, in percent.")  # fmt: skip
        got = number(f"corpus_bleu ({name})", out)
        want = _sacrebleu(hyps, refs)
        label = f"BLEU ({name}, {n} sentences)"
        if not math.isfinite(got):
            raise fail(f"{label} is {got}, expected a finite number.",
                       "When a precision is 0, BLEU is 0 (log(0) is -inf): return 0.0.")  # fmt: skip
        if abs(got - want) > 1e-6:
            variants = [(v, why) for v, why in _variants(hyps, refs) if abs(v - want) > 1e-6]
            compare(label, np.array(got), np.array(want), threshold=1e-8, dtype=None,
                    causes=[Cause(np.array(v), why) for v, why in variants],
                    hint="Pool the clipped n-gram matches and the hypothesis n-grams (n = 1..4) "
                    "over the corpus; BLEU = 100 * BP * exp(mean of the 4 log precisions).")  # fmt: skip
        results.append(f"{want:.1f}")
    # the five corpora named; the sixth (short hypotheses) guards max(len - n + 1, 0)
    passed(f"corpus_bleu: sacrebleu's score on {n} sentences perturbed, shorter (brevity "
           "penalty), longer, with repeated words (clipping) and with no 4-gram match "
           f"({', '.join(results[:5])}).")  # fmt: skip
