"""The checks of the project (a retrieval chatbot) accept the solution and reject broken
code with the right hint.

The correct functions come from the solution notebook's exercise cells; each broken
variant is a small text mutation of that code, or a wrapper that breaks what a function
returns (tests/labs/harness.py runs them all). ``rank_responses`` reads the model the
notebook trained; here it runs on an untrained dual encoder (the check's interface), and
the Recall@1 bar is tested with a TF-IDF stand-in that needs no training.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re

import nbformat
import numpy as np
import pytest
import torch

from tests.factories import ROOT
from tests.labs.harness import (
    Mutation,
    assert_accepts,
    check_calls,
    edits,
    load_solution,
    notebook_test_cells,
    parametrize,
    run_mutation,
    run_test_cell,
    standard,
    text,
    wrap,
)
from utils.checks import lab08 as lc
from utils.instructor.notebook import is_exercise, nbgrader_meta

SOLUTION_PATH = ROOT / "solutions" / "lab08_chatbot_project.ipynb"
NB = nbformat.read(SOLUTION_PATH, as_version=4)
PREAMBLE = """
import numpy as np
import torch
import torch.nn.functional as F
from chatbot.data import load_pairs
from chatbot.model import DualEncoder
from chatbot.text import Vocab, pad_batch
from chatbot.train import MAX_CONTEXT, context_ids, encode_responses
from tests.labs.lab08_stand_in import untrained
model, vocab = untrained()
"""
SOL = load_solution(SOLUTION_PATH, preamble=PREAMBLE)

pytestmark = pytest.mark.data  # the trained check reads SGD's test split (from the cache)


@functools.cache
def _tfidf():
    from chatbot.baseline import TfidfRetriever

    return TfidfRetriever().fit(SOL["load_pairs"]()["train"].subset(range(20_000)))


def tfidf_rank(contexts, candidates):
    """A stand-in for a trained model: TF-IDF cosines (about 0.5 Recall@1 of 10 on SGD)."""
    tf = _tfidf()
    C = tf.contexts(contexts)
    out = np.empty((len(contexts), len(candidates[0])))
    for n, row in enumerate(candidates):
        out[n] = (tf.responses(row) @ C[n].T).toarray().ravel()
    return torch.from_numpy(out)


TFIDF_BAR = 0.3
CHECKS = {
    "sample_negatives": lc.check_sample_negatives,
    "recall_at_k": lc.check_recall_at_k,
    "attention_match": lc.check_attention_match,
    "info_nce_loss": lc.check_info_nce_loss,
    "rank_responses": functools.partial(lc.check_rank_responses, n=60),
    "rank_responses with a bar": functools.partial(
        lc.check_rank_responses, n=200, min_recall=TFIDF_BAR
    ),
}
EXERCISES = ["sample_negatives", "recall_at_k", "attention_match", "info_nce_loss",
             "rank_responses"]  # fmt: skip
MODULES = [
    importlib.import_module(f"{lc.__name__}.{m.name}") for m in pkgutil.iter_modules(lc.__path__)
]


SOL.extras["rank_responses with a bar"] = tfidf_rank


# ------------------------------------------------------------------ the solution passes


def test_solution_defines_every_exercise():
    assert set(EXERCISES) <= set(SOL)


@pytest.mark.parametrize("name", [n for n in CHECKS if n != "rank_responses with a bar"])
def test_check_accepts_the_solution(name):
    assert_accepts(CHECKS[name], SOL[name])


def test_the_bar_accepts_a_model_that_reads_the_context():
    assert_accepts(CHECKS["rank_responses with a bar"], tfidf_rank)


@pytest.mark.parametrize("name", [n for n in CHECKS if not n.startswith("rank")])
def test_check_accepts_the_solution_on_other_seeds(name):
    for seed in (11, 12, 13):
        assert_accepts(CHECKS[name], SOL[name], seed=seed)


def test_the_check_modules_hold_no_exercise():
    """No function of the check package has an exercise's name; modules stay short."""
    for module in MODULES:
        for name, value in vars(module).items():
            if callable(value) and getattr(value, "__module__", None) == module.__name__:
                assert name not in set(EXERCISES), name
        assert len(inspect.getsource(module).splitlines()) < 250, module.__name__


