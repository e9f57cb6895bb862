"""The checks of Lab 6 accept the solution and reject broken code with the right hint.

The correct functions come from the solution notebook's exercise cells; each broken
variant is a small text mutation of that code, or a wrapper that breaks what a function
returns (tests/labs/harness.py runs them all). ``anomaly_scores`` and ``detect`` read the
model the notebook trained, so here they are played by a stand-in that needs no training
(the distance to the mean normal training beat of split 0), and their mutations wrap it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re

import nbformat
import numpy as np
import pytest
import torch

from tests.factories import ROOT
from tests.labs.harness import (
    GARBAGE,
    Mutation,
    assert_accepts,
    garbage,
    load_solution,
    parametrize,
    run_mutation,
    text,
    wrap,
)
from utils.checks import CheckError
from utils.checks import lab06 as lc
from utils.checks.lab06.split import VAL_SIZE
from utils.data import load_dataset
from utils.instructor.notebook import grade_id, is_exercise, is_test, nbgrader_meta

SOLUTION_PATH = ROOT / "solutions" / "lab06_ecg_anomalies.ipynb"
NB = nbformat.read(SOLUTION_PATH, as_version=4)

CHECKS = {
    "split_beats": lc.check_split_beats,
    "standardize": lc.check_standardize,
    "autoencoder_forward": lc.check_autoencoder_forward,
    "reconstruction_error": lc.check_reconstruction_error,
    "precision_recall_f1": lc.check_precision_recall_f1,
    "choose_threshold": lc.check_choose_threshold,
}
KERNEL_CHECKS = {
    "anomaly_scores": lc.check_anomaly_scores,
    "anomaly_scores on the test part": functools.partial(
        lc.check_anomaly_scores, part="test", min_auc=0.93
    ),
    "detect": lc.check_detect,
    "detect on the test part": functools.partial(lc.check_detect, part="test", min_f1=0.85),
}


def _constants() -> str:
    """The lab's constants cell (NORMAL, TEST_SIZE, VAL_SIZE), for the preamble."""
    return next(c.source for c in NB.cells if c.source.startswith("NORMAL = 1"))


PREAMBLE = (
    "import numpy as np\nimport torch\nfrom torch import nn\n"
    "from sklearn.model_selection import train_test_split\n\n" + _constants()
)
SOL = load_solution(SOLUTION_PATH, preamble=PREAMBLE)


# ------------------------------------------------------------------ stand-ins of the trained model


def _stand_ins() -> dict:
    """Correct kernel functions without training: the squared distance to the mean normal
    training beat of split 0, and a threshold that maximises F1 on its validation part."""
    X, y = load_dataset("ecg5000")["train"]
    train_idx, val_idx, _ = SOL["split_beats"](y, 0)
    X_fit = X[train_idx]
    m, s = X_fit.mean(), X_fit.std()
    mean_beat = ((X_fit - m) / s).mean(axis=0)

    def anomaly_scores(beats):
        return (((beats - m) / s - mean_beat) ** 2).mean(axis=1)

    tau = SOL["choose_threshold"](anomaly_scores(X[val_idx]), (y[val_idx] != 1).astype(int))

    def detect(beats):
        return anomaly_scores(beats) > tau

    return {"anomaly_scores": anomaly_scores, "detect": detect, "tau": tau, "m": m, "s": s,
            "mean_beat": mean_beat, "all_mean": ((X - m) / s).mean(axis=0)}  # fmt: skip


class StandIns(dict):
    """The kernel functions by check name, as a solution for :func:`run_mutation`."""

    accepted: set


KERNEL = _stand_ins()
STAND_INS = StandIns({name: KERNEL[name.split(" ")[0]] for name in KERNEL_CHECKS})
STAND_INS.accepted = set()


def kernel(check: str, wrapper) -> callable:
    return lambda stand_ins: wrapper(stand_ins[check])


# ------------------------------------------------------------------ the correct code passes


def test_solution_defines_every_exercise():
    assert set(CHECKS) <= set(SOL)
    assert {"anomaly_scores", "detect", "LSTMAutoencoder"} <= set(SOL)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution(name):
    assert_accepts(CHECKS[name], SOL[name], name)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution_on_other_inputs(name):
    sizes = {
        "split_beats": dict(seed=3),
        "standardize": dict(N=2, T=5, seed=4),
        "autoencoder_forward": dict(N=1, T=3, H=2, seed=5),
        "reconstruction_error": dict(N=2, T=11, seed=6),
        "precision_recall_f1": dict(seed=7),
        "choose_threshold": dict(seed=8),
    }[name]
    assert_accepts(CHECKS[name], SOL[name], name, **sizes)


