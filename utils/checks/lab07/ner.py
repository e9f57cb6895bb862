"""Visible and hidden checks of Lab 7, Part 1 (a named-entity tagger on WikiANN English).

Each ``check_*`` calls a student's function through the shared engine on seeded
inputs and compares what comes back with an independent computation: seqeval's
``get_entities`` and span metrics, ``F.cross_entropy`` on the real tokens only, and
(in :mod:`.crf`) brute-force enumeration of every tag path of a tiny linear-chain
CRF. Known wrong answers (padding counted, spans without their type, an I-X after
another type left invalid, F1 over tokens, ...) are outputs of deliberately changed
references, so the message names the likely mistake.

:func:`check_tagger` grades a *trained* tagger: it sends held-out test sentences
(tokens only) and computes seqeval's span F1 itself from the returned tags.
No function here has the signature of an exercise.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

from utils.checks.core import CheckError, passed, seeded
from utils.checks.engine import (
    Cause,
    call_unchanged,
    compare,
    describe,
    fail,
    keeps_graph,
    number,
)

__all__ = [
    "TAGS",
    "check_bio_to_spans",
    "check_masked_token_loss",
    "check_repair_bio",
    "check_span_f1",
    "check_tagger",
]

TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
"""WikiANN's tags, in the order of its ClassLabel (id = position)."""

THRESHOLD = 1e-7


# ------------------------------------------------------------------ BIO tags and spans


def _random_tags(rng: np.random.Generator, T: int, p_invalid: float = 0.3) -> list[str]:
    """A tag sequence with entities, and (with probability p_invalid per I-) invalid I- tags."""
    tags, types = [], ("PER", "ORG", "LOC")
    while len(tags) < T:
        kind = rng.choice(["O", "ent", "bad"], p=[0.45, 0.55 - p_invalid / 2, p_invalid / 2])
        typ = types[rng.integers(3)]
        if kind == "O":
            tags.append("O")
        else:
            first = "B-" if kind == "ent" else "I-"
            tags += [first + typ] + [f"I-{typ}"] * int(rng.integers(0, 3))
            if kind == "bad" and rng.random() < 0.5:  # a type change inside an entity
                tags.append(f"I-{types[(types.index(typ) + 1) % 3]}")
    return tags[:T]


def _spans_list(name: str, out) -> list[tuple]:
    if not isinstance(out, list | tuple):
        raise fail(f"{name} returned a {describe(out)}, expected a list of (type, start, end).",
                   "Did it forget to `return`?" if out is None else None)  # fmt: skip
    spans = []
    for s in out:
        if not (isinstance(s, tuple | list) and len(s) == 3):
            raise fail(f"{name} returned an item {s!r}, expected a tuple (type, start, end).")
        spans.append((s[0], int(s[1]), int(s[2])))
    return spans


def _spans_variants(tags: list[str]) -> list[tuple[list, str]]:
    want = get_entities(tags)
    only_b = [(t, s, e) for t, s, e in want if tags[s].startswith("B-")]
    merged, typ = [], ""  # a change of type inside an entity read as the same entity
    for t in tags:
        typ = (
            t[2:]
            if t.startswith("B-") or (t.startswith("I-") and (not merged or merged[-1] == "O"))
            else typ
        )
        merged.append(t if t == "O" or t.startswith("B-") else f"I-{typ}")
    return [
        ([(t, s, e + 1) for t, s, e in want], "end must be the index of the last token of the "
         "span (inclusive, as seqeval writes it), not one past it."),
        (get_entities(merged), "A change of type (B-PER then I-ORG) ends a span "
         "and starts a new one."),
        (only_b, "An I-X that follows O, or an entity of another type, starts a span too "
         "(seqeval's rule): only B-X was taken as a start."),
        ([(t, s, e) for t, s, e in want if e < len(tags) - 1], "A span that reaches the last "
         "token is dropped: close the open span after the loop."),
        ([s for s in want if s[1] > 0], "A span that starts at token 0 is dropped."),
    ]  # fmt: skip