# ------------------------------------------------------------------ broken code is rejected

DRAW = "j = int(rng.integers(N))"
TAKEN = "taken, picked = {text_id[i]}, []"
KEEP = "if text_id[j] not in taken:  # a new text for this row"
RANK = "rank = (scores[:, 1:] >= scores[:, :1]).sum(dim=1)  # candidates at least as good"
RET_R = "return float((rank < k).double().mean())"
SCORES = 'scores = torch.einsum("nth,nmh->nmt", C, q) / C.shape[-1] ** 0.5'
MASK = 'scores = scores.masked_fill(~mask[:, None, :], float("-inf"))  # no weight on padding'
SOFT = "a = torch.softmax(scores, dim=-1)"
POOL = 'pooled = torch.einsum("nmt,nth->nmh", a, C)'
KEEP_POS = "drop[torch.arange(S.shape[0]), positive] = False  # keep the positive itself"
CE = 'return F.cross_entropy(S.masked_fill(drop, float("-inf")), positive)'
MATCH = "scores, _ = model.matching(C, mask, r.reshape(len(contexts), n, -1))"


def _global_random(fn):
    """Negatives drawn from NumPy's global generator, not from the seed."""

    def sample_negatives(text_id, k, seed):
        return fn(text_id, k, int(np.random.randint(1 << 30)))

    return sample_negatives


def _sorted_scores(fn):
    """Each row's scores sorted: they no longer belong to their candidates."""
    return lambda contexts, candidates: torch.sort(torch.as_tensor(fn(contexts, candidates)), 1)[0]


def _random_scores(fn):
    return lambda contexts, candidates: torch.rand(len(contexts), len(candidates[0]))


def _first_wins(fn):
    """Always the first candidate: the true response is first 1 time in 10."""

    def rank_responses(contexts, candidates):
        S = torch.zeros(len(contexts), len(candidates[0]))
        S[:, 0] = 1.0
        return S

    return rank_responses


def _lookup(fn):
    """A 'model' that finds the context in the test split and scores its true response."""
    contexts, responses = lc.sgd_test()
    where = {tuple(c): r for c, r in zip(contexts, responses)}

    def rank_responses(ctx, candidates):
        return torch.tensor([[float(c == where.get(tuple(x))) for c in row]
                             for x, row in zip(ctx, candidates)])  # fmt: skip

    return rank_responses


def barred(name, build, words):
    return Mutation(name, "rank_responses with a bar", build, words)


