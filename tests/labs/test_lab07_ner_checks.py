"""The checks of Lab 7, Part 1 (NER) accept the solution and reject broken code with the right hint.

The correct functions come from the solution notebook's exercise cells; each broken variant
is a small text mutation of that code, or a wrapper that breaks what a function returns
(tests/labs/harness.py runs them all). The trained tagger ``tag`` needs the notebook's
model: here an oracle that reads the test labels stands for it, and the mutations break
the oracle (all O, a tag missing, ids instead of names, ...).
"""

from __future__ import annotations

import importlib
import inspect

import nbformat
import pytest
import torch

from tests.factories import ROOT
from tests.labs.harness import (
    GARBAGE,
    Mutation,
    assert_accepts,
    load_solution,
    parametrize,
    run_mutation,
    text,
    wrap,
)
from utils.checks import CheckError
from utils.checks.lab07 import crf as lcrf
from utils.checks.lab07 import ner as lc
from utils.instructor.notebook import grade_id, is_exercise, is_test

SOLUTION_PATH = ROOT / "solutions" / "lab07_ner_and_forecasting.ipynb"
PREAMBLE = "import numpy as np\nimport torch\n"
SOL = load_solution(SOLUTION_PATH, preamble=PREAMBLE)

CHECKS = {
    "bio_to_spans": lc.check_bio_to_spans,
    "repair_bio": lc.check_repair_bio,
    "span_f1": lc.check_span_f1,
    "masked_token_loss": lc.check_masked_token_loss,
    "crf_path_score": lcrf.check_crf_path_score,
    "crf_log_partition": lcrf.check_crf_log_partition,
    "viterbi_decode": lcrf.check_viterbi_decode,
    "tag": lc.check_tagger,
}
PURE = [name for name in CHECKS if name != "tag"]


def _oracle():
    """The test labels, looked up by sentence: a perfect 'trained tagger' for the tests
    (the test split is read on the first call)."""
    gold = {}

    def tag(sentences):
        if not gold:
            test = lc._test_split()
            for s, y in zip(test["tokens"], test["ner_tags"]):
                gold[tuple(s)] = [lc.TAGS[k] for k in y]
        return [list(gold.get(tuple(s), ["O"] * len(s))) for s in sentences]

    return tag


pytestmark = pytest.mark.data  # check_tagger reads the WikiANN test split (from the cache)
SOL.extras["tag"] = _oracle()


def test_solution_defines_every_exercise():
    assert set(CHECKS) <= set(SOL)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution(name):
    assert_accepts(CHECKS[name], SOL[name], name)


@pytest.mark.parametrize("name", PURE)
def test_check_accepts_the_solution_on_other_seeds(name):
    for seed in (11, 12, 13):
        assert_accepts(CHECKS[name], SOL[name], name, seed=seed)


@pytest.mark.parametrize("module", [lc, lcrf], ids=["ner", "crf"])
def test_the_check_modules_hold_no_exercise(module):
    for name, value in vars(module).items():
        if callable(value) and getattr(value, "__module__", None) == module.__name__:
            assert name not in CHECKS, name
    assert len(inspect.getsource(module).splitlines()) < 400


def test_grade_cells_and_rules():
    sol = nbformat.read(SOLUTION_PATH, as_version=4)
    exercises = [grade_id(c) for c in sol.cells if is_exercise(c) and c.cell_type == "code"]
    tests = {grade_id(c): c.source for c in sol.cells if is_test(c)}
    assert set(CHECKS) <= set(exercises)
    for name in CHECKS:
        assert name in tests[f"test_{name}"] and "# BEGIN HIDDEN TESTS" in tests[f"test_{name}"]
    rules = sol.metadata["workbook"]
    assert "tag" in rules["kernel_functions"] and "seqeval" in rules["forbid"]
    for cell in sol.cells:
        if is_exercise(cell) and cell.cell_type == "code":
            assert "seqeval" not in cell.source and "cross_entropy" not in cell.source


def changes_list_input(fn):
    def wrapper(*args):
        out = fn(*args)
        if isinstance(args[0], list) and args[0]:
            args[0][0] = "O" if args[0][0] != "O" else "B-PER"
        return out

    return wrapper