@pytest.mark.parametrize("name", KERNEL_CHECKS)
def test_kernel_checks_accept_the_stand_in(name):
    assert_accepts(KERNEL_CHECKS[name], STAND_INS[name], name.split(" ")[0])


def test_standardize_accepts_either_standard_deviation():
    assert_accepts(lc.check_standardize, lambda X_fit, X: (X - X_fit.mean()) / X_fit.std(ddof=1))


def test_the_check_modules_hold_no_exercise():
    """No function of the check package has an exercise's name; modules stay short."""
    exercises = set(CHECKS) | {"anomaly_scores", "detect", "LSTMAutoencoder"}
    for info in pkgutil.iter_modules(lc.__path__):
        module = importlib.import_module(f"{lc.__name__}.{info.name}")
        for name, value in vars(module).items():
            if callable(value) and getattr(value, "__module__", None) == module.__name__:
                assert name not in exercises, name
        path = ROOT / "utils" / "checks" / "lab06" / f"{info.name}.py"
        assert len(path.read_text().splitlines()) < 250, path


def test_the_test_rule_is_the_one_the_lab_states():
    """The checks' test part (seed 0) is the solution's: the grader's held-out beats."""
    _, y = load_dataset("ecg5000")["train"]
    for seed in (0, 1):
        np.testing.assert_array_equal(SOL["split_beats"](y, seed)[2], lc.test_part(y, seed))
    assert VAL_SIZE == SOL.namespace["VAL_SIZE"] and lc.TEST_SIZE == SOL.namespace["TEST_SIZE"]


# ------------------------------------------------------------------ broken code is rejected


VAL_SPLIT = "rest, test_size=VAL_SIZE, stratify=y[rest] != NORMAL, random_state=seed"
TEST_SPLIT = "train_test_split(idx, test_size=TEST_SIZE, stratify=y, random_state=seed)"
TRAIN = "train_idx = fit[y[fit] == NORMAL]"
STD = "return (X - X_fit.mean()) / X_fit.std()"
ENC = "_, (h_n, _) = self.encoder(X)"
Z = "z = h_n[-1]  # h_T: (N, H)"
DEC = "states, _ = self.decoder(z.unsqueeze(1).expand(N, T, z.shape[1]))"
OUT = "X_hat = self.output(states)"
ERR = "return ((X - X_hat) ** 2).mean(axis=(1, 2))"
PREC = "precision = tp / (tp + fp) if tp + fp else 0.0"
F1 = "f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0"
CAND = "f1s = [precision_recall_f1(y, scores > tau)[2] for tau in candidates]"
PICK = "tau = candidates[int(np.argmax(f1s))]"

