"""Lab 6 checks of the data handling: the stratified split and the standardisation.

The lab's rule for the test part is stated in its text and reproduced here with
scikit-learn: ``train_test_split(np.arange(N), test_size=TEST_SIZE, stratify=y,
random_state=seed)``, the second item. Everything else about the split is checked by
its properties (disjoint parts, normal-only training part, stratified validation
part, the seed used), not against a copy of an answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.model_selection import train_test_split

from utils.checks.core import passed, rel_error, seeded
from utils.checks.engine import Cause, call, compare, describe, fail, unpack

TEST_SIZE = 0.3
"""The fraction of every class held out as the test part."""
VAL_SIZE = 0.3
"""The fraction of the rest (the beats outside the test part) that forms the validation part."""
COUNTS = (292, 177, 10, 19, 2)
"""Beats per class 1..5 in the ECG5000 training file: the checks' labels have the same."""

_RULE = (
    "The lab's rule: rest, test_idx = train_test_split(np.arange(len(y)), "
    "test_size=TEST_SIZE, stratify=y, random_state=seed)."
)


def test_part(y: np.ndarray, seed: int = 0) -> np.ndarray:
    """The indices of the test part of split ``seed`` under the lab's stated rule (sorted)."""
    idx = np.arange(len(y))
    return np.sort(train_test_split(idx, test_size=TEST_SIZE, stratify=y, random_state=seed)[1])


def _indices(name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray | list | tuple):
        raise fail(f"{name} is a {describe(x)}, expected a 1-D array of beat indices.")
    a = np.asarray(x)
    if a.ndim != 1:
        raise fail(f"{name} has shape {a.shape}, expected a 1-D array of beat indices.")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise fail(f"{name} contains non-finite values (NaN or inf), expected beat indices.")
    if a.size and a.dtype.kind not in "iu":
        raise fail(
            f"{name} has dtype {a.dtype}, expected integer indices.",
            "Return indices into y (np.arange(len(y)) split), not labels or masks.",
        )
    if len(set(a.tolist())) != a.size:
        labels = a.size > 5 and set(a.tolist()) <= {1, 2, 3, 4, 5}
        raise fail(
            f"{name} holds the same beat twice.",
            "It looks like classes (values 1-5): return the indices of the beats "
            "(positions in y), not their labels y[idx]."
            if labels
            else None,
        )
    return a


def _test_causes(y, seed, got: set) -> str | None:
    idx = np.arange(len(y))
    variants = {
        "The test part is not stratified: pass stratify=y, so every class keeps its share.": (
            dict(test_size=TEST_SIZE, random_state=seed)
        ),
        "The test part is stratified on normal/anomaly only: stratify on the class y "
        "(1-5), so the rare classes appear in it.": dict(
            test_size=TEST_SIZE, stratify=y != 1, random_state=seed
        ),
        f"The test part does not use the seed: random_state=seed (here {seed}).": dict(
            test_size=TEST_SIZE, stratify=y, random_state=0 if seed else 1
        ),
    }
    for why, kwargs in variants.items():
        if set(train_test_split(idx, **kwargs)[1].tolist()) == got:
            return why
    return None


def _check_once(fn: Callable, y: np.ndarray, seed: int) -> tuple:
    label = "split_beats"
    parts = unpack(call(fn, label, y, seed), label, ("train_idx", "val_idx", "test_idx"))
    train, val, test = (_indices(n, p) for n, p in zip(("train_idx", "val_idx", "test_idx"), parts))
    s_train, s_val, s_test = set(train.tolist()), set(val.tolist()), set(test.tolist())
    want = test_part(y, seed)
    if s_test != set(want.tolist()):
        size = f"test_idx has {len(test)} beats, expected {len(want)} (TEST_SIZE of {len(y)})."
        head = (
            size
            if len(test) != len(want)
            else f"test_idx is not the lab's test part (seed {seed})."
        )
        raise fail(head, _test_causes(y, seed, s_test) or _RULE)
    if s_train & s_test or s_val & s_test:
        raise fail(
            "The training or validation part shares beats with the test part.",
            "Split the rest (the beats not in test_idx) into training and validation: the "
            "test part stays untouched until the end.",
        )
    if s_train & s_val:
        raise fail(
            "train_idx and val_idx share beats.",
            "Split the rest into two disjoint parts; then keep the normal beats of one as train_idx.",
        )
    anomalous = [int(i) for i in train if y[i] != 1]
    if anomalous:
        swapped = not (y[val] != 1).any() and len(train) == math.ceil(
            VAL_SIZE * (len(y) - len(test))
        )
        raise fail(
            f"train_idx holds {len(anomalous)} anomalous beat(s) (classes 2-5).",
            "train_idx and val_idx look swapped: return train_idx, val_idx, test_idx, in that "
            "order."
            if swapped
            else "The autoencoder learns what *normal* beats look like: keep only class 1 in the "
            "training part (its anomalies are not used).",
        )
    rest = np.setdiff1d(np.arange(len(y)), want)
    n_val = math.ceil(VAL_SIZE * len(rest))
    if len(val) != n_val:
        raise fail(
            f"val_idx has {len(val)} beats, expected {n_val} (VAL_SIZE of the {len(rest)} beats "
            "outside the test part).",
            "The validation part keeps its anomalies: the threshold is chosen on normal and "
            "anomalous beats."
            if len(val) < n_val and not (y[val] != 1).any()
            else None,
        )
    share, expected = (y[val] != 1).sum(), (y[rest] != 1).mean() * n_val
    if not (y[val] != 1).any() or abs(share - expected) > 1:
        raise fail(
            f"val_idx holds {share} anomalies, expected {expected:.0f} (the share of the rest).",
            "Stratify the validation split on normal vs anomaly (stratify=y[rest] != 1): the "
            "threshold is chosen on both kinds of beats.",
        )
    missing = sorted(set(rest[y[rest] == 1].tolist()) - s_val - s_train)
    if missing:
        raise fail(
            f"{len(missing)} normal beat(s) outside the test and validation parts are not in "
            "train_idx.",
            "Every normal beat of the rest that is not in the validation part trains the autoencoder.",
        )
    return s_train, s_val, s_test


