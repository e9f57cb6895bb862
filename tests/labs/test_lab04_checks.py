"""The checks of Lab 4 accept the solution and reject broken code with the right hint.

The correct functions come from the solution notebook's exercise cells (run after the
lab's given cells: the imports, the vocabulary, ``CharRNN``); each broken variant is a
small text mutation of that code, or a wrapper that breaks what a function returns
(tests/labs/harness.py runs them all). ``char_log_probs`` reads the model the notebook
trained, so here the solution's own function runs on a stand-in model that needs no
training: a bigram table of the training text.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import pkgutil
import re

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

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
from utils.checks import lab04 as lc
from utils.instructor.notebook import is_exercise, nbgrader_meta

SOLUTION_PATH = ROOT / "solutions" / "lab04_char_generation.ipynb"
NB = nbformat.read(SOLUTION_PATH, as_version=4)


def _given(start: str) -> str:
    return next(c.source for c in NB.cells if c.cell_type == "code" and c.source.startswith(start))


BIGRAM = """
class Bigram(nn.Module):
    # a 'trained model' without training: add-one bigram counts of the training text, as
    # logits shifted by a constant (so that a missing log_softmax shows), with dropout, left
    # in training mode (so that a missing model.eval() shows)
    def __init__(self):
        super().__init__()
        ids = encode(shakespeare_split()[0])
        counts = torch.ones(V, V, dtype=torch.float64)
        counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1, dtype=torch.float64), accumulate=True)
        self.register_buffer("table", (counts / counts.sum(1, keepdim=True)).log().float() + 3.0)
        self.drop = nn.Dropout(0.2)

    def forward(self, x, state=None):
        return self.drop(self.table[x]), state


model = Bigram().train()
"""
PREAMBLE = (
    "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
    "from torch import nn\nfrom utils.checks.lab04 import shakespeare_split\n"
    "chars = list(shakespeare_split()[2])\nV = len(chars)\n"
    "stoi = {ch: i for i, ch in enumerate(chars)}\n"
    "def encode(s):\n    return torch.tensor([stoi[ch] for ch in s], dtype=torch.long)\n\n"
    + _given("class CharRNN")
    + "\n\n"
    + BIGRAM
)
SOL = load_solution(SOLUTION_PATH, preamble=PREAMBLE)
STAND_IN_LOSS = 2.6  # the bigram stand-in's bar (it reaches 2.49 nats per character)


pytestmark = pytest.mark.data  # the checks read Tiny Shakespeare (from the cache)

CHECKS = {
    "batchify": lc.check_batchify,
    "train_steps_from": lc.check_train_steps,
    "validation_loss_from": lc.check_validation_loss,
    "sampling_probs": lc.check_sampling_probs,
    "generate_from": lc.check_generate,
    "char_log_probs": lc.check_char_log_probs,
    "char_log_probs with a bar": functools.partial(
        lc.check_char_log_probs, source="unseen", max_loss=STAND_IN_LOSS
    ),
}
SOL.aliases["char_log_probs with a bar"] = "char_log_probs"
EXERCISES = [  # the exercises' grade ids: the functions their tests call
    "batchify",
    "train_steps_from",
    "validation_loss_from",
    "sampling_probs",
    "generate_from",
    "char_log_probs",
]
MODULES = [
    importlib.import_module(f"{lc.__name__}.{m.name}") for m in pkgutil.iter_modules(lc.__path__)
]


# ------------------------------------------------------------------ the solution passes


def test_solution_defines_every_exercise():
    assert set(EXERCISES) | set(CHECKS) - {"char_log_probs with a bar"} <= set(SOL)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution(name):
    assert_accepts(CHECKS[name], SOL[name])


@pytest.mark.parametrize("name", [n for n in CHECKS if not n.startswith("char_log_probs")])
def test_check_accepts_the_solution_on_other_seeds(name):
    for seed in (11, 12):
        assert_accepts(CHECKS[name], SOL[name], seed=seed)


def test_the_check_modules_hold_no_exercise():
    """No function of the check package has an exercise's name; modules stay short."""
    exercises = set(EXERCISES) | {
        "train_steps_from",
        "validation_loss_from",
        "generate_from",
        "CharRNN",
    }
    for module in MODULES:
        for name, value in vars(module).items():
            if callable(value) and getattr(value, "__module__", None) == module.__name__:
                assert name not in exercises, name
        assert len(inspect.getsource(module).splitlines()) < 250, module.__name__