MUTATIONS = [
    # -- the split
    text("split: anomalies in the training part", TRAIN, "train_idx = fit", "split_beats",
         "anomalous beat"),
    text("split: test part not stratified", TEST_SPLIT,
         "train_test_split(idx, test_size=TEST_SIZE, random_state=seed)", "split_beats",
         "not stratified"),
    text("split: test part stratified on normal/anomaly", TEST_SPLIT,
         "train_test_split(idx, test_size=TEST_SIZE, stratify=y != 1, random_state=seed)",
         "split_beats", "stratified on normal/anomaly only"),
    text("split: test part ignores the seed", TEST_SPLIT,
         "train_test_split(idx, test_size=TEST_SIZE, stratify=y, random_state=0)", "split_beats",
         "does not use the seed"),
    text("split: test part of the wrong size", TEST_SPLIT,
         "train_test_split(idx, test_size=0.2, stratify=y, random_state=seed)", "split_beats",
         "test_idx has 100 beats, expected 150"),
    text("split: validation drawn from all beats (overlaps the test part)", VAL_SPLIT,
         "idx, test_size=VAL_SIZE * 0.7, stratify=y != NORMAL, random_state=seed", "split_beats",
         "shares beats with the test part"),
    text("split: training normals taken from the validation part too", TRAIN,
         "train_idx = rest[y[rest] == NORMAL]", "split_beats", "share beats"),
    text("split: validation part normal-only", TRAIN,
         TRAIN + "\n    val_idx = val_idx[y[val_idx] == NORMAL]", "split_beats",
         "keeps its anomalies"),
    text("split: validation not stratified", VAL_SPLIT,
         "rest, test_size=VAL_SIZE, random_state=seed + 1", "split_beats", "anomalies, expected"),
    text("split: normal beats left out of training", TRAIN,
         "train_idx = fit[y[fit] == NORMAL][:50]", "split_beats", "are not in train_idx"),
    text("split: validation not repeatable", VAL_SPLIT,
         "rest, test_size=VAL_SIZE, stratify=y[rest] != NORMAL, random_state=None", "split_beats",
         "same seed gave different splits"),
    # -- standardisation
    text("standardize: statistics of the beats transformed", STD,
         "return (X - X.mean()) / X.std()", "standardize", "come from X"),
    text("standardize: statistics fitted on all data", STD,
         "both = np.concatenate([X_fit, X])\n    return (X - both.mean()) / both.std()",
         "standardize", "fit them on X_fit, the training beats, only"),
    text("standardize: per time step", STD,
         "return (X - X_fit.mean(axis=0)) / X_fit.std(axis=0)", "standardize", "per time step"),
    text("standardize: not divided by s", STD, "return X - X_fit.mean()", "standardize",
         "not divided by the standard deviation"),
    text("standardize: divided by the variance", STD, "return (X - X_fit.mean()) / X_fit.var()",
         "standardize", "divided by the variance"),
    text("standardize: mean only from X_fit", STD, "return (X - X_fit.mean()) / X.std()",
         "standardize", "differs from the reference"),
    # -- the autoencoder
    text("autoencoder: code h_1", Z, "z = self.encoder(X)[0][:, 0]", "autoencoder_forward",
         "first state h_1"),
    text("autoencoder: code c_T", ENC, "_, (_, h_n) = self.encoder(X)", "autoencoder_forward",
         "cell state c_T"),
    text("autoencoder: ignores its input", Z, "z = 0 * h_n[-1]", "autoencoder_forward",
         "does not depend on the input"),
    text("autoencoder: decoder reads zeros from (h_T, c_T)", ENC + "\n        " + Z + "\n        " + DEC,
         "_, (h_n, c_n) = self.encoder(X)\n        z = h_n[-1]\n        "
         "states, _ = self.decoder(torch.zeros(N, T, z.shape[1], dtype=X.dtype), (h_n, c_n))",
         "autoencoder_forward", "reads zeros and starts from (h_T, c_T)"),
    text("autoencoder: decoder starts from (h_T, c_T)", ENC + "\n        " + Z + "\n        " + DEC,
         "_, (h_n, c_n) = self.encoder(X)\n        z = h_n[-1]\n        "
         "states, _ = self.decoder(z.unsqueeze(1).expand(N, T, z.shape[1]), (h_n, c_n))",
         "autoencoder_forward", "starts from the encoder's (h_T, c_T)"),
    text("autoencoder: reversed in time", OUT, "X_hat = self.output(states).flip(1)",
         "autoencoder_forward", "reversed in time"),
    text("autoencoder: no output layer", OUT, "X_hat = states", "autoencoder_forward",
         "output layer"),
    text("autoencoder: time first", DEC,
         "states, _ = self.decoder(z.unsqueeze(0).expand(T, N, z.shape[1]))",
         "autoencoder_forward", "batch_first"),
    text("autoencoder: code not repeated", DEC, "states, _ = self.decoder(z.unsqueeze(1))",
         "autoencoder_forward", "repeat the code h_T over the T steps"),
    # -- the score
    text("error: summed over time", ERR, "return ((X - X_hat) ** 2).sum(axis=(1, 2))",
         "reconstruction_error", "sum over time"),
    text("error: averaged over the beats", ERR, "return ((X - X_hat) ** 2).mean(axis=(0, 2))",
         "reconstruction_error", "averaged over the beats (axis 0)"),
    text("error: not averaged over time", ERR, "return ((X - X_hat) ** 2).mean(axis=2)",
         "reconstruction_error", "not averaged over time"),
    text("error: averaged over everything", ERR, "return ((X - X_hat) ** 2).mean()",
         "reconstruction_error", "one number: the score is per beat"),
    text("error: absolute", ERR, "return np.abs(X - X_hat).mean(axis=(1, 2))",
         "reconstruction_error", "mean absolute error"),
    text("error: root", ERR, "return np.sqrt(((X - X_hat) ** 2).mean(axis=(1, 2)))",
         "reconstruction_error", "root of the mean squared error"),
    text("error: averaged then squared", ERR, "return (X - X_hat).mean(axis=(1, 2)) ** 2",
         "reconstruction_error", "averaged before it is squared"),
    # -- precision, recall, F1
    text("prf: precision and recall swapped", "return float(precision), float(recall), float(f1)",
         "return float(recall), float(precision), float(f1)", "precision_recall_f1", "swapped"),
    text("prf: F1 as the arithmetic mean", F1, "f1 = (precision + recall) / 2",
         "precision_recall_f1", "harmonic mean"),
    text("prf: F1 without the zero-division guard", F1 + "\n", "f1 = 2 * precision * recall / "
         "(precision + recall) if precision + recall else np.nan\n", "precision_recall_f1",
         "No beat is flagged"),
    text("prf: precision 0/0", PREC, "precision = np.float64(tp) / (tp + fp)", "precision_recall_f1",
         "No beat is flagged"),
    text("prf: normal beats positive", "tp = np.sum(y_true & y_pred)",
         "y_true, y_pred = ~y_true, ~y_pred\n    tp = np.sum(y_true & y_pred)", "precision_recall_f1",
         "normal beats are the positive class"),
    text("prf: precision is the accuracy", PREC, "precision = np.mean(y_true == y_pred)",
         "precision_recall_f1", "Precision is the accuracy"),
    text("prf: false negatives miscounted", "fn = np.sum(y_true & ~y_pred)",
         "fn = np.sum(~y_true & ~y_pred)", "precision_recall_f1", "differ from scikit-learn"),
    # -- the threshold
    text("threshold: flagged with >= but returned for >", CAND + "\n    " + PICK,
         "f1s = [precision_recall_f1(y, scores >= tau)[2] for tau in s]\n    "
         "tau = s[int(np.argmax(f1s))]", "choose_threshold", "does not flag"),
    text("threshold: a percentile of the normal scores (by eye)", PICK,
         "tau = np.quantile(scores[y == 0], 0.95)", "choose_threshold", "percentile of the normal"),
    text("threshold: the largest normal score", PICK, "tau = scores[y == 0].max()",
         "choose_threshold", "percentile of the normal"),
    text("threshold: maximises accuracy", CAND,
         "f1s = [np.mean((scores > tau) == y) for tau in candidates]", "choose_threshold",
         "maximises the accuracy"),
    text("threshold: argmin", PICK, "tau = candidates[int(np.argmin(f1s))]", "choose_threshold",
         "never from the test part"),
    text("threshold: returns the best F1", PICK, "tau = max(f1s)", "choose_threshold",
         "never from the test part"),
    text("threshold: a fixed value", PICK, "tau = 1.5", "choose_threshold", "F1 ="),
]  # fmt: skip


