"""The checks of Lab 3 accept the solution and reject broken code with the right hint.

The correct functions come from the solution notebook's exercise cells (run after the
lab's given code: the imports, ``tokens_of``, ``logits_of``); each broken variant is a
small text mutation of that code, or a wrapper that breaks what a function returns
(tests/labs/harness.py runs them all). ``predict_positive`` reads the model the notebook
trained, so here the solution's own function runs on a stand-in model that needs no
training (tests/labs/lab03_stand_in.py: word scores counted on 3,000 training reviews,
with dropout, so that a prediction with dropout left on shows).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re

import nbformat
import pytest
import torch

from tests.factories import ROOT
from tests.labs.harness import (
    Mutation,
    assert_accepts,
    check_calls,
    edit,
    edits,
    load_solution,
    notebook_test_cells,
    parametrize,
    returns,
    run_mutation,
    run_test_cell,
    standard,
    text,
    wrap,
)
from utils.checks import lab03 as lc
from utils.instructor.notebook import is_exercise, nbgrader_meta

SOLUTION_PATH = ROOT / "solutions" / "lab03_imdb_sentiment.ipynb"
NB = nbformat.read(SOLUTION_PATH, as_version=4)


def _given(start: str) -> str:
    """The given code cell of the notebook that starts with ``start``, from ``start`` on."""
    source = next(c.source for c in NB.cells if c.cell_type == "code" and start in c.source)
    return source[source.index(start) :]


STAND_IN = """
models, best = {"stand-in": word_scores(tokens_of)}, "stand-in"
vocab = models[best].vocab
"""
PREAMBLE = (
    "import random\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
    "from torch import nn\nfrom tests.labs.lab03_stand_in import word_scores\n"
    "from utils.data import BucketBatchSampler, Vocab, load_dataset, pad_collate, tokenize_words\n"
    "MAX_TOKENS = 400\n\n"
    + _given("def cut(words)").split("\n\norder =")[0]
    + "\n\n"
    + _given("def logits_of").split("\n\ndef accuracy")[0]
    + "\n\n"
    + STAND_IN
)
SOL = load_solution(SOLUTION_PATH, preamble=PREAMBLE)
STAND_IN_ACCURACY = 0.7  # the stand-in's bar (it reaches about 0.8)

pytestmark = pytest.mark.data  # the trained check reads IMDB (from the cache)

CHECKS = {
    "reverse_padded": lc.check_reverse_padded,
    "bi_lstm_from": lc.check_bi_lstm,
    "attention_pool": lc.check_attention_pool,
    "predict_positive": functools.partial(lc.check_predict_positive, n=300),
    "predict_positive with a bar": functools.partial(
        lc.check_predict_positive, n=300, min_accuracy=STAND_IN_ACCURACY
    ),
    "attention_lift": lc.check_attention_lift,
}
SOL.aliases["predict_positive with a bar"] = "predict_positive"
EXERCISES = [
    "reverse_padded",
    "bi_lstm_from",
    "attention_pool",
    "predict_positive",
    "attention_lift",
]
MODULES = [
    importlib.import_module(f"{lc.__name__}.{m.name}") for m in pkgutil.iter_modules(lc.__path__)
]


# ------------------------------------------------------------------ the solution passes


def test_solution_defines_every_exercise():
    assert set(EXERCISES) <= set(SOL)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution(name):
    assert_accepts(CHECKS[name], SOL[name])


@pytest.mark.parametrize("name", [n for n in CHECKS if not n.startswith("predict")])
def test_check_accepts_the_solution_on_other_seeds(name):
    for seed in (11, 12, 13):
        assert_accepts(CHECKS[name], SOL[name], seed=seed)


def test_the_check_modules_hold_no_exercise():
    """No function of the check package has an exercise's name; modules stay short."""
    for module in MODULES:
        for name, value in vars(module).items():
            if callable(value) and getattr(value, "__module__", None) == module.__name__:
                assert name not in set(EXERCISES) | {
                    "SentimentRNN",
                    "logits_of",
                    "mean_pool",
                    "bi_lstm",
                }, name
        assert len(inspect.getsource(module).splitlines()) < 250, module.__name__


