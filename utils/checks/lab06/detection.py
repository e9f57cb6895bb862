"""Lab 6 checks of the detector: precision, recall and F1, and the threshold.

References are scikit-learn's ``precision_recall_fscore_support`` (binary, anomaly = 1,
``zero_division=0``) and ``f1_score``; the best F1 a threshold can reach on given scores
is found by trying every score as the threshold (flagged: score > threshold).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from utils.checks.core import passed, seeded
from utils.checks.engine import call, fail, number, unpack


def _prf(y, p) -> np.ndarray:
    return np.array(precision_recall_fscore_support(y, p, average="binary", zero_division=0)[:3])


def _cases(seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = seeded(seed)
    y = rng.integers(0, 2, size=40)
    p = np.where(rng.random(40) < 0.7, y, 1 - y)
    y2 = np.r_[np.ones(3, int), np.zeros(9, int)]
    p2 = np.r_[1, 1, 1, 1, 1, np.zeros(7, int)]  # every anomaly found, two false alarms
    return [
        ("random labels", y, p),
        ("anomalies all found, two false alarms", y2, p2),
        ("no beat flagged", y2, np.zeros(12, int)),
        ("perfect predictions", y, y.copy()),
        ("no anomaly among the beats, two false alarms", np.zeros(12, int), p2[::-1].copy()),
    ]


def check_precision_recall_f1(fn: Callable, *, seed: int = 0) -> None:
    """Check ``precision_recall_f1(y_true, y_pred) -> (precision, recall, f1)`` (anomaly =
    1 is the positive class) against scikit-learn on five cases, one with no beat flagged
    and one with no anomaly (precision and recall 0/0 in turn)."""
    label = "precision_recall_f1"
    for case, y, p in _cases(seed):
        out = unpack(call(fn, label, y, p), label, ("precision", "recall", "f1"))
        got = np.array([number(n, v) for n, v in zip(("precision", "recall", "f1"), out)])
        want = _prf(y, p)
        recall_0_0 = ("There is no anomaly among these beats, so recall is 0/0: return 0 then "
                      "(scikit-learn's zero_division=0), and F1 = 0.")  # fmt: skip
        if not np.isfinite(got).all() and p.any():
            raise fail(f"precision, recall, f1 are {got.tolist()} ({case}): non-finite values.",
                       recall_0_0 if not y.any() else None)  # fmt: skip
        if np.allclose(got, want, rtol=0, atol=1e-9):
            continue
        where = f" ({case}: got {np.round(got, 4).tolist()}, expected {np.round(want, 4).tolist()})"
        pr, rc = want[:2]
        causes = [
            (np.isnan(got).any() and not p.any(), "No beat is flagged, so precision is 0/0: "
             "return 0 then (scikit-learn's zero_division=0), and F1 = 0."),
            (np.allclose(got, [rc, pr, want[2]]), "Precision and recall are swapped: precision "
             "= TP / (TP + FP) (of the flagged beats), recall = TP / (TP + FN) (of the anomalies)."),
            (np.isclose(got[2], (pr + rc) / 2) and not np.isclose(pr, rc), "F1 is the "
             "arithmetic mean of precision and recall: it is the harmonic mean, 2 P R / (P + R)."),
            (np.allclose(got, _prf(1 - y, 1 - p)), "The normal beats are the positive class: "
             "the anomalies (label 1) are."),
            (np.allclose(got, (want + _prf(1 - y, 1 - p)) / 2), "These are averages over the "
             "two classes (macro): report the anomaly class (label 1) only."),
            (np.isclose(got[0], 1) and not p.any(), "No beat is flagged, so precision is 0/0: "
             "return 0 then (scikit-learn's zero_division=0), not 1."),
            (np.isclose(got[1], 1) and not y.any(), "There is no anomaly among these beats, "
             "so recall is 0/0: return 0 then (scikit-learn's zero_division=0), not 1."),
            (np.isclose(got[0], accuracy_score(y, p)), "Precision is the accuracy: it counts "
             "only the flagged beats, TP / (TP + FP)."),
            (np.allclose(got[:2], want[:2]), "Precision and recall are right, F1 is not: "
             "F1 = 2 P R / (P + R)."),
            ((np.isin(got[:2], (0, 1)) & ~np.isin(want[:2], (0, 1))).any(), "Precision "
             "or recall is a whole number: integer division (//)? Use / for the ratios."),
        ]  # fmt: skip
        why = next((w for hit, w in causes if hit), "Count TP, FP, FN with y_true == 1 as anomaly.")
        raise fail("precision, recall, f1 differ from scikit-learn" + where + ".", why)
    passed(
        "precision_recall_f1: matches scikit-learn's precision_recall_fscore_support (anomaly = "
        "1, zero_division=0) on 5 cases, one with no beat flagged, one with no anomaly."
    )


def best_f1(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The largest F1 of ``scores > t`` over every candidate t, and one t that reaches it."""
    candidates = np.r_[-np.inf, np.unique(scores)]
    f1s = [f1_score(y, scores > t, zero_division=0) for t in candidates]
    k = int(np.argmax(f1s))
    return float(f1s[k]), float(candidates[k])