def check_bio_to_spans(fn: Callable, *, n: int = 40, T: int = 12, seed: int = 0) -> None:
    """Check ``bio_to_spans(tags) -> [(type, start, end), ...]`` (end inclusive, in order)
    against seqeval's ``get_entities`` on ``n`` random tag sequences with invalid I- tags,
    plus empty, all-O and one-token sequences."""
    rng = seeded(seed)
    cases = [[], ["O"] * 5, ["B-PER"], ["I-LOC"], ["B-ORG", "I-ORG"], ["I-PER", "I-PER", "O"]]
    cases += [_random_tags(rng, int(rng.integers(1, T + 1))) for _ in range(n)]
    for tags in cases:
        got = _spans_list("bio_to_spans", call_unchanged(fn, "bio_to_spans", tags))
        want = get_entities(tags)
        if got == want:
            continue
        head = f"bio_to_spans({tags}) returned {got}, expected {want}."
        for variant, why in _spans_variants(tags):
            if got == variant:
                raise fail(head, why)
        if sorted(got) == sorted(want):
            raise fail(head, "The spans are right but not in order of their start.")
        raise fail(head, "A span starts at B-X, or at an I-X that follows O or another type; "
                   "it ends before the next O, B- or change of type.")  # fmt: skip
    passed(f"bio_to_spans: the spans of {len(cases)} tag sequences (invalid ones included) "
           "match seqeval's get_entities.")  # fmt: skip


def _repaired(tags: list[str]) -> list[str]:
    """The reference: the spans seqeval reads, written back as valid BIO."""
    out = ["O"] * len(tags)
    for typ, s, e in get_entities(tags):
        out[s : e + 1] = [f"B-{typ}"] + [f"I-{typ}"] * (e - s)
    return out


def check_repair_bio(fn: Callable, *, n: int = 40, T: int = 12, seed: int = 1) -> None:
    """Check ``repair_bio(tags) -> tags`` (a new list, valid BIO, the same spans as seqeval
    reads from the input) on random sequences with invalid I- tags."""
    rng = seeded(seed)
    cases = [[], ["O", "I-PER"], ["I-LOC"], ["B-PER", "I-ORG", "I-ORG"], ["B-PER", "I-PER"]]
    cases += [_random_tags(rng, int(rng.integers(1, T + 1))) for _ in range(n)]
    for tags in cases:
        got = call_unchanged(fn, "repair_bio", tags)
        want = _repaired(tags)
        if not isinstance(got, list) or len(got) != len(tags):
            raise fail(f"repair_bio({tags}) returned a {describe(got)}, expected a list of {len(tags)} tags.",
                       "Did it forget to `return`?" if got is None else None)  # fmt: skip
        if got == want:
            continue
        head = f"repair_bio({tags}) returned {got}, expected {want}."
        o_fix = [w if w == t or not t.startswith("I-") else "O" for t, w in zip(tags, want)]
        after_o = [("B" + t[1:]) if t.startswith("I-") and (i == 0 or tags[i - 1] == "O") else t
                   for i, t in enumerate(tags)]  # fmt: skip
        not_first = [t if i == 0 else w for i, (t, w) in enumerate(zip(tags, want))]
        for variant, why in [
            (o_fix, "An invalid I-X becomes B-X (it starts the span seqeval reads), not O."),
            (after_o, "An I-X after B-Y or I-Y of another type is invalid too: it becomes B-X."),
            (not_first, "An I-X at the first token (nothing before it) becomes B-X too."),
            (list(tags), "Nothing was repaired."),
        ]:
            if got == variant:
                raise fail(head, why)
        raise fail(
            head, "Change only the I-X that follow O, another type or nothing; keep the rest."
        )
    passed(f"repair_bio: {len(cases)} tag sequences repaired to valid BIO with the spans "
           "seqeval reads from them; the input lists are unchanged.")  # fmt: skip