def _picked_on_other_data(fn):
    """The threshold of other beats (say the test part's) whatever validation scores come."""
    rng = np.random.default_rng(99)
    other = (
        np.r_[rng.normal(1.0, 0.3, 50), rng.normal(1.6, 0.3, 50)],
        np.r_[np.zeros(50), np.ones(50)],
    )

    def wrapper(scores, y):
        return fn(*other)

    return wrapper


def _trained_on_everything(fn):
    """Scores of a stand-in fitted on every beat, anomalies included."""

    def wrapper(beats):
        return (((beats - KERNEL["m"]) / KERNEL["s"] - KERNEL["all_mean"]) ** 2).mean(axis=1)

    return wrapper


def _changes_X(fn):
    def wrapper(X, weights):
        out = fn(X, weights)
        X.mul_(0.5)
        return out

    return wrapper


def _forward(body):
    """autoencoder_forward with the LSTMAutoencoder's forward replaced by ``body``."""

    def build(solution):
        class Variant(solution["LSTMAutoencoder"]):
            forward = body

        def autoencoder_forward(X, weights):
            model = Variant(hidden_size=weights["output.weight"].shape[1]).to(X.dtype)
            model.load_state_dict(weights)
            with torch.no_grad():
                return model(X)

        return autoencoder_forward

    return build


