"""Lab 5: the check of the trained translator, on the lab's held-out test split.

:func:`check_translate` sends English sentences of the test split (drawn with
``seeded(seed)``) and two edge sentences (a word no training sentence has, and capitals
with punctuation), checks that one French string comes back for each, and measures
sacrebleu's corpus BLEU of the test sentences two ways: (a) on the normalised French (the
text the model was trained on, as ``normalize`` writes it), which must reach the
threshold, and (b) against the original French, lower-cased (what a reader sees).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import sacrebleu

from utils.checks.core import passed, seeded
from utils.checks.engine import call_unchanged, describe, fail

__all__ = ["check_translate", "lab_split"]

EDGE = ["i am a zyxwvut .", "HE IS VERY TALL!"]
"""Sent after the test sentences: an unknown word, and capitals with punctuation."""

SPECIALS = ("<eos>", "<sos>", "<pad>")


@functools.cache
def lab_split():
    """``(train, test)``: the lab's pairs (``tutorial_pairs``) and its fixed split."""
    from utils.data import load_dataset
    from utils.data.translation import split_pairs, tutorial_pairs

    return split_pairs(tutorial_pairs(load_dataset("eng-fra", progress=False)))


def _bleu(hyps, refs) -> float:
    return sacrebleu.corpus_bleu(hyps, [refs], lowercase=True, force=True).score


def _outputs(out, sentences) -> list[str]:
    """The translations as a list of strings, or a failure that says what came instead."""
    n = len(sentences)
    if not isinstance(out, list | tuple) or len(out) != n:
        size = f" of {len(out)}" if isinstance(out, list | tuple) else ""
        raise fail(f"translate returned a {describe(out)}{size}, expected a list of {n} French "
                   "strings (one per sentence).",
                   "Did it forget to `return`?" if out is None else None)  # fmt: skip
    for s, h in zip(sentences, out):
        if isinstance(h, list | tuple) and all(isinstance(t, str) for t in h):
            raise fail(f"translate returned the token list {list(h)[:8]} for {s!r}, expected "
                       "a string.", "Join the tokens into a sentence: detokenize(tokens).")  # fmt: skip
        if not isinstance(h, str):
            raise fail(f"translate returned a {describe(h)} for {s!r}, expected a string.",
                       "Decode the ids to tokens (tgt_vocab.decode), then detokenize them.")  # fmt: skip
        special = next((t for t in SPECIALS if t in h), None)
        if special:
            raise fail(f"translate returned {h!r} for {s!r}: it contains {special}.",
                       "Cut each hypothesis at the first <eos> (cut_at_eos) and drop the "
                       "special tokens before detokenizing.")  # fmt: skip
    return list(out)


def check_translate(fn: Callable, *, n: int = 300, seed: int = 13, threshold: float = 30.0):
    """Check a trained ``translate(sentences) -> [French, ...]``: ``n`` English sentences of
    the test split (and two edge sentences) go in, one string each must come back, and the
    corpus BLEU on the normalised French must reach ``threshold``."""
    from utils.data.translation import normalize

    _, test = lab_split()
    idx = np.sort(seeded(seed).choice(len(test), size=min(n, len(test)), replace=False))
    rows = [test[i] for i in idx.tolist()]
    sentences = [p.english for p in rows] + list(EDGE)
    hyps = _outputs(call_unchanged(fn, "translate", sentences), sentences)[: len(rows)]
    bleu = _bleu([normalize(h) for h in hyps], [p.french for p in rows])
    original = _bleu(hyps, [p.french_original.lower() for p in rows])
    scores = (f"BLEU {bleu:.1f} on the normalised French ({original:.1f} against the original "
              f"French, lower-cased) on {len(rows)} held-out test sentences")  # fmt: skip
    if bleu < threshold:
        same = np.mean([normalize(h) == p.english for h, p in zip(hyps, rows)])
        hint = ("It returns the English sentences: translate them with the model."
                if same > 0.5 else
                "Is the model trained and in eval mode, and is the source encoded as in "
                "training (normalize, the source vocabulary, <unk>, <eos>)?")  # fmt: skip
        raise fail(f"translate: {scores}, below {threshold:.1f}.", hint)
    passed(f"translate: {scores}, threshold {threshold:.1f}; one string per sentence, edge "
           "sentences included.")  # fmt: skip