def changes_tensor_input(fn):
    def wrapper(*args):
        out = fn(*args)
        args[0].data.mul_(0.5)
        return out

    return wrapper


def returns_nan(fn):
    return lambda *args: fn(*args) * float("nan")


def tagger(transform):
    return lambda fn: lambda sentences: transform(fn(sentences))


def _standard(names) -> list[Mutation]:
    picked = ("returns None", "raises ValueError", "returns a str", "is still a stub")
    return [
        Mutation(f"{name}: {gid}", name, wrap(name, wrapper),
                 tuple(w.replace("{name}", name) for w in words), raises)
        for name in names
        for gid, wrapper, words, raises in GARBAGE
        if gid in picked
    ]  # fmt: skip


SPAN_CLOSE = 'if start is not None and not (tag.startswith("I-") and tag[2:] == kind):'
SPAN_OPEN = 'if tag.startswith("B-") or (tag.startswith("I-") and start is None):'
REPAIR = 'if tag.startswith("I-") and (t == 0 or tags[t - 1][2:] != tag[2:]):'
ALPHA = "new = torch.logsumexp(alpha.unsqueeze(2) + trans + E[:, t].unsqueeze(1), dim=1)"
DELTA = "best, arg = (delta.unsqueeze(2) + trans).max(dim=1)"
F1 = "f1 = 2 * precision * recall / (precision + recall) if correct else 0.0"
LOSS = "loss = (nll * mask).sum() / mask.sum()"