def _seqeval(y_true, y_pred) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([f(y_true, y_pred) for f in (precision_score, recall_score, f1_score)])


def _token_prf(y_true, y_pred) -> np.ndarray:
    """Precision, recall, F1 over entity tokens (a non-O token counts when its tag matches)."""
    t = [a for s in y_true for a in s]
    p = [b for s in y_pred for b in s]
    tp = sum(a == b != "O" for a, b in zip(t, p))
    pred, true = sum(b != "O" for b in p), sum(a != "O" for a in t)
    prec, rec = tp / max(pred, 1), tp / max(true, 1)
    return np.array([prec, rec, 2 * prec * rec / max(prec + rec, 1e-12)])


def _noisy(rng: np.random.Generator, tags: list[str]) -> list[str]:
    out = list(tags)
    for i in range(len(out)):
        if rng.random() < 0.25:
            out[i] = TAGS[rng.integers(len(TAGS))]
    return out


_ZERO = (
    "With no predicted span, precision is 0 / 0; with no true span, recall is 0 / 0: take "
    "each as 0, as seqeval does, and F1 as 0 when precision + recall is 0."
)


def check_span_f1(fn: Callable, *, n: int = 60, T: int = 10, seed: int = 2) -> None:
    """Check ``span_f1(y_true, y_pred) -> (precision, recall, f1)``, micro-averaged over
    entity spans (type, start, end) of lists of sentences, against seqeval; and on
    predictions with no span at all."""
    rng = seeded(seed)
    y_true = [_random_tags(rng, int(rng.integers(1, T + 1)), p_invalid=0.0) for _ in range(n)]
    y_pred = [_noisy(rng, s) for s in y_true]
    no_span = [["O"] * len(s) for s in y_true]
    cases = [(y_true, y_pred, ""), (y_true, no_span, " (no span predicted)"),
             (no_span, y_pred, " (no true span)"), (y_true, y_true, " (perfect)")]  # fmt: skip
    for yt, yp, where in cases:
        try:
            out = call_unchanged(fn, "span_f1", yt, yp)
        except CheckError as e:
            if "ZeroDivisionError" not in str(e):
                raise
            raise fail(f"span_f1 raised ZeroDivisionError{where}.", _ZERO) from e
        if not isinstance(out, tuple | list) or len(out) != 3:
            raise fail(f"span_f1 returned a {describe(out)}, expected (precision, recall, f1).",
                       "Did it forget to `return`?" if out is None else None)  # fmt: skip
        got = np.array([number(k, v) for k, v in zip(("precision", "recall", "f1"), out)])
        want = _seqeval(yt, yp)
        untyped = _seqeval(*[[[t[:2] + "X" if t != "O" else t for t in s] for s in y]
                             for y in (yt, yp)])  # fmt: skip
        per_type = [_seqeval([[t if t.endswith(k) else "O" for t in s] for s in yt],
                             [[t if t.endswith(k) else "O" for t in s] for s in yp])
                    for k in ("PER", "ORG", "LOC")]  # fmt: skip
        flat = [a for s in yt for a in s], [b for s in yp for b in s]
        causes = [
            Cause(_token_prf(yt, yp), "It counts tokens: the field's F1 counts whole spans "
                  "(type, start, end), right only when all of it is right."),
            Cause(np.full(3, np.mean([a == b for a, b in zip(*flat)])), "It is token accuracy, "
                  "not span precision, recall and F1."),
            Cause(untyped, "The spans' type is ignored: (PER, 0, 1) and (ORG, 0, 1) differ."),
            Cause(np.mean(per_type, axis=0), "It is the macro average over the three types: "
                  "the lab's F1 is micro (all spans pooled)."),
            Cause(want[[1, 0, 2]], "precision and recall are swapped: precision divides by the "
                  "predicted spans, recall by the true ones."),
            Cause(np.array([*want[:2], want[:2].mean()]), "F1 is the harmonic mean of precision "
                  "and recall, 2 P R / (P + R), not their average (P + R) / 2."),
        ]  # fmt: skip
        per_sentence = (  # computed only if the answer is wrong (compare tries causes then)
            Cause(np.mean([_seqeval([a], [b]) for a, b in zip(yt, yp)], axis=0), "It is a mean "
                  "of per-sentence scores: pool the spans of all sentences (micro average), so a "
                  "sentence with many entities weighs more.") for _ in range(1)
        )  # fmt: skip
        hint = ("Pool the spans of all sentences, each as (sentence, type, start, end); "
                "precision = correct / predicted, recall = correct / true.")  # fmt: skip
        compare("(precision, recall, f1)" + where, got, want, threshold=1e-9,
                causes=itertools.chain(causes, per_sentence),
                dtype=None, hint=_ZERO if where.startswith(" (no") else hint)  # fmt: skip
    passed(f"span_f1: precision, recall and F1 match seqeval on {n} sentences (and with no "
           "span predicted, and a perfect prediction).")  # fmt: skip