def test_the_stand_in_is_a_fair_model():
    """The stand-in reads sentiment (so the bar means something) and its dropout matters."""
    texts, labels = lc.imdb_test()
    p = SOL["predict_positive"](list(texts[:400])).numpy()
    assert 0.72 < float(((p > 0.5) == labels[:400]).mean()) < 0.95
    model = SOL["models"]["stand-in"]
    batch = SOL["pad_collate"]([SOL["vocab"].encode(SOL["tokens_of"](texts[0]))])
    model.train()
    assert not torch.equal(model(batch["X"], batch["lengths"], batch["mask"])[0],
                           model(batch["X"], batch["lengths"], batch["mask"])[0])  # fmt: skip


# ------------------------------------------------------------------ broken code is rejected

IDX = "idx = torch.where(t < L, L - 1 - t, t)"
GATHER = "return x.gather(1, idx)"
BWD = "out_b, _ = bwd(reverse_padded(x, lengths))"
UNREV = "out_b = reverse_padded(out_b, lengths)"
CAT = "outputs = torch.cat([out_f, out_b], dim=-1) * mask"
LAST = "last = torch.cat([out_f[rows, lengths - 1], out_b[:, 0]], dim=-1)"
REAL = "real = (X != 0).sum(dim=1)  # (N,)"
MASS = "mass = (weights * hit).sum(dim=1).mean()"
SHARE = "share = (hit.sum(dim=1) / real).mean()"
RET = "return mass.item(), share.item(), (mass / share).item()"
SOFT = 'weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)'
POOL = "pooled = (weights.unsqueeze(-1) * outputs).sum(dim=1)"
PRED = "return torch.sigmoid(logits_of(models[best], seqs))"
DIRECT = ("batch = pad_collate(seqs)\n    models[best].{mode}()\n    "
          "logits = models[best](batch['X'], batch['lengths'], {mask})[0].detach()\n    "
          "return torch.sigmoid(logits)")  # fmt: skip


def barred(name: str, old: str, new: str, words) -> Mutation:
    """A text mutation of predict_positive, run by the check with the stand-in's bar."""
    return Mutation(name, "predict_positive with a bar", edit("predict_positive", old, new), words)


def _sorted_by_length(fn):
    """Probabilities returned in the order of the reviews' lengths, not of the list."""

    def predict_positive(texts):
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        return fn([texts[i] for i in order])

    return predict_positive


def _lookup(fn):
    """A 'classifier' that finds the review in the test split and returns its label."""
    texts, labels = lc.imdb_test()
    where = {t: float(y) for t, y in zip(texts, labels)}
    return lambda texts: torch.tensor([where.get(t, 0.5) for t in texts])