def test_the_variants_differ_from_the_reference():
    """Every known wrong variant of the training reference changes the result (else the
    check could not tell the mistake from a correct answer)."""
    from utils.checks.core import seeded
    from utils.checks.lab04.batches import _layout
    from utils.checks.lab04.common import random_weights
    from utils.checks.lab04.training import _reference_steps

    rng = seeded(0)
    w = random_weights(rng, V=13, E=5, H=6, layers=2, cell="gru")
    stream = torch.from_numpy(rng.integers(0, 13, size=3 * 4 * 5 + 1)).long()
    xi, yi = _layout(len(stream), 3, 5)
    X, Y = stream[torch.from_numpy(xi)], stream[torch.from_numpy(yi)]
    right = _reference_steps(w, X, Y, 0.3, 0.1)
    for kw in (dict(carry=False), dict(clip_how=None), dict(clip_how="value"), dict(zero=False),
               dict(reduction="sum")):  # fmt: skip
        other = _reference_steps(w, X, Y, 0.3, 0.1, **kw)
        assert not np.allclose(other[0][1:], right[0][1:], rtol=1e-6), kw


# ------------------------------------------------------------------ broken code is rejected


def changes_tensor_input(fn):
    def wrapper(*args):
        out = fn(*args)
        first = next(a for a in args if isinstance(a, torch.Tensor | dict))
        (next(iter(first.values())) if isinstance(first, dict) else first).mul_(2)
        return out

    return wrapper


XLINE = "x = ids[: B * L].view(B, L)[:, : K * T]"
YLINE = "y = ids[1 : B * L + 1].view(B, L)[:, : K * T]"
XT = "X = x.reshape(B, K, T).transpose(0, 1)"
YT = "Y = y.reshape(B, K, T).transpose(0, 1)"
FWD = "logits, state = model(x, state)  # from the state the previous batch left"
DETACH_IN = "if state is not None:\n        state = detach(state)\n    "
CLIP = "nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip)"
STEP = "optimizer.step()"
LOSS = "loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))"
VFWD = "logits, state = model(x, state)  # carried from chunk to chunk"
VSUM = "total += F.cross_entropy("
Z = "z = logits / temperature"
KTH = "kth = torch.topk(z, top_k, dim=-1).values[..., -1:]  # the k-th largest of each row"
MASK = 'z = z.masked_fill(z < kth, float("-inf"))'
SOFT = "probs = torch.softmax(z, dim=-1)"
DRAW = "nxt = torch.multinomial(p, 1, generator=generator)  # (1,)"
PROMPT = "logits, state = model(prompt_ids[None])"
FEED = "logits, state = model(nxt[None], state)"
P = "p = sampling_probs(logits[0, -1], temperature, top_k)"
LOGP = "log_probs = F.log_softmax(logits[0], dim=-1)"


def barred(name: str, old: str, new: str, words) -> Mutation:
    """A text mutation of char_log_probs, run by the check with the stand-in's bar."""
    return Mutation(name, "char_log_probs with a bar", edit("char_log_probs", old, new), words)


def _lookup(fn):
    """A 'model' that finds the last 30 characters in the data file and predicts the
    character that follows them there (uniform when they are not found)."""
    train, val, chars = lc.shakespeare_split()
    whole = train + val

    def char_log_probs(text):
        out = torch.full((len(text), len(chars)), -math.log(len(chars)))
        for t in range(len(text)):
            at = whole.find(text[max(0, t - 29) : t + 1])
            if at >= 0 and at + min(t + 1, 30) < len(whole):
                row = torch.full((len(chars),), math.log(0.01 / (len(chars) - 1)))
                row[chars.index(whole[at + min(t + 1, 30)])] = math.log(0.99)
                out[t] = row
        return out

    return char_log_probs


def _peeks(fn):
    """Row t 'predicts' the true character t + 1 (a model that reads ahead)."""

    def char_log_probs(text):
        _, _, chars = lc.shakespeare_split()
        ids = torch.tensor([chars.index(c) for c in text[1:]] + [0])
        return torch.log_softmax(10.0 * nn.functional.one_hot(ids, len(chars)).float(), dim=-1)

    return char_log_probs