# ------------------------------------------------------------------ masked token loss


def check_masked_token_loss(fn: Callable, *, N: int = 4, T: int = 6, C: int = 5, seed: int = 3):
    """Check ``masked_token_loss(scores, Y, mask) -> loss`` (a 0-d tensor: the mean
    cross-entropy over the real tokens) against ``F.cross_entropy`` on the masked tokens,
    value and gradient (zero on the padding)."""
    rng = seeded(seed)
    lengths = np.concatenate([[T, 1], rng.integers(1, T + 1, N - 2)])
    mask = torch.from_numpy(np.arange(T)[None] < lengths[:, None])
    scores = torch.tensor(rng.normal(size=(N, T, C)), requires_grad=True)
    Y = torch.from_numpy(rng.integers(0, C, (N, T)))
    ref = scores.detach().clone().requires_grad_()
    want = F.cross_entropy(ref[mask], Y[mask])
    want.backward()
    s, m = scores.detach(), mask
    ce = F.cross_entropy(s.reshape(-1, C), Y.reshape(-1), reduction="none").view(N, T)
    causes = [
        Cause(ce.mean(), "The padding is counted: average over the real tokens only (mask)."),
        Cause(ce[m].sum(), "It is the sum over the tokens: take the mean over the real tokens."),
        Cause((ce * m).sum(1).div(m.sum(1)).mean(), "It is a mean per sentence, then over "
              "sentences: every real token must weigh the same (mean over all real tokens)."),
        Cause((ce * m).sum() / N, "It is divided by the number of sentences N: divide by the "
              "number of real tokens."),
        Cause(-s.gather(2, Y[..., None]).squeeze(2)[m].mean(), "The log-softmax is missing: "
              "the scores are raw, the loss is -log softmax(scores)[Y]."),
        Cause(-s.softmax(-1).gather(2, Y[..., None]).squeeze(2)[m].mean(), "It is the negative "
              "probability, not the negative log-probability."),
        Cause((ce * m).mean(), "The padded positions count in the denominator: (nll * mask).mean() "
              "divides by N * T; divide the sum by the number of real tokens, mask.sum()."),
        Cause(ce.sum() / m.sum(), "The padding is added to the sum: multiply by the mask (or "
              "index with it) before summing."),
        Cause(ce[m & (Y != 0)].mean(), "Tag 0 (O) is left out: the padding is marked by the mask, "
              "not by a tag id (ignore_index=0 drops every real O token)."),
        Cause(-s.log_softmax(1).gather(2, Y[..., None]).squeeze(2)[m].mean(), "The log-softmax "
              "runs over the wrong axis: normalise over the C tags (dim=-1), not the time steps."),
    ]  # fmt: skip
    out = call_unchanged(fn, "masked_token_loss", scores, Y, mask)
    if not isinstance(out, torch.Tensor):
        raise fail(f"masked_token_loss returned a {describe(out)}, expected a 0-d tensor.",
                   "Return the tensor itself (no .item(), no float()): training calls "
                   ".backward() on it." if out is not None else "Did it forget to `return`?")  # fmt: skip
    if out.dim() != 0:
        raise fail(f"masked_token_loss returned a tensor of shape {tuple(out.shape)}, expected 0-d.",
                   "Average over the real tokens down to one number.")  # fmt: skip
    compare("loss", out, want.detach().numpy(), threshold=THRESHOLD,
            causes=[(c.variant.numpy(), c.explanation) for c in causes])  # fmt: skip
    if not keeps_graph(fn):  # the grader's stand-in returns values only
        passed("masked_token_loss: the mean cross-entropy over the real tokens, as "
               "F.cross_entropy on the masked tokens (gradient checked in the notebook).")  # fmt: skip
        return
    if out.grad_fn is None:
        raise fail("The loss has no gradient: it is cut from the scores.",
                   "Stay in torch (no .item(), .detach() or NumPy on the way).")  # fmt: skip
    out.backward()
    compare("d loss / d scores", scores.grad, ref.grad.numpy(), threshold=THRESHOLD,
            hint="The padding positions must get zero gradient.")  # fmt: skip
    passed("masked_token_loss: the mean cross-entropy over the real tokens, value and gradient "
           "(zero on the padding) as F.cross_entropy on the masked tokens.")  # fmt: skip