MUTATIONS = [
    # -- sample_negatives
    text("negatives: by index, not by text", KEEP, "if j != i and j not in picked:", "sample_negatives",
         "same text"),
    text("negatives: itself allowed", TAKEN, "taken, picked = set(), []", "sample_negatives", "itself"),
    text("negatives: a text twice in a row", KEEP, "if text_id[j] != text_id[i]:", "sample_negatives",
         "two negatives with the same text"),
    Mutation("negatives: global random", "sample_negatives", wrap("sample_negatives", _global_random),
             "seeded alike"),
    text("negatives: the seed ignored", "rng = np.random.default_rng(seed)", "rng = np.random.default_rng(0)",
         "sample_negatives", "seeded differently"),
    text("negatives: the first few only", DRAW, "j = int(rng.integers(min(N, 40)))", "sample_negatives",
         "distinct responses"),
    text("negatives: floats", "negatives = np.empty((N, k), dtype=np.int64)",
         "negatives = np.empty((N, k))", "sample_negatives", "integer indices"),
    text("negatives: transposed", "return negatives", "return negatives.T", "sample_negatives", "shape"),
    # -- recall_at_k
    text("recall: ties count for it", RANK, RANK.replace(">=", ">"), "recall_at_k", "A tie was counted"),
    text("recall: off by one", RET_R, RET_R.replace("rank < k", "rank <= k"), "recall_at_k", "Off by one"),
    text("recall: lower is better", RANK, RANK.replace(">=", "<="), "recall_at_k",
         ("reversed", "worked example")),
    text("recall: a count, not a share", RET_R, "return float((rank < k).double().sum())", "recall_at_k",
         "worked example"),
    text("recall: argmax only", RET_R, "return float((scores.argmax(1) == 0).double().mean())",
         "recall_at_k", ("worked example", "A tie")),
    text("recall: the first column ranked among all", RANK,
         "rank = (scores >= scores[:, :1]).sum(dim=1)", "recall_at_k", ("Off by one", "worked example")),
    # -- attention_match
    text("match: no mask", MASK, "scores = scores", "attention_match", "padding positions took weight"),
    Mutation("match: masked after the softmax", "attention_match",
             edits("attention_match", (MASK, "pass"), (SOFT, "a = torch.softmax(scores, dim=-1) * mask[:, None, :]")),
             "after the softmax"),
    text("match: a loop over the contexts, mask of the first", MASK,
         'scores = scores.masked_fill(~mask[:1, None, :], float("-inf"))', "attention_match", "differs"),
    text("match: not scaled", SCORES, SCORES.replace(" / C.shape[-1] ** 0.5", ""), "attention_match",
         "sqrt(H)"),
    text("match: softmax over the candidates", SOFT, "a = torch.softmax(scores, dim=1).nan_to_num()",
         "attention_match", ("over the candidates", "differs")),
    text("match: mean, not sum", POOL, POOL + " / C.shape[1]", "attention_match", "not a mean"),
    text("match: weights detached", POOL, POOL.replace(", a, C)", ", a.detach(), C)"), "attention_match",
         "gradient"),
    text("match: padding scores 0", MASK, MASK.replace('float("-inf")', "0.0"), "attention_match",
         ("differs", "took weight")),
    text("match: outputs swapped", "return pooled, a", "return a, pooled", "attention_match", "shape"),
    # -- info_nce_loss
    text("nce: duplicates counted as negatives", KEEP_POS, "drop[:] = False", "info_nce_loss",
         "counted as negatives"),
    text("nce: the positive dropped too", KEEP_POS, "pass", "info_nce_loss", ("non-finite", "differs")),
    text("nce: summed", CE, CE.replace("positive)", 'positive, reduction="sum")'), "info_nce_loss",
         "summed over the rows"),
    text("nce: softmax over the contexts", CE,
         'return F.cross_entropy(S.masked_fill(drop, float("-inf")).T[: S.shape[0]], positive)',
         "info_nce_loss", "differs"),
    text("nce: per row", CE, CE.replace("positive)", 'positive, reduction="none")'), "info_nce_loss",
         "one number"),
    text("nce: detached", CE, "return F.cross_entropy(S.detach().masked_fill(drop, float('-inf')), positive)",
         "info_nce_loss", "gradient"),
    text("nce: the wrong sign", CE, "return -" + CE[7:], "info_nce_loss", "wrong sign"),
    # -- rank_responses (the solution's function on an untrained model; bars on TF-IDF)
    text("rank: scores of the first candidate only", MATCH,
         "scores, _ = model.matching(C, mask, r.reshape(len(contexts), n, -1)[:, :1].expand(-1, n, -1))",
         "rank_responses", "follow"),
    text("rank: (N, n, 1)", "return scores", "return scores[..., None]", "rank_responses", "shape"),
    Mutation("rank: sorted scores", "rank_responses", wrap("rank_responses", _sorted_scores), "follow"),
    Mutation("rank: NaN", "rank_responses", wrap("rank_responses", lambda fn: lambda c, k: fn(c, k) * float("nan")),
             "non-finite"),
    Mutation("rank: a list of lists of str", "rank_responses",
             wrap("rank_responses", lambda fn: lambda c, k: [["a"] * len(k[0])] * len(c)), "expected a tensor"),
    Mutation("rank: different every time", "rank_responses", wrap("rank_responses", _random_scores),
             "second time"),
    barred("rank: the first candidate always", wrap("rank_responses", _first_wins), ("Recall@1", "follow")),
    barred("rank: looks the context up in the data", wrap("rank_responses", _lookup), "Recall@1"),
    barred("rank: by length", wrap("rank_responses", lambda fn: lambda c, k: torch.tensor(
        [[float(len(x)) for x in row] for row in k])), "Recall@1"),
    *standard([n for n in CHECKS if " " not in n]),
]  # fmt: skip

