"""The checks of Lab 5 (neural machine translation) accept the solution and reject broken
code with the right hint.

The correct functions come from the solution notebook's exercise cells; each broken variant
is a small text mutation of that code, or a wrapper that breaks what a function returns
(tests/labs/harness.py runs them all). ``translate`` needs the notebook's trained model:
here a memoriser stands for it (the French of a training pair with the same normalised
English, a fixed sentence otherwise). It reaches about 22 BLEU on the test split, not the
lab's 30, so its checks run with ``threshold=MEMO_THRESHOLD``.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import math

import nbformat
import pytest
import torch

from tests.factories import ROOT
from tests.labs.harness import (
    Mutation,
    assert_accepts,
    edits,
    load_solution,
    parametrize,
    returns,
    run_mutation,
    standard,
    text,
    wrap,
)
from utils.checks import CheckError
from utils.checks import lab05 as lc
from utils.checks.lab05 import attention, bleu, training, translation
from utils.data.translation import normalize
from utils.instructor.notebook import grade_id, is_exercise, is_test

SOLUTION_PATH = ROOT / "solutions" / "lab05_neural_machine_translation.ipynb"
NB = nbformat.read(SOLUTION_PATH, as_version=4)
PREAMBLE = (
    "import math\nimport torch\nfrom collections import Counter\n"
    "from utils.models.seq2seq import EOS, PAD, SOS, UNK, pad_batch\n"
    "from utils.models.decoding import beam_search, cut_at_eos, greedy_decode\n"
    "from utils.data.translation import detokenize, normalize\n"
)
SOL = load_solution(SOLUTION_PATH, preamble=PREAMBLE)
MEMO_THRESHOLD = 15.0

CHECKS = {
    "luong_scores": lc.check_luong_scores,
    "attend": lc.check_attend,
    "decoder_step": lc.check_decoder_step,
    "teacher_forcing_ratio": lc.check_teacher_forcing_ratio,
    "mix_inputs": lc.check_mix_inputs,
    "corpus_bleu": lc.check_corpus_bleu,
    "translate": lambda fn, **kw: lc.check_translate(fn, **{"threshold": MEMO_THRESHOLD, **kw}),
}
PURE = [name for name in CHECKS if name != "translate"]
MODULES = [attention, bleu, training, translation]


def _memoriser():
    """A 'trained model' that needs no training: the original French of the first training
    pair with the same normalised English, a fixed sentence otherwise."""
    memo: dict[str, str] = {}

    def translate(sentences, beam_size=1):
        if not memo:
            for p in translation.lab_split()[0]:
                memo.setdefault(p.english, p.french_original)
        return [memo.get(normalize(s), "Je ne sais pas.") for s in sentences]

    return translate


pytestmark = pytest.mark.data  # check_translate reads the eng-fra pairs (from the cache)
SOL.extras["translate"] = _memoriser()


# ------------------------------------------------------------------ the solution passes


def test_solution_defines_every_exercise():
    assert set(CHECKS) <= set(SOL)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution(name):
    assert_accepts(CHECKS[name], SOL[name], name)


@pytest.mark.parametrize("name", [n for n in PURE if n != "teacher_forcing_ratio"])
def test_check_accepts_the_solution_on_other_seeds(name):
    for seed in (11, 12, 13):
        assert_accepts(CHECKS[name], SOL[name], name, seed=seed)


def _test_cells() -> dict[str, str]:
    return {grade_id(c): c.source for c in NB.cells if is_test(c)}


def test_the_notebook_test_cells_call_existing_checks():
    """Every check_* call of the test cells names a function of utils.checks.lab05 and
    passes arguments its signature accepts; the setup cell imports only existing names."""
    cells = _test_cells()
    assert {f"test_{name}" for name in CHECKS} <= set(cells)
    calls = 0
    for gid, source in cells.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "").startswith("check_"):
                fn = getattr(lc, node.func.id)  # AttributeError: a check that does not exist
                inspect.signature(fn).bind(*node.args, **{k.arg: k.value for k in node.keywords})
                calls += 1
        assert "# BEGIN HIDDEN TESTS" in source, gid
    assert calls >= 15
    setup = next(c.source for c in NB.cells if "from utils.checks.lab05 import" in c.source)
    for node in ast.walk(ast.parse(setup.replace("%matplotlib inline", ""))):
        if isinstance(node, ast.ImportFrom) and node.module == "utils.checks.lab05":
            assert all(hasattr(lc, a.name) for a in node.names)


@pytest.mark.parametrize("gid", [f"test_{name}" for name in CHECKS])
def test_the_solution_passes_the_notebook_test_cells(gid):
    """The test cells as the grader runs them, hidden tests included (translate: the
    memoriser, with the threshold lowered to what it reaches)."""
    ns = {**{n: SOL[n] for n in CHECKS}, **{n: getattr(lc, n) for n in lc.__all__}}
    ns["pick"] = lambda full, fast: min(full, MEMO_THRESHOLD)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_test_cells()[gid], gid, "exec"), ns)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2 and all(ln.startswith("[PASS]") for ln in lines), out.getvalue()


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_the_check_modules_hold_no_exercise(module):
    for name, value in vars(module).items():
        if callable(value) and getattr(value, "__module__", None) == module.__name__:
            assert name not in CHECKS, name
    assert len(inspect.getsource(module).splitlines()) < 400


def test_exports():
    assert lc.CheckError is CheckError
    assert set(lc.__all__) == {"CheckError", *(f"check_{n}" for n in CHECKS)}


@pytest.mark.parametrize("schedule", [
    lambda s, T: 1 - s / T,
    lambda s, T: math.exp(-3 * s / T),
    lambda s, T: 1.0 if s < T / 2 else 1 - (s - T / 2) / T,
    lambda s, T: torch.tensor(max(0.0, 1 - 0.9 * s / T)),
], ids=["linear", "exponential", "constant then linear", "a 0-d tensor"])  # fmt: skip
def test_the_schedule_check_accepts_other_decays(schedule):
    for total in (1000, 37, 20_000):
        assert_accepts(lc.check_teacher_forcing_ratio, schedule, "teacher_forcing_ratio",
                       total_steps=total)  # fmt: skip


def test_the_translate_check_refuses_a_bad_translator_with_its_scores():
    with pytest.raises(CheckError, match=r"BLEU \d+\.\d on the normalised French \(\d+\.\d "
                       "against the original French"):  # fmt: skip
        lc.check_translate(lambda s: ["le chat ."] * len(s), n=50)


# ------------------------------------------------------------------ mutations


def _first_tensor(x):
    if isinstance(x, torch.Tensor) and x.dtype.is_floating_point:
        return x
    items = x.values() if isinstance(x, dict) else x if isinstance(x, tuple | list) else ()
    return next((t for t in map(_first_tensor, items) if t is not None), None)


def changes_tensor_input(fn):
    def wrapper(*args):
        out = fn(*args)
        _first_tensor(args).mul_(0.5)
        return out

    return wrapper


def changes_list_input(fn):
    def wrapper(*args):
        out = fn(*args)
        args[0][0] = args[0][0] + " x"
        return out

    return wrapper


def changes_ids_in_place(fn):
    def wrapper(y_true, *rest):
        out = fn(y_true, *rest)
        y_true[0] = (y_true[0] + 1) % 2
        return out

    return wrapper


def nan_first(fn):
    """NaN in the first tensor of what comes back (the scores, context, h_t)."""

    def wrapper(*args):
        out = fn(*args)
        if isinstance(out, torch.Tensor):
            return out * float("nan")
        first, *rest = out
        if isinstance(first, tuple):
            return ((first[0] * float("nan"), *first[1:]), *rest)
        return (first * float("nan"), *rest)

    return wrapper


GENERAL = 'scores = (H_s @ (h_t @ params["W_a"]).unsqueeze(2)).squeeze(2)'
DOT = "scores = (H_s @ h_t.unsqueeze(2)).squeeze(2)"
CONCAT = 'hidden = torch.tanh((h_t @ params["W_q"]).unsqueeze(1) + H_s @ params["W_k"])'
SOFTMAX = 'weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)'
CONTEXT = "context = (weights.unsqueeze(1) @ H_s).squeeze(1)"
FEED = "x = torch.cat([e_t, h_tilde_prev], dim=1)"
SCORE_H = 'scores = luong_scores("general", h_t, H_s, {"W_a": params["W_a"]})'
TILDE = 'h_tilde = torch.tanh(torch.cat([context, h_t], dim=1) @ params["W_c"].T)'
RATIO = "ratio = 1 / (1 + math.exp(10 * (progress - 0.6)))"
MIX = "y = torch.where(u < ratio, y_true, logits_prev.argmax(dim=1))"
BP = "brevity = 1.0 if c >= r else math.exp(1 - r / c)"
CLIP = "correct[n - 1] += sum(min(k, g_grams[gram]) for gram, k in h_grams.items())"


def detached(fn):
    """The outputs (tensors, or tuples of them) cut from the autograd graph."""

    def cut(x):
        return x.detach() if isinstance(x, torch.Tensor) else tuple(map(cut, x))

    return lambda *args: cut(fn(*args))


def _mean_of_sentences(fn):
    return lambda hyps, refs: sum(fn([h], [r]) for h, r in zip(hyps, refs)) / len(hyps)


MUTATIONS = [
    # -- luong_scores
    text("scores: W_a transposed", GENERAL, GENERAL.replace('["W_a"]', '["W_a"].T'),
         "luong_scores", "transposed"),
    text("scores: W_a not used", GENERAL, 'scores = (H_s @ h_t.unsqueeze(2)).squeeze(2)  # W_a',
         "luong_scores", "W_a is not used"),
    text("scores: concat without tanh", CONCAT, CONCAT.replace("torch.tanh", ""), "luong_scores",
         "tanh is missing"),
    text("scores: scaled by sqrt(H)", DOT, DOT + " / math.sqrt(h_t.shape[1])", "luong_scores",
         "sqrt(H)"),
    text("scores: concat summed, no v_a", 'scores = hidden @ params["v_a"]',
         "scores = hidden.sum(-1)", "luong_scores", "weighted by v_a"),
    text("scores: (N, S, 1)", DOT, "scores = H_s @ h_t.unsqueeze(2)", "luong_scores", "squeeze"),
    text("scores: (N, H)", DOT, "scores = (H_s * h_t.unsqueeze(1)).sum(1)", "luong_scores",
         "one value per feature"),
    text("scores: unknown kind accepted", "raise ValueError(f\"unknown score", "scores = (f\"unknown score",
         "luong_scores", "expected an exception"),
    Mutation("scores: NaN", "luong_scores", wrap("luong_scores", nan_first), "non-finite"),
    Mutation("scores: changes its input", "luong_scores",
             wrap("luong_scores", changes_tensor_input), "in place"),
    Mutation("scores: detached", "luong_scores", wrap("luong_scores", detached),
             "cut from the autograd graph"),
    text("scores: through NumPy", DOT, "scores = torch.from_numpy((H_s.numpy() @ "
         "h_t.numpy()[:, :, None])[:, :, 0])", "luong_scores", "a detour through NumPy"),
    Mutation("scores: a list", "luong_scores", wrap("luong_scores", returns(lambda s: s.tolist())),
             "expected a torch tensor"),
    # -- attend
    text("attend: softmax over dim 0", SOFTMAX, SOFTMAX.replace("dim=1", "dim=0"), "attend",
         "dim 0"),
    text("attend: mask ignored", SOFTMAX, "weights = torch.softmax(scores, dim=1)", "attend",
         "mask is ignored"),
    text("attend: mask after the softmax", SOFTMAX, "weights = torch.softmax(scores, dim=1) * mask",
         "attend", "without renormalising"),
    text("attend: mask inverted", SOFTMAX, SOFTMAX.replace("~mask", "mask"), "attend", "inverted"),
    text("attend: mask inverted, finite fill", SOFTMAX,
         "weights = torch.softmax(scores.masked_fill(mask, -1e9), dim=1)", "attend", "inverted"),
    text("attend: padding scored 0", SOFTMAX, SOFTMAX.replace('float("-inf")', "0.0"), "attend",
         "exp(0)"),
    text("attend: padding weight 1e-6", SOFTMAX,
         SOFTMAX + "\n    weights = (weights + 1e-6 * ~mask) / (1 + 1e-6 * (~mask).sum(1, keepdim=True))",
         "attend", "not 0 on the padding"),
    text("attend: context from the unmasked weights", CONTEXT,
         "context = (torch.softmax(scores, dim=1).unsqueeze(1) @ H_s).squeeze(1)", "attend",
         "unmasked weights"),
    text("attend: context not squeezed", CONTEXT, "context = weights.unsqueeze(1) @ H_s", "attend",
         "squeeze the middle axis"),
    text("attend: context summed", CONTEXT, "context = (H_s * mask.unsqueeze(2)).sum(1)", "attend",
         "weight them"),
    Mutation("attend: (weights, context)", "attend",
             wrap("attend", returns(lambda out: out[::-1])), "the order is (context, weights)"),
    text("attend: softmax by hand, without the max", SOFTMAX,
         "e = torch.exp(scores) * mask\n    weights = e / e.sum(1, keepdim=True)", "attend",
         "exp overflows"),
    text("attend: padding zeroed in place after the softmax", SOFTMAX,
         SOFTMAX + "\n    weights[~mask] = 0.0", "attend", "modified by an inplace operation"),
    text("attend: context from detached weights", CONTEXT,
         CONTEXT.replace("weights.unsqueeze", "weights.detach().unsqueeze"), "attend",
         "gradient with respect to scores is wrong"),
    Mutation("attend: detached", "attend", wrap("attend", detached), "cut from the autograd graph"),
    Mutation("attend: float32", "attend",
             wrap("attend", returns(lambda out: tuple(t.float() for t in out))), "float32"),
    Mutation("attend: NaN", "attend", wrap("attend", nan_first), "non-finite"),
    Mutation("attend: changes its input", "attend", wrap("attend", changes_tensor_input),
             "in place"),
    Mutation("attend: too few values", "attend", wrap("attend", returns(lambda out: out[:1])),
             "values, expected"),
    # -- decoder_step
    text("step: input feeding zeros", FEED, FEED.replace("h_tilde_prev]", "torch.zeros_like(h_tilde_prev)]"),
         "decoder_step", "not zeros"),
    text("step: h_prev fed", FEED, FEED.replace("h_tilde_prev]", "h_prev]"), "decoder_step",
         "not h_prev"),
    text("step: [h_tilde_prev; e_t] order", FEED, "x = torch.cat([h_tilde_prev, e_t], dim=1)",
         "decoder_step", "the embedding first"),
    text("step: GRU state h_tilde_prev", "torch.gru_cell(x, h_prev,",
         "torch.gru_cell(x, h_tilde_prev,", "decoder_step", "The GRU's state is h_tilde_prev"),
    text("step: attention from h_prev", SCORE_H, SCORE_H.replace("h_t,", "h_prev,"),
         "decoder_step", "reads h_prev"),
    text("step: [h_t; c] order", TILDE, TILDE.replace("[context, h_t]", "[h_t, context]"),
         "decoder_step", "[h_t; c_t]"),
    text("step: tanh missing", TILDE, 'h_tilde = torch.cat([context, h_t], dim=1) @ params["W_c"].T',
         "decoder_step", "tanh is missing"),
    text("step: mask ignored", "context, weights = attend(scores, mask, H_s)",
         "context, weights = attend(scores, torch.ones_like(mask), H_s)", "decoder_step",
         "mask is ignored"),
    text("step: state (h_tilde, h_t)", "return (h_t, h_tilde), weights",
         "return (h_tilde, h_t), weights", "decoder_step", "(h_tilde_t, h_t)"),
    text("step: W_c not transposed", TILDE, TILDE.replace('["W_c"].T', '["W_c"]'),
         "decoder_step", "raised RuntimeError"),
    text("step: GRU state wrong", "h_t = torch.gru_cell(",
         "h_t = 2 * h_prev - torch.gru_cell(", "decoder_step", "h_t (N = 3, H = 4) differs"),
    text("step: attention from a detached h_t", SCORE_H, SCORE_H.replace("h_t,", "h_t.detach(),"),
         "decoder_step", "gradient with respect to W_ih is wrong"),
    text("step: attention under no_grad", "context, weights = attend(scores, mask, H_s)",
         "with torch.no_grad():\n        context, weights = attend(scores, mask, H_s)",
         "decoder_step", "cut from the autograd graph"),
    Mutation("step: NaN", "decoder_step", wrap("decoder_step", nan_first), "non-finite"),
    Mutation("step: changes its input", "decoder_step", wrap("decoder_step", changes_tensor_input),
             "in place"),
    Mutation("step: too few values", "decoder_step",
             wrap("decoder_step", returns(lambda out: out[:1])), "values, expected"),
    Mutation("step: state without h_tilde", "decoder_step",
             wrap("decoder_step", returns(lambda out: (out[0][0], out[1]))), "expected"),
    # -- teacher_forcing_ratio
    text("ratio: increasing", RATIO, RATIO.replace("exp(10", "exp(-10"), "teacher_forcing_ratio",
         "starts at"),
    text("ratio: never decays", RATIO, "ratio = 1.0", "teacher_forcing_ratio", "never decays"),
    text("ratio: collapses at once", "progress = step / max(total_steps, 1)",
         "progress = 20 * step / max(total_steps, 1)",
         "teacher_forcing_ratio", "collapses at once"),
    text("ratio: above 1", RATIO, RATIO.replace("1 / (", "1.5 / ("), "teacher_forcing_ratio",
         "probability in [0, 1]"),
    text("ratio: goes up again", RATIO, "ratio = 0.55 + 0.45 * math.cos(4 * math.pi * progress)",
         "teacher_forcing_ratio", "increases from"),
    text("ratio: ends too high", RATIO, "ratio = 1 - 0.1 * progress", "teacher_forcing_ratio",
         "never decays"),
    text("ratio: integer division", "progress = step / max(total_steps, 1)",
         "progress = step // max(total_steps, 1)", "teacher_forcing_ratio", "integer division"),
    text("ratio: progress rounded", "progress = step / max(total_steps, 1)",
         "progress = round(step / max(total_steps, 1))", "teacher_forcing_ratio", "at once"),
    Mutation("ratio: NaN", "teacher_forcing_ratio",
             wrap("teacher_forcing_ratio", returns(lambda p: float("nan"))), "probability"),
    Mutation("ratio: two numbers", "teacher_forcing_ratio",
             wrap("teacher_forcing_ratio", returns(lambda p: [p, p])), "one number"),
    # -- mix_inputs
    text("mix: inverted", MIX, MIX.replace("u < ratio", "u >= ratio"), "mix_inputs", "inverted"),
    text("mix: argmax over dim 0", MIX, MIX.replace("dim=1", "dim=0"), "mix_inputs",
         "over the batch"),
    text("mix: sampling", MIX, MIX.replace("logits_prev.argmax(dim=1)", "torch.multinomial("
         "torch.softmax(logits_prev, dim=1), 1, generator=torch.Generator().manual_seed(0))"
         ".squeeze(1)"), "mix_inputs", "not a sample"),
    text("mix: always the truth", MIX, "y = y_true.clone()", "mix_inputs",
         "always returns the true"),
    text("mix: always the guess", MIX, "y = logits_prev.argmax(dim=1)", "mix_inputs",
         "always returns the model's"),
    text("mix: float ids", MIX, MIX.replace("y_true,", "y_true.double(),"), "mix_inputs",
         "int64"),
    text("mix: keepdim", MIX, MIX.replace("dim=1)", "dim=1, keepdim=True)"), "mix_inputs",
         "returned shape"),
    Mutation("mix: a list", "mix_inputs", wrap("mix_inputs", returns(lambda y: y.tolist())),
             "expected a tensor"),
    Mutation("mix: changes its input", "mix_inputs", wrap("mix_inputs", changes_ids_in_place),
             "in place"),
    # -- corpus_bleu
    text("bleu: no brevity penalty", BP, "brevity = 1.0", "corpus_bleu",
         "brevity penalty is missing"),
    text("bleu: unclipped", CLIP,
         "correct[n - 1] += sum(k for gram, k in h_grams.items() if gram in g_grams)",
         "corpus_bleu", "not clipped"),
    Mutation("bleu: mean of sentence BLEUs", "corpus_bleu", wrap("corpus_bleu", _mean_of_sentences),
             "mean of the sentence BLEUs"),
    Mutation("bleu: n-grams up to 3", "corpus_bleu", edits(
        "corpus_bleu", ("correct, total = [0] * 4, [0] * 4", "correct, total = [0] * 3, [0] * 3"),
        ("for n in range(1, 5):", "for n in range(1, 4):"),
        ("zip(correct, total)) / 4", "zip(correct, total)) / 3")), "up to 3"),
    text("bleu: arithmetic mean", "bleu = 100 * brevity * math.exp(log_precision)",
         "bleu = 100 * brevity * sum(k / t for k, t in zip(correct, total)) / 4", "corpus_bleu",
         "arithmetic mean"),
    text("bleu: brevity penalty swapped", BP, BP.replace("r / c", "c / r"), "corpus_bleu",
         "exp(1 - c / r)"),
    text("bleu: brevity penalty always", BP, "brevity = math.exp(1 - r / c)", "corpus_bleu",
         "longer too"),
    text("bleu: a fraction", "bleu = 100 * brevity", "bleu = brevity", "corpus_bleu",
         "a fraction"),
    text("bleu: reference denominators", "total[n - 1] += max(len(h) - n + 1, 0)",
         "total[n - 1] += max(len(g) - n + 1, 0)", "corpus_bleu", "references' n-grams"),
    text("bleu: log of 0", "if c == 0 or min(correct) == 0:", "if c == 0:", "corpus_bleu",
         "return 0.0 before taking the log"),
    text("bleu: negative n-gram counts of short sentences",
         "total[n - 1] += max(len(h) - n + 1, 0)", "total[n - 1] += len(h) - n + 1",
         "corpus_bleu", "max(len - n + 1, 0)"),
    Mutation("bleu: changes its input", "corpus_bleu", wrap("corpus_bleu", changes_list_input),
             "in place"),
    Mutation("bleu: NaN", "corpus_bleu", wrap("corpus_bleu", returns(lambda b: float("nan"))),
             "finite"),
    Mutation("bleu: a tuple", "corpus_bleu", wrap("corpus_bleu", returns(lambda b: (b, 1.0))),
             "expected one number"),
    # -- translate (the memoriser, broken)
    Mutation("translate: the English", "translate", wrap("translate", lambda fn: list),
             "returns the English"),
    Mutation("translate: token lists", "translate",
             wrap("translate", returns(lambda out: [h.split() for h in out])), "detokenize"),
    Mutation("translate: <eos> kept", "translate",
             wrap("translate", returns(lambda out: [h + " <eos>" for h in out])), "<eos>"),
    Mutation("translate: <pad> kept", "translate",
             wrap("translate", returns(lambda out: [h + " <pad> <pad>" for h in out])), "<pad>"),
    Mutation("translate: one output missing", "translate",
             wrap("translate", returns(lambda out: out[:-1])), "expected a list"),
    Mutation("translate: ids", "translate",
             wrap("translate", returns(lambda out: [[3, 4, 2] for _ in out])), "expected a string"),
    Mutation("translate: misaligned", "translate",
             wrap("translate", returns(lambda out: out[1:] + out[:1])), "below"),
    Mutation("translate: one string", "translate",
             wrap("translate", returns(lambda out: "\n".join(out))), "returned a str"),
    Mutation("translate: changes its input", "translate", wrap("translate", changes_list_input),
             "in place"),
    *standard(CHECKS),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning")
@parametrize(MUTATIONS)
def test_check_rejects_the_mutation_with_its_hint(mutation):
    run_mutation(mutation, CHECKS, SOL)


def test_every_check_has_at_least_6_mutations():
    counts = {name: sum(m.check == name for m in MUTATIONS) for name in CHECKS}
    assert all(n >= 6 for n in counts.values()), counts


def test_the_exercise_cells_are_the_checked_functions():
    exercises = [grade_id(c) for c in NB.cells if is_exercise(c) and c.cell_type == "code"]
    assert set(CHECKS) <= set(exercises)
    assert "translate" in NB.metadata["workbook"]["kernel_functions"]