def _coded(self, X):
    """The code h_T repeated T times, decoded: the decoder's states (N, T, H)."""
    N, T, _ = X.shape
    _, (h_n, _) = self.encoder(X)
    return self.decoder(h_n[-1].unsqueeze(1).expand(N, T, h_n.shape[-1]))[0]


def _all_states(self, X):
    return self.output(self.decoder(self.encoder(X)[0])[0])


def _mixed_repeat(self, X):
    N, T, _ = X.shape
    z = self.encoder(X)[1][0][-1]
    return self.output(self.decoder(z.repeat(T, 1).view(N, T, -1))[0])


def _prf_macro(fn):
    def wrapper(y, p):
        ours, theirs = fn(y, p), fn(1 - np.asarray(y), 1 - np.asarray(p))
        return tuple((a + b) / 2 for a, b in zip(ours, theirs))

    return wrapper


MUTATIONS += [
    text("split: returns the labels", "return np.sort(train_idx), np.sort(val_idx), np.sort(test_idx)",
         "return y[train_idx], y[val_idx], y[test_idx]", "split_beats", "not their labels"),
    text("split: training and validation swapped", "return np.sort(train_idx), np.sort(val_idx)",
         "return np.sort(val_idx), np.sort(train_idx)", "split_beats", "look swapped"),
    text("standardize: each beat by its own statistics", STD,
         "return (X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True)", "standardize",
         "its own statistics"),
    text("standardize: min-max", STD, "return (X - X_fit.min()) / (X_fit.max() - X_fit.min())",
         "standardize", "min-max"),
    Mutation("autoencoder: returns its input", "autoencoder_forward",
             _forward(lambda self, X: X.clone()), "X_hat is X itself"),
    Mutation("autoencoder: input added to the output", "autoencoder_forward",
             _forward(lambda self, X: X + self.output(_coded(self, X))), "X plus the decoder"),
    Mutation("autoencoder: decoder reads every encoder state", "autoencoder_forward",
             _forward(_all_states), "no bottleneck"),
    Mutation("autoencoder: z.repeat(T, 1) mixes the beats", "autoencoder_forward",
             _forward(_mixed_repeat), "mixes the beats"),
    text("autoencoder: encoder reads the beat reversed", ENC, "_, (h_n, _) = self.encoder(X.flip(1))",
         "autoencoder_forward", "reversed in time: feed"),
    text("error: max over time", ERR, "return ((X - X_hat) ** 2).max(axis=(1, 2))",
         "reconstruction_error", "largest squared error"),
    text("error: median over time", ERR, "return np.median((X - X_hat) ** 2, axis=(1, 2))",
         "reconstruction_error", "median over time"),
    Mutation("prf: macro average over both classes", "precision_recall_f1",
             wrap("precision_recall_f1", _prf_macro), "macro"),
    text("prf: precision 1 when nothing is flagged", PREC,
         "precision = tp / (tp + fp) if tp + fp else 1.0", "precision_recall_f1", "not 1"),
    text("prf: integer division", PREC, "precision = tp // (tp + fp) if tp + fp else 0.0",
         "precision_recall_f1", "integer division"),
    text("prf: F2 instead of F1", F1, "f1 = 5 * precision * recall / (4 * precision + recall) "
         "if precision + recall else 0.0", "precision_recall_f1", "Precision and recall are right"),
    text("prf: recall 0/0 without a guard", "recall = tp / (tp + fn) if tp + fn else 0.0",
         "recall = tp / (tp + fn)", "precision_recall_f1", "so recall is 0/0"),
    text("prf: recall 1 when there is no anomaly", "recall = tp / (tp + fn) if tp + fn else 0.0",
         "recall = tp / (tp + fn) if tp + fn else 1.0", "precision_recall_f1", "not 1"),
    text("threshold: a grid of 100 thresholds", "candidates = np.r_[s[0] - 1.0, (s[:-1] + s[1:]) / 2]",
         "candidates = np.linspace(s[0], s[-1], 100)", "choose_threshold", "too coarse"),
    text("threshold: returns the index of the best candidate", PICK,
         "tau = int(np.argmax(f1s))", "choose_threshold", "looks like a position"),
    text("threshold: labels reversed", CAND,
         "f1s = [precision_recall_f1(1 - y, scores > tau)[2] for tau in candidates]",
         "choose_threshold", "labels reversed"),
    text("threshold: just below the lowest anomaly", PICK, "tau = scores[y == 1].min() - 1e-9",
         "choose_threshold", "just below the lowest anomaly"),
    Mutation("threshold: picked on other data (the test part)", "choose_threshold",
             wrap("choose_threshold", _picked_on_other_data), "never from the test part"),
    Mutation("autoencoder: changes X in place", "autoencoder_forward",
             wrap("autoencoder_forward", _changes_X), "in place"),
]  # fmt: skip


