"""Lab 6 checks of the trained detector: they call the student's kernel functions.

``anomaly_scores(beats)`` and ``detect(beats)`` use the model the notebook trained, so
the grader calls them in the student's kernel (the lab lists them as
``kernel_functions``). The checks send raw beats of ECG5000's 500-beat file and keep the
labels: the beats of the lab's fixed test part (split seed 0, the rule of
:func:`utils.checks.lab06.split.test_part`) for the hidden tests, beats outside it for
the visible ones; the metric (ROC-AUC, F1) is computed here with scikit-learn. The beats
go out with noise of standard deviation 1e-3 added (their values are of order 1), which
changes no model's score visibly but defeats a function that looks the beats up in the
data file to return their labels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

from utils.checks.core import check_finite, check_shape, passed, seeded
from utils.checks.engine import as_array, call, fail
from utils.checks.lab06.split import test_part
from utils.data import load_dataset

_PARTS = {"test": "the test part", "outside": "outside the test part"}


def ecg_part(part: str = "test", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw beats (N, 140) float32 and classes (N,) of the 500-beat file: ``"test"``, the
    test part of split ``seed`` under the lab's rule, or ``"outside"``, the other beats."""
    X, y = load_dataset("ecg5000")["train"]
    inside = np.isin(np.arange(len(y)), test_part(y, seed))
    keep = inside if part == "test" else ~inside
    return X[keep], y[keep]


def _jittered(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The beats plus noise far below their own (std 1e-3): a score must come from the beat's
    shape, not from looking the beat up in the data file with its label."""
    return (X + seeded(60).normal(scale=1e-3, size=X.shape)).astype(X.dtype), y


def _outputs(fn: Callable, label: str, X: np.ndarray, kind: str) -> np.ndarray:
    """fn(X) as an array (N,), checked for shape and finiteness."""
    out = call(fn, label, X)
    if isinstance(out, list | tuple):
        out = np.asarray(out)
    out = as_array(label, out)
    if out.dtype.kind not in "biuf":
        raise fail(
            f"{label} returned an array of dtype {out.dtype}, expected numbers.",
            "Return one number (score) or True/False (flag) per beat, not text.",
        )
    hint = {
        (len(X), X.shape[1]): f"It returned one value per sample: {kind} is one number per "
        "beat (average the squared error over time).",
        (len(X), X.shape[1], 1): f"It returned one value per sample: {kind} is one number "
        "per beat (average the squared error over time).",
        (X.shape[1],): "It returned one value per time step: average over time, not over beats.",
    }.get(tuple(out.shape), f"One {kind} per beat: shape (N,).")
    check_shape(f"{label}(beats)", out, (len(X),), hint=hint)
    check_finite(f"{label}(beats)", out)
    return np.asarray(out, dtype=np.float64)


def _same_per_beat(fn: Callable, label: str, X: np.ndarray, got: np.ndarray, kind: str) -> None:
    """A beat's output may not depend on the other beats of the call (nor on their order)."""
    pick = seeded(6).permutation(len(X))[:17]
    sub = _outputs(fn, label, X[pick], kind)
    if not np.allclose(sub, got[pick], rtol=1e-3, atol=1e-6):
        raise fail(
            f"{label} gives a beat another {kind} when it comes with other beats (17 of the "
            f"{len(X)}, shuffled).",
            "Each beat's output must depend on that beat only: standardise with the training "
            "beats' mean and standard deviation (not the batch's), and keep the model in eval "
            "mode without gradients.",
        )


def check_anomaly_scores(
    fn: Callable, *, part: str = "outside", min_auc: float | None = None
) -> None:
    """Check ``anomaly_scores(beats) -> scores`` (N,) on raw beats (N, 140): one finite
    score per beat, independent of the other beats; with ``min_auc``, the ROC-AUC of the
    scores against the labels (anomaly = class 2-5) is at least ``min_auc``."""
    X, y = _jittered(*ecg_part(part))
    scores = _outputs(fn, "anomaly_scores", X, "score")
    if np.ptp(scores) == 0:
        raise fail(
            f"anomaly_scores gives all {len(X)} beats the same score ({scores[0]:.4g}).",
            "Score each beat by its reconstruction error under the trained model.",
        )
    _same_per_beat(fn, "anomaly_scores", X, scores, "score")
    if min_auc is None:
        passed(f"anomaly_scores: one finite score per beat ({len(X)} raw beats {_PARTS[part]}), "
               "the same whatever other beats come with it.")  # fmt: skip
        return
    auc = roc_auc_score(y != 1, scores)
    if auc < min_auc:
        why = (
            "The scores are reversed: a higher score must mean a more anomalous beat."
            if 1 - auc >= min_auc
            else "Train the autoencoder on the normal training beats only (Part 3), score "
            "with the reconstruction error, and standardise with the training statistics."
        )
        raise fail(
            f"ROC-AUC of anomaly_scores on {_PARTS[part]} is {auc:.3f}, below {min_auc}.", why
        )
    passed(f"anomaly_scores: ROC-AUC {auc:.3f} on the {len(X)} beats of {_PARTS[part]} "
           f"(pass at {min_auc}).")  # fmt: skip


def check_detect(fn: Callable, *, part: str = "outside", min_f1: float | None = None) -> None:
    """Check ``detect(beats) -> flags`` (N,) of bools (True: anomaly) on raw beats
    (N, 140); with ``min_f1``, the F1 of the flags against the labels is at least ``min_f1``."""
    X, y = _jittered(*ecg_part(part))
    flags = _outputs(fn, "detect", X, "flag")
    if not np.isin(flags, (0, 1)).all():
        raise fail(
            "detect returned values other than True/False (or 1/0).",
            "Return anomaly_scores(beats) > threshold: one boolean per beat.",
        )
    if flags.min() == flags.max():
        raise fail(
            f"detect flags {'every' if flags[0] else 'no'} beat of the {len(X)} ({_PARTS[part]}"
            f"; {np.sum(y != 1)} of them are anomalies).",
            "Return anomaly_scores(beats) > threshold, with the threshold chosen on the "
            "validation scores (Part 4); True means anomaly.",
        )
    _same_per_beat(fn, "detect", X, flags, "flag")
    if min_f1 is None:
        passed(f"detect: one True/False per beat ({len(X)} raw beats {_PARTS[part]}), "
               "the same whatever other beats come with it.")  # fmt: skip
        return
    f1 = f1_score(y != 1, flags.astype(bool), zero_division=0)
    if f1 < min_f1:
        raise fail(
            f"F1 of detect on {_PARTS[part]} is {f1:.3f}, below {min_f1}.",
            "The flags are reversed: True must mean anomaly (score above the threshold)."
            if f1_score(y != 1, ~flags.astype(bool)) >= min_f1
            else "Flag the beats whose score is above the threshold chosen on the validation "
            "part (Part 4); True means anomaly.",
        )
    passed(f"detect: F1 {f1:.3f} on the {len(X)} beats of {_PARTS[part]} (pass at {min_f1}).")