MUTATIONS = [
    # -- bio_to_spans
    text("spans: end exclusive", "spans.append((kind, start, t - 1))",
         "spans.append((kind, start, t))", "bio_to_spans", "inclusive"),
    text("spans: type change ignored", SPAN_CLOSE,
         'if start is not None and not tag.startswith("I-"):', "bio_to_spans", "change of type"),
    text("spans: only B- starts a span", SPAN_OPEN, 'if tag.startswith("B-"):', "bio_to_spans",
         ("only B-X", "A span starts")),
    text("spans: last span not closed", 'enumerate(list(tags) + ["O"])', "enumerate(tags)",
         "bio_to_spans", "reaches the last token"),
    text("spans: first token skipped", 'enumerate(list(tags) + ["O"])',
         'enumerate(list(tags)[1:] + ["O"], start=1)', "bio_to_spans",
         ("starts at token 0", "reaches the last token", "A span starts")),
    Mutation("spans: out of order", "bio_to_spans",
             wrap("bio_to_spans", lambda fn: lambda tags: fn(tags)[::-1]), "not in order"),
    Mutation("spans: changes its input", "bio_to_spans", wrap("bio_to_spans", changes_list_input),
             "in place"),
    # -- repair_bio
    text("repair: to O", 'repaired[t] = "B-" + tag[2:]', 'repaired[t] = "O"', "repair_bio",
         "not O"),
    text("repair: only after O", REPAIR,
         'if tag.startswith("I-") and (t == 0 or tags[t - 1] == "O"):', "repair_bio",
         "another type is invalid too"),
    text("repair: not at the first token", REPAIR,
         'if tag.startswith("I-") and t > 0 and tags[t - 1][2:] != tag[2:]:', "repair_bio",
         "first token"),
    text("repair: nothing", 'repaired[t] = "B-" + tag[2:]', "pass", "repair_bio",
         "Nothing was repaired"),
    text("repair: in place", "repaired = list(tags)", "repaired = tags", "repair_bio", "in place"),
    text("repair: all I- become B-", REPAIR, 'if tag.startswith("I-"):', "repair_bio",
         "Change only"),
    # -- span_f1
    text("f1: over tokens", "true = {(i, *span) for i, tags in enumerate(y_true) for span in bio_to_spans(tags)}\n    pred = {(i, *span) for i, tags in enumerate(y_pred) for span in bio_to_spans(tags)}",
         "true = {(i, t, tag) for i, tags in enumerate(y_true) for t, tag in enumerate(tags) if tag != 'O'}\n    pred = {(i, t, tag) for i, tags in enumerate(y_pred) for t, tag in enumerate(tags) if tag != 'O'}",
         "span_f1", "counts tokens"),
    text("f1: type ignored", "true = {(i, *span)", "true = {(i, 'X', *span[1:])", "span_f1",
         ("type is ignored", "differs")),
    text("f1: precision and recall swapped", "return precision, recall, f1",
         "return recall, precision, f1", "span_f1", "swapped"),
    text("f1: sentences pooled without their index", "true = {(i, *span)", "true = {(0, *span)",
         "span_f1", "differs"),
    Mutation("f1: token accuracy", "span_f1", wrap("span_f1", lambda fn: lambda yt, yp: (lambda a: (a, a, a))(
        sum(x == y for s, p in zip(yt, yp) for x, y in zip(s, p)) / sum(map(len, yt)))),
        "token accuracy"),  # fmt: skip
    # -- masked_token_loss
    text("loss: padding counted", "loss = (nll * mask).sum() / mask.sum()", "loss = nll.mean()",
         "masked_token_loss", "padding is counted"),
    text("loss: sum", "loss = (nll * mask).sum() / mask.sum()", "loss = (nll * mask).sum()",
         "masked_token_loss", "sum over the tokens"),
    text("loss: mean per sentence", "loss = (nll * mask).sum() / mask.sum()",
         "loss = ((nll * mask).sum(1) / mask.sum(1)).mean()", "masked_token_loss",
         "mean per sentence"),
    text("loss: divided by N", "loss = (nll * mask).sum() / mask.sum()",
         "loss = (nll * mask).sum() / mask.shape[0]", "masked_token_loss", "number of sentences"),
    text("loss: no log-softmax", "log_probs = scores.log_softmax(dim=-1)", "log_probs = scores",
         "masked_token_loss", "log-softmax is missing"),
    text("loss: .item()", "return loss", "return loss.item()", "masked_token_loss",
         "Return the tensor itself"),
    text("loss: detached", "return loss", "return loss.detach()", "masked_token_loss",
         "no gradient"),
    Mutation("loss: NaN", "masked_token_loss", wrap("masked_token_loss", returns_nan),
             "non-finite"),
    Mutation("loss: changes its input", "masked_token_loss",
             wrap("masked_token_loss", changes_tensor_input), "in place"),
    # -- crf_path_score
    text("score: padding scored", "score = start[Y[:, 0]] + (emissions * m).sum(1)",
         "score = start[Y[:, 0]] + emissions.sum(1)", "crf_path_score", "differs"),
    text("score: no transitions", "score = score + (trans[Y[:, :-1], Y[:, 1:]] * m[:, 1:]).sum(1)",
         "score = score", "crf_path_score", "transition scores"),
    text("score: end at the padded end", "score = score + end[last]", "score = score + end[Y[:, -1]]",
         "crf_path_score", "end[] is taken at position T"),
    text("score: no start", "score = start[Y[:, 0]] + (emissions * m).sum(1)",
         "score = (emissions * m).sum(1)", "crf_path_score", "start[y_1] is missing"),
    text("score: no end", "score = score + end[last]", "score = score + 0 * end[last]",
         "crf_path_score", "end[y_n] is missing"),
    text("score: all padded", "m = mask.to(E.dtype)", "m = torch.ones_like(E[..., 0])",
         "crf_path_score", ("padding is scored", "differs")),
    Mutation("score: NaN", "crf_path_score", wrap("crf_path_score", returns_nan), "non-finite"),
    # -- crf_log_partition
    text("log Z: no transitions", ALPHA,
         "new = torch.logsumexp(alpha.unsqueeze(2) + 0 * trans + E[:, t].unsqueeze(1), dim=1)",
         "crf_log_partition", "transition scores are missing"),
    text("log Z: mask ignored", "alpha = torch.where(mask[:, t].unsqueeze(1), new, alpha)",
         "alpha = new", "crf_log_partition", "mask is ignored"),
    text("log Z: trans transposed", ALPHA,
         "new = torch.logsumexp(alpha.unsqueeze(2) + trans.T + E[:, t].unsqueeze(1), dim=1)",
         "crf_log_partition", "transposed"),
    text("log Z: no end", "log_Z = torch.logsumexp(alpha + end, dim=1)",
         "log_Z = torch.logsumexp(alpha, dim=1)", "crf_log_partition", "end[] is not added"),
    text("log Z: no start", "alpha = start + E[:, 0]  # (N, C)", "alpha = E[:, 0]  # (N, C)",
         "crf_log_partition", "start[] is not added"),
    text("log Z: max instead of logsumexp", ALPHA,
         "new = (alpha.unsqueeze(2) + trans + E[:, t].unsqueeze(1)).amax(dim=1)",
         "crf_log_partition", ("best path", "differs")),
    text("log Z: detached", "return log_Z", "return log_Z.detach()", "crf_log_partition",
         "no gradient"),
    text("log Z: NumPy", "return log_Z", "return log_Z.detach().numpy()", "crf_log_partition",
         "expected a tensor"),
    Mutation("log Z: changes its input", "crf_log_partition",
             wrap("crf_log_partition", changes_tensor_input), "in place"),
    # -- viterbi_decode
    Mutation("viterbi: argmax per token", "viterbi_decode", wrap("viterbi_decode", lambda fn: (
        lambda E, mask, *rest: [E[i, :n].argmax(-1).tolist() for i, n in enumerate(mask.sum(1).tolist())])),
        "argmax per token"),  # fmt: skip
    Mutation("viterbi: reversed", "viterbi_decode",
             wrap("viterbi_decode", lambda fn: lambda *a: [p[::-1] for p in fn(*a)]), "reversed"),
    text("viterbi: backtrace not reversed", "path = torch.stack(path[::-1], dim=1)",
         "path = torch.stack(path, dim=1)", "viterbi_decode", ("reversed", "delta_t(j)")),
    text("viterbi: mask ignored", "delta = torch.where(real, best + E[:, t], delta)",
         "delta = best + E[:, t]", "viterbi_decode",
         ("mask is ignored", "padded steps change", "differs")),
    text("viterbi: no transitions", DELTA, "best, arg = (delta.unsqueeze(2) + 0 * trans).max(dim=1)",
         "viterbi_decode", "transitions are missing"),
    text("viterbi: no end", "tag = (delta + end).argmax(dim=1)", "tag = delta.argmax(dim=1)",
         "viterbi_decode", "end[] is not added"),
    text("viterbi: trans transposed", DELTA, "best, arg = (delta.unsqueeze(2) + trans.T).max(dim=1)",
         "viterbi_decode", "transposed"),
    text("viterbi: padded paths", "paths = [row[:n].tolist() for row, n in zip(path, mask.sum(1).tolist())]",
         "paths = [row.tolist() for row in path]", "viterbi_decode", "real tokens only"),
    # -- found by a second review: accepted or misdiagnosed by the earlier checks
    text("f1: recall 0 / 0 with no true span", "recall = correct / len(true) if true else 0.0",
         "recall = correct / len(true)", "span_f1", "no true span"),
    text("f1: recall 1 with no true span", "recall = correct / len(true) if true else 0.0",
         "recall = correct / len(true) if true else 1.0", "span_f1", "take each as 0"),
    text("f1: precision 0 / 0 with no span predicted", "precision = correct / len(pred) if pred else 0.0",
         "precision = correct / len(pred)", "span_f1", "precision is 0 / 0"),
    text("f1: F1 0 / 0", F1, "f1 = 2 * precision * recall / (precision + recall)", "span_f1",
         "F1 as 0 when precision + recall is 0"),
    text("f1: arithmetic mean", F1, "f1 = (precision + recall) / 2", "span_f1", "harmonic mean"),
    Mutation("f1: mean over sentences", "span_f1", wrap("span_f1", lambda fn: lambda yt, yp: tuple(
        sum(v) / len(yt) for v in zip(*[fn([a], [b]) for a, b in zip(yt, yp)]))),
        "mean of per-sentence scores"),
    Mutation("f1: macro over types", "span_f1", wrap("span_f1", lambda fn: lambda yt, yp: tuple(
        sum(v) / 3 for v in zip(*[fn(*[[[x if x.endswith(k) else "O" for x in s] for s in y]
                                       for y in (yt, yp)]) for k in ("PER", "ORG", "LOC")]))),
        "macro average"),
    text("loss: log-softmax over time", "log_probs = scores.log_softmax(dim=-1)",
         "log_probs = scores.log_softmax(dim=1)", "masked_token_loss", "wrong axis"),
    text("loss: tag 0 taken for padding", LOSS,
         "keep = mask & (Y != 0)\n    loss = (nll * keep).sum() / keep.sum()", "masked_token_loss",
         "Tag 0 (O) is left out"),
    text("loss: mean over N * T", LOSS, "loss = (nll * mask).mean()", "masked_token_loss",
         "count in the denominator"),
    text("loss: padding in the sum", LOSS, "loss = nll.sum() / mask.sum()", "masked_token_loss",
         "added to the sum"),
    text("score: trans transposed", "(trans[Y[:, :-1], Y[:, 1:]] * m[:, 1:])",
         "(trans[Y[:, 1:], Y[:, :-1]] * m[:, 1:])", "crf_path_score", "used transposed"),
    text("score: transitions into the padding", "(trans[Y[:, :-1], Y[:, 1:]] * m[:, 1:])",
         "trans[Y[:, :-1], Y[:, 1:]]", "crf_path_score", "Each row alone"),
    text("score: transition mask off by one", "(trans[Y[:, :-1], Y[:, 1:]] * m[:, 1:])",
         "(trans[Y[:, :-1], Y[:, 1:]] * m[:, :-1])", "crf_path_score", "Each row alone"),
    text("log Z: mask of the step before", "alpha = torch.where(mask[:, t].unsqueeze(1), new, alpha)",
         "alpha = torch.where(mask[:, t - 1].unsqueeze(1), new, alpha)", "crf_log_partition",
         "Each row alone"),
    text("log Z: logsumexp over the next tag", ALPHA,
         "new = torch.logsumexp(alpha.unsqueeze(2) + trans + E[:, t].unsqueeze(1), dim=2)",
         "crf_log_partition", "wrong axis"),
    text("log Z: log(sum(exp)) overflows", ALPHA,
         "new = torch.log(torch.exp(alpha.unsqueeze(2) + trans + E[:, t].unsqueeze(1)).sum(dim=1))",
         "crf_log_partition", "overflows"),
    text("viterbi: padded backpointers followed", "backpointers.append(torch.where(real, arg, stay))",
         "backpointers.append(arg)", "viterbi_decode", "Each row alone"),
    text("viterbi: mask of the step before", "real = mask[:, t].unsqueeze(1)",
         "real = mask[:, t - 1].unsqueeze(1)", "viterbi_decode", "Each row alone"),
    # -- the trained tagger
    Mutation("tag: all O", "tag", wrap("tag", tagger(lambda out: [["O"] * len(t) for t in out])),
             "below 0.70"),
    Mutation("tag: a tag missing", "tag", wrap("tag", tagger(lambda out: [t[:-1] for t in out])),
             "expected"),
    Mutation("tag: ids instead of names", "tag",
             wrap("tag", tagger(lambda out: [[lc.TAGS.index(x) for x in t] for t in out])),
             "expected one of"),
    Mutation("tag: unknown label", "tag",
             wrap("tag", tagger(lambda out: [["B-MISC" if x == "B-PER" else x for x in t] for t in out])),
             "expected one of"),  # fmt: skip
    Mutation("tag: a sentence missing", "tag", wrap("tag", tagger(lambda out: out[:-1])),
             "expected a list"),
    Mutation("tag: shifted by one token", "tag",
             wrap("tag", tagger(lambda out: [["O", *t[:-1]] for t in out])), "below 0.70"),
    Mutation("tag: changes its input", "tag", wrap("tag", changes_list_input), "in place"),
    *_standard(CHECKS),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning")
@parametrize(MUTATIONS)
def test_check_rejects_the_mutation_with_its_hint(mutation):
    run_mutation(mutation, CHECKS, SOL)


def test_every_check_has_at_least_6_mutations():
    counts = {name: sum(m.check == name for m in MUTATIONS) for name in CHECKS}
    assert all(n >= 6 for n in counts.values()), counts


def test_checks_raise_check_error_not_other_exceptions():
    """A tagger that returns tensors per sentence is refused with a message, not a crash."""
    with pytest.raises(CheckError):
        lc.check_tagger(lambda s: [torch.zeros(len(x)) for x in s])
    assert importlib.import_module("utils.checks.lab07").check_tagger is lc.check_tagger