# ------------------------------------------------------------------ the trained tagger

_EDGE = [["Paris"], ["Zqwxvbn", "Kjtrplk"], ["(", ")"], ["the"] * 60]


def _test_split():
    from utils.data import load_dataset

    return load_dataset("wikiann-en", progress=False)["test"]


def check_tagger(fn: Callable, *, n: int = 1000, seed: int = 7, threshold: float = 0.70) -> None:
    """Check a trained ``tag(sentences) -> tags``: ``n`` test sentences drawn with
    ``seeded(seed)`` (tokens only) go in, one tag of ``TAGS`` per token must come back,
    and seqeval's span F1 against the test labels must reach ``threshold``."""
    test = _test_split()
    idx = np.sort(seeded(seed).choice(len(test), size=min(n, len(test)), replace=False))
    rows = test.select(idx.tolist())
    sentences = [list(s) for s in rows["tokens"]] + [list(s) for s in _EDGE]
    out = call_unchanged(fn, "tag", sentences)
    if not isinstance(out, list | tuple) or len(out) != len(sentences):
        raise fail(
            f"tag returned a {describe(out)}, expected a list of {len(sentences)} tag lists "
            "(one per sentence).",
            "Did it forget to `return`?" if out is None else None,
        )
    for i, (s, t) in enumerate(zip(sentences, out)):
        if not isinstance(t, list | tuple) or len(t) != len(s):
            raise fail(
                f"tag returned {t!r} for sentence {i} of {len(s)} tokens {s[:8]}, "
                f"expected {len(s)} tags.",
                "One tag per token, as strings.",
            )
        bad = [x for x in t if not (isinstance(x, str) and x in TAGS)]
        if bad:
            raise fail(
                f"tag returned {bad[0]!r} in sentence {i}, expected one of {TAGS}.",
                "Map the predicted ids back to tag names (TAGS[k]).",
            )
    gold = [[TAGS[k] for k in s] for s in rows["ner_tags"]]
    pred = [list(t) for t in out[: len(gold)]]
    p, r, f = _seqeval(gold, pred)
    if f < threshold:
        raise fail(f"tag: span F1 {f:.3f} (precision {p:.3f}, recall {r:.3f}) on {len(gold)} "
                   f"held-out test sentences, below {threshold:.2f}.",
                   "Is the model trained and in eval mode (no dropout), and are unknown words "
                   "mapped as in training (lower-cased, <unk>)?")  # fmt: skip
    passed(f"tag: span F1 {f:.3f} (precision {p:.3f}, recall {r:.3f}) on {len(gold)} held-out "
           f"test sentences, threshold {threshold:.2f}; one valid tag per token.")  # fmt: skip