def _looked_up(beats):
    """A detector that finds each beat in the data file and returns its label."""
    X, y = load_dataset("ecg5000")["train"]
    table = {x.tobytes(): float(c != 1) for x, c in zip(X, y)}
    return np.array([table.get(np.asarray(b, np.float32).tobytes(), 0.0) for b in beats])


KERNEL_MUTATIONS = [
    Mutation("scores: standardised per time step with the batch's own statistics", "anomaly_scores",
             kernel("anomaly_scores", lambda f: lambda b: f((b - b.mean(0)) / b.std(0) * KERNEL["s"] + KERNEL["m"])),
             "when it comes with other beats"),
    Mutation("scores: per sample, not averaged over time", "anomaly_scores",
             kernel("anomaly_scores", lambda f: lambda b: ((b - KERNEL["m"]) / KERNEL["s"] - KERNEL["mean_beat"]) ** 2),
             "one value per sample"),
    Mutation("scores: averaged over the beats", "anomaly_scores",
             kernel("anomaly_scores", lambda f: lambda b: (((b - KERNEL["m"]) / KERNEL["s"] - KERNEL["mean_beat"]) ** 2).mean(0)),
             ("one value per time step", "has shape")),
    Mutation("scores: reversed", "anomaly_scores on the test part",
             kernel("anomaly_scores", lambda f: lambda b: -f(b)), "reversed"),
    Mutation("scores: random", "anomaly_scores on the test part",
             kernel("anomaly_scores", lambda f: lambda b: b @ np.random.default_rng(0).normal(size=b.shape[1])),
             "below 0.93"),
    Mutation("scores: fitted on anomalies too", "anomaly_scores on the test part",
             kernel("anomaly_scores", _trained_on_everything), "below 0.93"),
    Mutation("detect: returns the scores", "detect",
             kernel("detect", lambda f: lambda b: KERNEL["anomaly_scores"](b)), "other than True/False"),
    Mutation("detect: threshold from the batch", "detect",
             kernel("detect", lambda f: lambda b: KERNEL["anomaly_scores"](b) > np.median(KERNEL["anomaly_scores"](b))),
             "when it comes with other beats"),
    Mutation("detect: flags reversed", "detect on the test part",
             kernel("detect", lambda f: lambda b: ~f(b)), "below 0.85"),
    Mutation("detect: threshold far too low", "detect on the test part",
             kernel("detect", lambda f: lambda b: KERNEL["anomaly_scores"](b) > 0), "flags every beat"),
    Mutation("detect: threshold too low", "detect on the test part",
             kernel("detect", lambda f: lambda b: KERNEL["anomaly_scores"](b) > np.float64(KERNEL["tau"]) / 3),
             "below 0.85"),
    Mutation("detect: always normal", "detect",
             kernel("detect", lambda f: lambda b: np.zeros(len(b), bool)), "flags no beat"),
    Mutation("detect: always normal, hidden test", "detect on the test part",
             kernel("detect", lambda f: lambda b: np.zeros(len(b), bool)), "flags no beat"),
    Mutation("detect: returns text", "detect",
             kernel("detect", lambda f: lambda b: np.where(f(b), "anomaly", "normal")), "not text"),
    Mutation("scores: constant", "anomaly_scores",
             kernel("anomaly_scores", lambda f: lambda b: np.ones(len(b))), "the same score"),
    Mutation("scores: labels looked up in the data file", "anomaly_scores on the test part",
             kernel("anomaly_scores", lambda f: _looked_up), ("the same score", "below 0.93")),
]  # fmt: skip


def _nan(fn):
    return lambda *args: np.full(np.shape(fn(*args)), np.nan)


def _extra_axis(fn):
    def wrapper(*args):
        out = np.asarray(fn(*args))
        return out[..., None] if out.ndim else np.array([out, out])

    return wrapper