def _scores(rng, n_normal: int, n_anomaly: int) -> tuple[np.ndarray, np.ndarray]:
    s = np.r_[np.abs(rng.normal(1.0, 0.4, n_normal)), np.abs(rng.normal(2.0, 0.8, n_anomaly))]
    y = np.r_[np.zeros(n_normal, int), np.ones(n_anomaly, int)]
    order = rng.permutation(len(s))
    return s[order], y[order]


def _threshold_cause(thr: float, scores, y) -> str | None:
    normal = scores[y == 0]
    if thr == int(thr) and 0 <= thr < len(scores) and not np.isin(thr, scores):
        return (
            "The threshold looks like a position (an index from argmax), not a score: return "
            "the candidate value itself."
        )
    if f1_score(y, scores >= thr) >= best_f1(scores, y)[0] - 1e-12 and np.isin(thr, scores):
        return (
            "The threshold is a score of an anomaly, which `score > threshold` does not flag: "
            "return a value between that score and the next lower one (e.g. their midpoint)."
        )
    for q in (0.9, 0.95, 0.99, 1.0):
        if np.isclose(thr, np.quantile(normal, q)):
            return (
                "The threshold is a percentile of the normal beats' scores (what the by-eye "
                "histogram method gives): choose the one that maximises F1 on the scores given."
            )
    below = scores[scores < scores[y == 1].min()]
    if below.size and below.max() < thr < scores[y == 1].min():
        return (
            "The threshold sits just below the lowest anomaly's score, so every anomaly is "
            "flagged whatever the false alarms cost: maximise F1 instead."
        )
    accs = [accuracy_score(y, scores > t) for t in np.r_[-np.inf, np.unique(scores)]]
    if np.isclose(accuracy_score(y, scores > thr), max(accs)):
        return "The threshold maximises the accuracy: the lab's rule maximises F1."
    f1_normal, f1_anomaly = f1_score(1 - y, scores > thr), f1_score(y, scores > thr)
    if f1_normal > f1_anomaly:
        return (
            f"The beats above the threshold are more normal than anomalous (F1 {f1_normal:.3f} "
            f"for the normal beats, {f1_anomaly:.3f} for the anomalies): labels reversed? "
            "Anomalies are label 1, flagged when score > threshold."
        )
    return None


def check_choose_threshold(fn: Callable, *, seed: int = 0) -> None:
    """Check ``choose_threshold(scores, y) -> threshold``: flagging ``scores > threshold``
    reaches the best F1 possible on the (validation) scores given, on four sets of
    scores, one a shuffled copy, one with a far outlier; the threshold may depend on
    nothing else."""
    rng = seeded(seed)
    first = _scores(rng, 60, 40)
    order = rng.permutation(100)
    outlier = (np.r_[first[0], 60 * first[0].max()], np.r_[first[1], 1])
    sets = {"validation scores": first, "the same, shuffled": (first[0][order], first[1][order]),
            "other validation scores": _scores(rng, 30, 12),
            "validation scores with one far outlier": outlier}  # fmt: skip
    tail = ("One anomaly scores 60 times the others' largest score (reconstruction errors have "
            "such a tail): a grid of thresholds between the lowest and the highest score "
            "(np.linspace) is then too coarse. Try every midpoint between consecutive distinct "
            "scores.")  # fmt: skip
    for name, (scores, y) in sets.items():
        thr = number("threshold", call(fn, "choose_threshold", scores, y))
        if not np.isfinite(thr):
            raise fail(f"threshold is {thr} ({name}), expected a finite number.")
        got, (best, at) = f1_score(y, scores > thr, zero_division=0), best_f1(scores, y)
        if got < best - 1e-12:
            raise fail(
                f"On the {name} ({len(y)} beats), flagging score > {thr:.4g} gives F1 = "
                f"{got:.4f}; the best threshold there (e.g. {at:.4g}) gives F1 = {best:.4f}.",
                _threshold_cause(thr, scores, y)
                or (tail if scores is outlier[0] else None)
                or "Try every validation score as the threshold and keep the one with the best "
                "F1; the threshold must come from these scores only (never from the test part).",
            )
    passed(
        "choose_threshold: flagging score > threshold reaches the best F1 on each set of "
        "validation scores given (4 sets, one shuffled, one with a far outlier)."
    )