def check_split_beats(fn: Callable, *, seed: int = 0) -> None:
    """Check ``split_beats(y, seed) -> (train_idx, val_idx, test_idx)`` on labels with
    ECG5000's class counts, for two seeds: the test part follows the lab's rule, the
    parts are disjoint, the training part is normal-only, the validation part is
    stratified, and the same seed gives the same split."""
    y = seeded(seed).permutation(np.repeat(np.arange(1, 6), COUNTS))
    first = _check_once(fn, y, seed)
    if _check_once(fn, y, seed) != first:
        raise fail(
            "Two calls with the same seed gave different splits.",
            "Pass random_state=seed to every random step, so a split can be repeated.",
        )
    _check_once(fn, y, seed + 1)
    passed(
        "split_beats: the test part follows the lab's rule (TEST_SIZE of every class, "
        "random_state=seed); training part normal-only, validation part stratified, no "
        "beat in two parts; repeatable for a seed."
    )


def check_standardize(fn: Callable, *, N: int = 6, T: int = 10, seed: int = 0) -> None:
    """Check ``standardize(X_fit, X) -> Z`` (Z = (X - m) / s with the mean m and the
    standard deviation s of all the values of X_fit, two numbers) on random beats."""
    rng = seeded(seed)
    X_fit = rng.normal(3.0, 2.0, size=(N, T)) + np.linspace(-2, 2, T)
    X = rng.normal(-1.0, 0.5, size=(N + 3, T))
    both = np.concatenate([X_fit, X])
    want = (X - X_fit.mean()) / X_fit.std()
    causes = [
        Cause((X - X.mean()) / X.std(), "The statistics come from X, the beats being "
              "transformed: use the mean and standard deviation of X_fit (the training beats)."),
        Cause((X - both.mean()) / both.std(), "The statistics include the beats being "
              "transformed (all the data): fit them on X_fit, the training beats, only."),
        Cause((X - X_fit.mean(axis=0)) / X_fit.std(axis=0), "The statistics are per time "
              "step (axis 0): the lab uses two numbers, over all the values of X_fit."),
        Cause((X - X_fit.mean(axis=1).mean()) / X_fit.std(axis=1).mean(), "The standard "
              "deviation is averaged over beats: take it over all the values of X_fit."),
        Cause((X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True), "Each beat is "
              "rescaled by its own statistics (axis 1): use the two numbers of X_fit for all."),
        Cause((X - X_fit.min()) / (X_fit.max() - X_fit.min()), "It is min-max scaling: "
              "subtract the mean of X_fit and divide by its standard deviation."),
        Cause(X - X_fit.mean(), "Z is not divided by the standard deviation of X_fit."),
        Cause((X - X_fit.mean()) / X_fit.var(), "Z is divided by the variance: divide by "
              "the standard deviation."),
    ]  # fmt: skip
    label = "standardize"
    got = call(fn, label, X_fit, X)
    if (
        hasattr(got, "shape")
        and got.shape == want.shape
        and rel_error(got, (X - X_fit.mean()) / X_fit.std(ddof=1)) < 1e-9
    ):
        want = (X - X_fit.mean()) / X_fit.std(ddof=1)  # either standard deviation is fine
    compare("Z", got, want, threshold=1e-9, causes=causes,
            shape_hint="Z must have the shape of X: every value is shifted and scaled.")  # fmt: skip
    own = call(fn, label, X_fit, X_fit)
    compare("standardize(X_fit, X_fit)", own, (X_fit - X_fit.mean()) / X_fit.std(),
            threshold=1e-2, hint="The training beats themselves must come out with mean 0 and "
            "standard deviation 1.")  # fmt: skip
    passed(
        "standardize: Z = (X - m) / s with m and s the mean and standard deviation of all "
        "the values of X_fit (the training beats), whatever X is."
    )