SINGLE_GARBAGE = [  # the harness's broken variants of a function that returns one value
    (gid, wrapper, words, raises)
    for gid, wrapper, words, raises in GARBAGE
    if gid not in ("returns NaN", "returns the wrong shape", "returns too few values",
                   "returns None", "returns a str")
] + [("returns NaN", _nan, ("non-finite", "finite number"), CheckError),
     ("returns the wrong shape", _extra_axis, ("has shape", "one number"), CheckError),
     ("returns None", GARBAGE[0][1], ("forget to `return`",), CheckError),
     ("returns a str", GARBAGE[3][1], ("is a str",), CheckError)]  # fmt: skip


def single_garbage(names, checks="", source=None) -> list[Mutation]:
    """Broken variants of one-value functions; ``source``: the stand-ins' mapping."""
    out = []
    for name in names:
        for gid, wrapper, words, raises in SINGLE_GARBAGE:
            if gid == "changes its input in place" and name == "autoencoder_forward":
                continue  # its inputs are tensors: a mutation of its own below
            build = kernel(name, wrapper) if source else wrap(name, wrapper)
            words = tuple(w.replace("{name}", name) for w in words)
            out.append(Mutation(f"{name}: {gid}", name, build, words, raises))
    return out


ALL_MUTATIONS = (
    MUTATIONS
    + [m for m in garbage(["split_beats", "precision_recall_f1"]) if "in place" not in m.name]
    + single_garbage(
        ["standardize", "autoencoder_forward", "reconstruction_error", "choose_threshold"]
    )
)
ALL_KERNEL_MUTATIONS = KERNEL_MUTATIONS + single_garbage(["anomaly_scores", "detect"], source=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@parametrize(ALL_MUTATIONS)
def test_check_rejects_the_mutation_with_its_hint(mutation):
    run_mutation(mutation, CHECKS, SOL)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@parametrize(ALL_KERNEL_MUTATIONS)
def test_kernel_check_rejects_the_mutation_with_its_hint(mutation):
    run_mutation(mutation, KERNEL_CHECKS, STAND_INS)


def test_every_check_has_at_least_6_mutations():
    counts = {n: sum(m.check == n for m in MUTATIONS) for n in CHECKS}
    assert all(n >= 6 for n in counts.values()), counts
    kernel_counts = {
        n: sum(m.check.startswith(n) for m in ALL_KERNEL_MUTATIONS)
        for n in ("anomaly_scores", "detect")
    }
    assert all(n >= 8 for n in kernel_counts.values()), kernel_counts


# ------------------------------------------------------------------ the notebook


def test_grade_cells_rules_and_the_written_answer():
    exercises = [grade_id(c) for c in NB.cells if is_exercise(c) and c.cell_type == "code"]
    tests = {grade_id(c): c.source for c in NB.cells if is_test(c)}
    assert sorted(exercises) == sorted([*CHECKS, "anomaly_scores", "detect"])
    for name in exercises:
        assert f"check_{name}({name})" in tests[f"test_{name}"]
        assert "# BEGIN HIDDEN TESTS" in tests[f"test_{name}"]
    assert 'part="test", min_auc=0.93' in tests["test_anomaly_scores"]
    assert 'part="test", min_f1=0.85' in tests["test_detect"]
    rules = NB.metadata["workbook"]
    assert rules["forbid"] == [] and sorted(rules["kernel_functions"]) == [
        "anomaly_scores",
        "detect",
    ]
    answers = [c for c in NB.cells if c.cell_type == "markdown" and is_exercise(c)]
    assert len(answers) == 1 and nbgrader_meta(answers[0])["points"] > 0


def test_solution_notebook_prints_its_metrics():
    text = "".join(o.get("text", "") for c in NB.cells if c.cell_type == "code" for o in c.outputs)
    metric = lambda name: float(re.search(rf"\[metric\] lab06 {name}: (\S+)", text).group(1))  # noqa: E731
    auc, f1 = metric("lstm-ae split 0 test roc-auc"), metric("lstm-ae split 0 test f1")
    assert auc >= 0.93 and f1 >= 0.85, (auc, f1)  # the hidden tests' bars, met by the solution
    means = re.findall(r"\[metric\] lab06 (\S+) test roc-auc mean over (\d) splits: (\S+)", text)
    assert {m[0] for m in means} >= {"lstm-autoencoder", "isolation-forest-raw-beats"}
    assert all(int(m[1]) >= 5 for m in means), means  # stored outputs come from a full run
    assert text.count("[PASS]") >= 8 and "[FAIL]" not in text