MUTATIONS = [
    # -- reverse_padded
    text("reverse: the whole row flipped", GATHER, "return x.flip(1)", "reverse_padded", "flipped"),
    text("reverse: nothing reversed", GATHER, "return x.clone()", "reverse_padded", "Nothing was reversed"),
    text("reverse: one position off", IDX, "idx = torch.where(t < L, (L - t) % L, t)", "reverse_padded",
         "one position off"),
    text("reverse: past the end", IDX, "idx = torch.where(t < L, L - t, t)", "reverse_padded",
         ("raised RuntimeError", "differs")),
    text("reverse: reversed over T", IDX, "idx = torch.where(t < L, T - 1 - t, t)", "reverse_padded",
         "differs from the reference"),
    text("reverse: padding zeroed", GATHER, "return x.gather(1, idx) * (t < L).view(*idx.shape[:2], *([1] * (x.dim() - 2)))",
         "reverse_padded", "padding positions were changed"),
    text("reverse: padding from position 0", IDX, "idx = torch.where(t < L, L - 1 - t, 0 * t)", "reverse_padded",
         "differs from the reference"),
    text("reverse: floats for ids", GATHER, "return x.gather(1, idx).double()", "reverse_padded", "dtype"),
    text("reverse: detached", GATHER, "return x.detach().gather(1, idx)", "reverse_padded", "not connected to x"),
    text("reverse: through NumPy", GATHER, "return torch.from_numpy(np.take_along_axis(x.detach().numpy(), idx.numpy(), 1))",
         "reverse_padded", "not connected to x"),
    # -- bi_lstm
    Mutation("bi_lstm: the whole row flipped", "bi_lstm_from",
             edits("bi_lstm_from", (BWD, "out_b, _ = bwd(x.flip(1))"), (UNREV, "out_b = out_b.flip(1)")), "flipped whole"),
    Mutation("bi_lstm: backward LSTM reads forward", "bi_lstm_from",
             edits("bi_lstm_from", (BWD, "out_b, _ = bwd(x)"), (UNREV, "out_b = out_b")), "read the review forward"),
    text("bi_lstm: outputs not reversed back", UNREV, "out_b = out_b", "bi_lstm_from", "still in reversed order"),
    text("bi_lstm: padding not zeroed", CAT, "outputs = torch.cat([out_f, out_b], dim=-1)", "bi_lstm_from", "must be 0"),
    text("bi_lstm: forward state at T - 1", LAST, LAST.replace("out_f[rows, lengths - 1]", "out_f[:, -1]"),
         "bi_lstm_from", "last position T - 1"),
    text("bi_lstm: forward state from the masked outputs", LAST,
         LAST.replace("out_f[rows, lengths - 1]", "outputs[:, -1, : out_f.shape[-1]]"), "bi_lstm_from", "padding (zeros)"),
    text("bi_lstm: backward state at the last token", LAST, LAST.replace("out_b[:, 0]", "out_b[rows, lengths - 1]"),
         "bi_lstm_from", "ends its pass at token 0"),
    text("bi_lstm: directions swapped", CAT, "outputs = torch.cat([out_b, out_f], dim=-1) * mask", "bi_lstm_from",
         "differs from the reference"),
    text("bi_lstm: detached", "return outputs, last", "return outputs.detach(), last.detach()", "bi_lstm_from",
         "no gradient"),
    Mutation("bi_lstm: backward state from h_n", "bi_lstm_from",
             edits("bi_lstm_from", (BWD, "out_b, (h_b, _) = bwd(reverse_padded(x, lengths))"),
                   (LAST, LAST.replace("out_b[:, 0]", "h_b[0]"))), "differs from the reference"),
    text("bi_lstm: only the forward half", "return outputs, last", "return outputs[..., : out_f.shape[-1]], last",
         "bi_lstm_from", "has shape"),
    text("bi_lstm: mask keeps position lengths[b]", "[None, :] < lengths.to(x.device)[:, None]).unsqueeze(-1)",
         "[None, :] <= lengths.to(x.device)[:, None]).unsqueeze(-1)", "bi_lstm_from", "strictly less"),
    text("bi_lstm: last with the directions swapped", LAST, "last = torch.cat([out_b[:, 0], out_f[rows, lengths - 1]], dim=-1)",
         "bi_lstm_from", "directions are swapped in last"),
    Mutation("bi_lstm: the two LSTMs swapped", "bi_lstm_from",
             edits("bi_lstm_from", ("out_f, _ = fwd(x)", "out_f, _ = bwd(x)"),
                   (BWD, "out_b, _ = fwd(reverse_padded(x, lengths))")), "two LSTMs are swapped"),
    Mutation("bi_lstm: padding zeroed, then the whole row flipped", "bi_lstm_from",
             edits("bi_lstm_from", (BWD, "out_b, _ = bwd((x * (torch.arange(T)[None, :, None] < lengths[:, None, None])).flip(1))"),
                   (UNREV, "out_b = out_b.flip(1)")), "zeroing the padding does not help"),
    # -- attention_pool
    text("attention: no mask", SOFT, "weights = torch.softmax(scores, dim=1)", "attention_pool", "took weight"),
    text("attention: padding scores 0", SOFT, SOFT.replace('float("-inf")', "0.0"), "attention_pool", "set to 0"),
    text("attention: masked after the softmax", SOFT, "weights = torch.softmax(scores, dim=1) * mask",
         "attention_pool", "after the softmax"),
    text("attention: softmax over the batch", SOFT, SOFT.replace("dim=1", "dim=0"), "attention_pool", "over the batch"),
    text("attention: exp by hand", SOFT,
         'weights = torch.exp(scores.masked_fill(~mask, float("-inf")))\n    weights = weights / weights.sum(1, keepdim=True)',
         "attention_pool", "overflows"),
    text("attention: mean of the weighted outputs", POOL, POOL.replace(".sum(dim=1)", ".mean(dim=1)"),
         "attention_pool", "mean of the weighted"),
    text("attention: weights detached", POOL, POOL.replace("weights.unsqueeze", "weights.detach().unsqueeze"),
         "attention_pool", "gradient"),
    text("attention: outputs and weights swapped", "return pooled, weights", "return weights, pooled",
         "attention_pool", "has shape"),
    text("attention: hard attention", POOL, "pooled = outputs[torch.arange(len(outputs)), weights.argmax(1)]",
         "attention_pool", "differs from the reference"),
    text("attention: mask inverted", SOFT, SOFT.replace("~mask", "mask"), "attention_pool", "the mask is inverted"),
    text("attention: log_softmax", SOFT, SOFT.replace("torch.softmax", "torch.log_softmax"), "attention_pool",
         "log-probabilities"),
    text("attention: scores over sqrt(D)", SOFT, SOFT.replace('float("-inf"))', 'float("-inf")) / outputs.shape[-1] ** 0.5'),
         "attention_pool", "sqrt(D)"),
    text("attention: divided by the lengths", POOL, POOL + " / mask.sum(1, keepdim=True)", "attention_pool",
         "as in mean pooling"),
    # -- predict_positive (the solution's function on the stand-in)
    text("predict: logits", PRED, "return logits_of(models[best], seqs)", "predict_positive", "[0, 1]"),
    text("predict: (N, 1)", PRED, PRED + "[:, None]", "predict_positive", "has shape"),
    text("predict: labels, not probabilities", PRED, "return (" + PRED[7:] + " > 0.5).float()", "predict_positive",
         "labels, not probabilities"),
    text("predict: softmax over the reviews", PRED, "return torch.softmax(logits_of(models[best], seqs), dim=-1)",
         "predict_positive", "softmax over the reviews"),
    text("predict: sigmoid twice", PRED, "return torch.sigmoid(" + PRED[7:] + ")", "predict_positive",
         "sigmoid of a probability"),
    barred("predict: labels the wrong way round", PRED, "return 1 - " + PRED[7:], "below chance"),
    text("predict: dropout left on", PRED, DIRECT.format(mode="train", mask="batch['mask']"), "predict_positive",
         "eval mode"),
    text("predict: padding read as words", PRED, DIRECT.format(mode="eval", mask="torch.ones_like(batch['mask'])"),
         "predict_positive", "other reviews of the call"),
    Mutation("predict: sorted by length, not put back", "predict_positive", wrap("predict_positive", _sorted_by_length),
             "other reviews of the call"),
    barred("predict: a constant", PRED, "return torch.full((len(texts),), 0.9)", "below"),
    Mutation("predict: looks the review up in the data", "predict_positive with a bar", wrap("predict_positive", _lookup),
             "below"),
    Mutation("predict: NaN", "predict_positive", wrap("predict_positive", returns(lambda p: p * float("nan"))),
             "non-finite"),
    barred("predict: no truncation, no tokenizer", "seqs = [vocab.encode(tokens_of(t)) for t in texts]",
           "seqs = [vocab.encode(t.split()[:3]) for t in texts]", "below"),
    # -- attention_lift
    text("lift: padding counted in the share", REAL, "real = torch.full((len(X),), X.shape[1])",
         "attention_lift", "padding positions"),
    text("lift: share over the batch's tokens", SHARE, "share = hit.sum() / real.sum()", "attention_lift",
         "all the tokens of the batch"),
    text("lift: mean of the reviews' ratios", RET,
         "return mass.item(), share.item(), ((weights * hit).sum(1) / (hit.sum(1) / real)).nan_to_num().mean().item()",
         "attention_lift", "ratio of the two means"),
    text("lift: upside down", RET, "return mass.item(), share.item(), (share / mass).item()", "attention_lift",
         "share / mass"),
    text("lift: mass summed over the reviews", MASS, "mass = (weights * hit).sum()", "attention_lift", "differs"),
    text("lift: all the weight", MASS, "mass = weights.sum(dim=1).mean()", "attention_lift", "differs"),
    text("lift: padding ids chosen", "hit = torch.isin(X, chosen) & (X != 0)", "hit = torch.isin(X, torch.cat([chosen, torch.zeros(1, dtype=torch.long)]))",
         "attention_lift", ("differs", "padding")),
    *standard([n for n in CHECKS if n != "predict_positive with a bar"]),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning")
@parametrize(MUTATIONS)
def test_check_rejects_the_mutation_with_its_hint(mutation):
    run_mutation(mutation, CHECKS, SOL)


def test_every_check_has_at_least_6_mutations():
    counts = {n: sum(m.check.split(" ")[0] == n for m in MUTATIONS) for n in CHECKS if " " not in n}
    assert all(n >= 6 for n in counts.values()), counts


# ------------------------------------------------------------------ the notebook


CELLS = notebook_test_cells(NB)


def test_the_notebook_test_cells_call_existing_checks():
    """Every check_* call of the test cells names a function of utils.checks.lab03 and
    passes arguments its signature accepts; every exercise has a test with hidden tests."""
    assert {f"test_{name}" for name in EXERCISES} == set(CELLS)
    assert check_calls(CELLS, lc) >= 14
    assert "min_accuracy=pick(" in CELLS["test_predict_positive"]


@pytest.mark.parametrize("gid", [f"test_{n}" for n in EXERCISES if n != "predict_positive"])
def test_the_solution_passes_the_notebook_test_cells(gid):
    """The test cells as the grader runs them, hidden tests included."""
    out = run_test_cell(CELLS[gid], SOL, lc, gid)
    assert out and all(line.startswith("[PASS]") for line in out), out


def test_grade_cells_rules_and_the_written_answer():
    rules = NB.metadata["workbook"]
    assert rules["forbid"] == ["utils.models"] and rules["kernel_functions"] == ["predict_positive"]
    answers = [c for c in NB.cells if c.cell_type == "markdown" and is_exercise(c)]
    assert len(answers) == 1 and nbgrader_meta(answers[0])["points"] == 2
    points = sum(
        nbgrader_meta(c).get("points", 0) for c in NB.cells if nbgrader_meta(c).get("grade")
    )
    assert points == 15 and "15 points in all" in NB.cells[1].source


def test_solution_notebook_prints_its_metrics():
    out = "".join(o.get("text", "") for c in NB.cells if c.cell_type == "code" for o in c.outputs)
    accs = {p: float(re.search(rf"\[metric\] lab03 test accuracy, {p} pooling: (\S+)", out).group(1))
            for p in ("last", "mean", "attention")}  # fmt: skip
    best = float(
        re.search(
            r"\[metric\] lab03 test accuracy \(best pooling on validation\): (\S+)", out
        ).group(1)
    )
    assert best in accs.values() and min(accs.values()) > 0.75  # a full run
    assert re.search(r"\[metric\] lab03 tfidf logreg test accuracy: 0\.\d+", out)
    assert out.count("[PASS]") >= 5 and "[FAIL]" not in out