MUTATIONS = [
    # -- batchify
    Mutation("batchify: rows read column-wise", "batchify",
             edits("batchify", (XLINE, "x = ids[: B * L].view(L, B).T[:, : K * T]"),
                   (YLINE, "y = ids[1 : B * L + 1].view(L, B).T[:, : K * T]")), "interleave"),
    text("batchify: targets not shifted", YLINE, "y = ids[: B * L].view(B, L)[:, : K * T]",
         "batchify", "shifted by one"),
    text("batchify: targets shifted by two", YLINE, "y = ids[2 : B * L + 2].view(B, L)[:, : K * T]",
         "batchify", "shifted by one"),
    Mutation("batchify: (B, K, T)", "batchify",
             edits("batchify", (XT, "X = x.reshape(B, K, T)"), (YT, "Y = y.reshape(B, K, T)")), "has shape"),
    text("batchify: X and Y swapped", "return X, Y", "return Y, X", "batchify", "X holds the targets"),
    Mutation("batchify: chunks in reverse order", "batchify",
             edits("batchify", (XT, XT + ".flip(0)"), (YT, YT + ".flip(0)")), "X[k, b, t] is character"),
    text("batchify: incomplete chunk kept", "K = L // T\n", "K = -(-L // T)\n", "batchify", "raised RuntimeError"),
    text("batchify: float ids", "return X, Y", "return X.float(), Y.float()", "batchify", "expected integer"),
    text("batchify: targets from the next row", YLINE,
         "y = torch.roll(x, -1, dims=1)", "batchify", "differs from the reference"),
    text("batchify: rows of n // B", "L = (len(ids) - 1) // B", "L = len(ids) // B", "batchify",
         "a multiple of B"),
    text("batchify: int32 ids", "return X, Y", "return X.int(), Y.int()", "batchify", "torch.long (int64)"),
    Mutation("batchify: rows of K T characters", "batchify",
             edits("batchify", (XLINE, "x = ids[: B * K * T].view(B, K * T)"),
                   (YLINE, "y = ids[1 : B * K * T + 1].view(B, K * T)")), "Each row holds K T"),
    Mutation("batchify: reshaped to (K, B, T) without the transpose", "batchify",
             edits("batchify", (XT, "X = x.reshape(K, B, T)"), (YT, "Y = y.reshape(K, B, T)")), "mixes the rows"),
    # -- train_step
    Mutation("train_step: state never detached", "train_steps_from",
             edits("train_steps_from", (DETACH_IN, ""), ("return loss.item(), detach(state)", "return loss.item(), state")),
             "detach"),
    Mutation("train_step: retain_graph instead of detach", "train_steps_from",
             edits("train_steps_from", (DETACH_IN, ""), ("loss.backward()", "loss.backward(retain_graph=True)"),
                   ("return loss.item(), detach(state)", "return loss.item(), state")), "detach"),
    text("train_step: state reset every batch", FWD, "logits, state = model(x, None)", "train_steps_from",
         "reset at every chunk"),
    text("train_step: no clipping", CLIP, "pass", "train_steps_from", "not clipped"),
    text("train_step: clipping value by value", CLIP, "nn.utils.clip_grad_value_(model.parameters(), clip)",
         "train_steps_from", "clipped to [-clip, clip]"),
    text("train_step: gradients never zeroed", "optimizer.zero_grad()\n", "\n", "train_steps_from", "never zeroed"),
    text("train_step: summed loss", LOSS, LOSS[:-1] + ', reduction="sum")', "train_steps_from", "summed"),
    Mutation("train_step: clipped after the step", "train_steps_from",
             edits("train_steps_from", (CLIP + "\n    " + STEP, STEP + "\n    " + CLIP)), "not clipped"),
    Mutation("train_step: zero_grad between backward and step", "train_steps_from",
             edits("train_steps_from", ("optimizer.zero_grad()\n    loss.backward()",
                                        "loss.backward()\n    optimizer.zero_grad()")), "did not change"),
    text("train_step: loss of the next batch's start", "return loss.item(), detach(state)",
         "return loss.item() * 0.5, detach(state)", "train_steps_from", "losses differ"),
    text("train_step: view(-1) of a chunk", LOSS, "loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))",
         "train_steps_from", "not .view(-1)"),
    # -- validation_loss
    text("val: dropout left on", "model.eval()\n    total", "total", "validation_loss_from", "Dropout is still active"),
    text("val: state reset every chunk", VFWD, "logits, state = model(x, None)", "validation_loss_from",
         "reset at every chunk"),
    text("val: bits", "loss = total / count", "loss = total / count / math.log(2)", "validation_loss_from", "bits"),
    text("val: summed", "loss = total / count", "loss = total", "validation_loss_from", "summed loss"),
    text("val: divided by the rows", "count += y.numel()", "count += len(y)", "validation_loss_from", "times"),
    text("val: divided by the stream's length", "loss = total / count", "loss = total / len(ids)",
         "validation_loss_from", "length of the stream"),
    text("val: last chunk only", VSUM, "total = len(X) * F.cross_entropy(", "validation_loss_from",
         "differs from the reference"),
    text("val: batch size and length swapped", "X, Y = batchify(ids, batch_size, seq_len)\n    model.eval()",
         "X, Y = batchify(ids, seq_len, batch_size)\n    model.eval()", "validation_loss_from", "differs"),
    # -- sampling_probs
    Mutation("probs: divided by T after the softmax", "sampling_probs",
             edits("sampling_probs", (Z, "z = logits"), (SOFT, "probs = torch.softmax(z, dim=-1) / temperature")),
             "after the softmax"),
    Mutation("probs: temperature after the softmax, renormalised", "sampling_probs",
             edits("sampling_probs", (Z, "z = logits"),
                   (SOFT, "probs = torch.softmax(z, dim=-1) / temperature\n    probs = probs / probs.sum(-1, keepdim=True)")),
             "no effect"),
    text("probs: multiplied by T", Z, "z = logits * temperature", "sampling_probs", "multiplied"),
    text("probs: k + 1 kept", KTH, KTH.replace("top_k,", "top_k + 1,"), "sampling_probs", "k + 1"),
    text("probs: k - 1 kept", KTH, KTH.replace("top_k,", "max(top_k - 1, 1),"), "sampling_probs", "k - 1"),
    text("probs: others set to 0", MASK, "z = z.masked_fill(z < kth, 0.0)", "sampling_probs", "set to 0"),
    text("probs: not renormalised", SOFT,
         "probs = torch.softmax(logits / temperature, dim=-1) * (z > float('-inf'))", "sampling_probs", "Renormalise"),
    text("probs: softmax over the rows", SOFT, "probs = torch.softmax(z, dim=0)", "sampling_probs",
         ("sum to", "has shape")),
    text("probs: top_k ignored", "if top_k is not None:", "if False:", "sampling_probs", "differs from the reference"),
    text("probs: softmax over dim 1", SOFT, "probs = torch.softmax(z, dim=1)", "sampling_probs", "single row"),
    text("probs: top k over dim 1", KTH, "kth = torch.topk(z, top_k, dim=1).values[:, -1:]", "sampling_probs",
         "single row"),
    # -- sample_ids
    text("sample: argmax, never sampled", DRAW, "nxt = p.argmax(-1, keepdim=True)", "generate_from",
         "same text for seeds"),
    text("sample: state not carried", FEED, "logits, state = model(nxt[None])", "generate_from", "zero state"),
    text("sample: prompt's last character only", PROMPT, "logits, state = model(prompt_ids[-1:][None])",
         "generate_from", "last character of the prompt"),
    text("sample: no generator", DRAW, "nxt = torch.multinomial(p, 1)", "generate_from", "same seed"),
    text("sample: prompt included", "ids = torch.tensor(out, dtype=torch.long)",
         "ids = torch.cat([prompt_ids, torch.tensor(out, dtype=torch.long)])", "generate_from", "has shape"),
    text("sample: top_k ignored", P, "p = sampling_probs(logits[0, -1], temperature)", "generate_from",
         ("top_k=1", "not among")),
    text("sample: first position's logits", P, "p = sampling_probs(logits[0, 0], temperature, top_k)",
         "generate_from", "top_k=1"),
    text("sample: float ids", "ids = torch.tensor(out, dtype=torch.long)", "ids = torch.tensor(out, dtype=torch.float)",
         "generate_from", "expected integer"),
    text("sample: int32 ids", "ids = torch.tensor(out, dtype=torch.long)", "ids = torch.tensor(out, dtype=torch.int32)",
         "generate_from", "torch.long (int64)"),
    text("sample: temperature ignored", P, "p = sampling_probs(logits[0, -1], 1.0, top_k)", "generate_from",
         "T ignored"),
    text("sample: temperature applied twice", P, "p = sampling_probs(logits[0, -1] / temperature, temperature, top_k)",
         "generate_from", "do not divide them"),
    Mutation("sample: a new generator at every step", "generate_from",
             edits("generate_from", ("generator = torch.Generator().manual_seed(seed)\n", "\n"),
                   (DRAW, "nxt = torch.multinomial(p, 1, generator=torch.Generator().manual_seed(seed))")),
             "independent"),
    # -- char_log_probs (the solution's function on the bigram stand-in)
    text("log_probs: probabilities", LOGP, "log_probs = F.softmax(logits[0], dim=-1)", "char_log_probs",
         "They are probabilities"),
    text("log_probs: raw logits", LOGP, "log_probs = logits[0]", "char_log_probs", "raw scores"),
    text("log_probs: one row short", LOGP, "log_probs = F.log_softmax(logits[0, :-1], dim=-1)", "char_log_probs",
         "has shape"),
    text("log_probs: one column more", LOGP, "log_probs = F.log_softmax(F.pad(logits[0], (0, 1)), dim=-1)",
         "char_log_probs", "has shape"),
    barred("log_probs: rows one position late", LOGP,
           "log_probs = F.log_softmax(torch.cat([torch.zeros_like(logits[0, :1]), logits[0, :-1]]), dim=-1)",
           "scores the character at t"),
    barred("log_probs: uniform", LOGP, "log_probs = F.log_softmax(0 * logits[0], dim=-1)", "above"),
    text("log_probs: softmax over positions", LOGP, "log_probs = F.log_softmax(logits[0], dim=0)",
         "char_log_probs", "not log-probabilities"),
    text("log_probs: dropout left on", "model.eval()\n    with torch.no_grad():\n        logits, _ = model(encode",
         "with torch.no_grad():\n        logits, _ = model(encode", "char_log_probs", "eval mode"),
    Mutation("log_probs: reads ahead", "char_log_probs", wrap("char_log_probs", _peeks), "changed when only"),
    Mutation("log_probs: looks the text up in the data file", "char_log_probs with a bar",
             wrap("char_log_probs", _lookup), "above"),
    Mutation("log_probs: NaN", "char_log_probs", wrap("char_log_probs", returns(lambda t: t * float("nan"))),
             "non-finite"),
    # -- inputs changed in place
    Mutation("batchify: changes its input", "batchify", wrap("batchify", changes_tensor_input), "in place"),
    Mutation("train_step: changes its input", "train_steps_from", wrap("train_steps_from", changes_tensor_input),
             "in place"),
    Mutation("probs: changes its input", "sampling_probs", wrap("sampling_probs", changes_tensor_input), "in place"),
    Mutation("sample: changes its input", "generate_from", wrap("generate_from", changes_tensor_input), "in place"),
    *standard([n for n in CHECKS if n != "char_log_probs with a bar"]),
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
    """Every check_* call of the test cells names a function of utils.checks.lab04 and
    passes arguments its signature accepts; every exercise has a test with hidden tests."""
    assert {f"test_{name}" for name in EXERCISES} == set(CELLS)
    assert check_calls(CELLS, lc) >= 16
    assert (
        'source="unseen"' in CELLS["test_char_log_probs"]
        and "max_loss=pick(" in CELLS["test_char_log_probs"]
    )


@pytest.mark.parametrize("gid", [f"test_{name}" for name in EXERCISES if name != "char_log_probs"])
def test_the_solution_passes_the_notebook_test_cells(gid):
    """The test cells as the grader runs them, hidden tests included."""
    out = run_test_cell(CELLS[gid], SOL, lc, gid)
    assert out and all(line.startswith("[PASS]") for line in out), out


def test_grade_cells_rules_and_the_written_answer():
    rules = NB.metadata["workbook"]
    assert rules["forbid"] == [] and rules["kernel_functions"] == ["char_log_probs"]
    answers = [c for c in NB.cells if c.cell_type == "markdown" and is_exercise(c)]
    assert len(answers) == 1 and nbgrader_meta(answers[0])["points"] == 2
    points = sum(
        nbgrader_meta(c).get("points", 0) for c in NB.cells if nbgrader_meta(c).get("grade")
    )
    assert points == 16 and "16 points in all" in NB.cells[1].source


def test_solution_notebook_prints_its_metrics():
    text = "".join(o.get("text", "") for c in NB.cells if c.cell_type == "code" for o in c.outputs)
    loss = float(re.search(r"\[metric\] lab04 validation loss \(nats/char\): (\S+)", text).group(1))
    bits = float(re.search(r"\[metric\] lab04 validation bits/char: (\S+)", text).group(1))
    assert abs(bits - loss / math.log(2)) < 1e-3
    assert loss < 1.6  # stored outputs come from a full run, which passes the hidden test's bar
    assert text.count("[PASS]") >= 6 and "[FAIL]" not in text


def test_the_hidden_speeches_are_shakespeare_outside_the_file():
    """The hidden test's text: eight speeches in the lab's vocabulary, none of whose lines
    occurs in Tiny Shakespeare (so no lookup in the data file can predict them)."""
    train, val, chars = lc.shakespeare_split()
    speeches = lc.unseen_speeches()
    assert len(speeches) == 8 and all(len(s) > 200 for s in speeches)
    assert set("".join(speeches)) <= set(chars)
    for speech in speeches:
        speaker, *lines = speech.strip().split("\n")
        assert speaker.endswith(":") and speaker[:-1].isupper(), speaker
        assert not any(line in train + val for line in lines if len(line) > 20), speaker