# Wrong code a later review found that the checks accepted: an index range off by one (the
# first or the last response never a negative), ties broken by torch.topk, positives
# assumed on the diagonal or kept for every row, and exp / log by hand (overflow).
REVIEW_MUTATIONS = [
    text("negatives: the last response never drawn", DRAW, "j = int(rng.integers(N - 1))",
         "sample_negatives", "index 6 was never drawn"),
    text("negatives: the first response never drawn", DRAW, "j = int(rng.integers(1, N))",
         "sample_negatives", "index 0 was never drawn"),
    text("recall: torch.topk breaks the ties", RANK + "\n    " + RET_R,
         "return float((torch.topk(scores, k, dim=1).indices == 0).any(1).double().mean())",
         "recall_at_k", "torch.topk and sorting break ties"),
    text("nce: positives assumed on the diagonal", CE,
         CE.replace("positive)", "torch.arange(S.shape[0]))"), "info_nce_loss",
         "column of row n's true response"),
    text("nce: the diagonal kept, not the positive", KEEP_POS,
         "drop[torch.arange(S.shape[0]), torch.arange(S.shape[0])] = False", "info_nce_loss",
         "column of row n's true response"),
    text("nce: every row keeps every positive", KEEP_POS, "drop[:, positive] = False",
         "info_nce_loss", "not drop[:, positive] = False"),
    text("nce: exp, sum and log by hand", CE,
         'S = S.masked_fill(drop, float("-inf"))\n    '
         "return -(S.gather(1, positive[:, None]).squeeze(1) - S.exp().sum(1).log()).mean()",
         "info_nce_loss", "exp overflowed"),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning")
@parametrize(MUTATIONS + REVIEW_MUTATIONS)
def test_check_rejects_the_mutation_with_its_hint(mutation):
    run_mutation(mutation, CHECKS, SOL)


def test_every_check_has_at_least_6_mutations():
    counts = {n: sum(m.check.split(" ")[0] == n for m in MUTATIONS) for n in CHECKS if " " not in n}
    assert all(n >= 6 for n in counts.values()), counts


# ------------------------------------------------------------------ the notebook


CELLS = notebook_test_cells(NB)


def test_the_notebook_test_cells_call_existing_checks():
    """Every check_* call of the test cells names a function of utils.checks.lab08 and
    passes arguments its signature accepts; every exercise has a test with hidden tests."""
    assert {f"test_{name}" for name in EXERCISES} == set(CELLS)
    assert check_calls(CELLS, lc) >= 10
    assert "min_recall=pick(" in CELLS["test_rank_responses"]


@pytest.mark.parametrize("gid", [f"test_{n}" for n in EXERCISES if n != "rank_responses"])
def test_the_solution_passes_the_notebook_test_cells(gid):
    """The test cells as the grader runs them, hidden tests included."""
    out = run_test_cell(CELLS[gid], SOL, lc, gid)
    assert out and all(line.startswith("[PASS]") for line in out), out


def test_grade_cells_rules_and_the_written_answer():
    rules = NB.metadata["workbook"]
    assert rules["forbid"] == [] and rules["kernel_functions"] == ["rank_responses"]
    answers = [c for c in NB.cells if c.cell_type == "markdown" and is_exercise(c)]
    assert len(answers) == 1 and nbgrader_meta(answers[0])["points"] == 2
    points = sum(
        nbgrader_meta(c).get("points", 0) for c in NB.cells if nbgrader_meta(c).get("grade")
    )
    assert points == 15 and "15 points in all" in NB.cells[0].source


def test_solution_notebook_prints_its_metrics():
    out = "".join(o.get("text", "") for c in NB.cells if c.cell_type == "code" for o in c.outputs)
    r1 = float(re.search(r"\[metric\] chatbot 1-of-10 R@1: (\S+)", out).group(1))
    tf = float(re.search(r"\[metric\] TF-IDF 1-of-10 R@1: (\S+)", out).group(1))
    assert r1 > tf > 0.1  # a full run: the model above the baseline, the baseline above chance
    assert out.count("[PASS]") >= 5 and "[FAIL]" not in out
