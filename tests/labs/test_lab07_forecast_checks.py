"""The checks of Lab 7, Part 2 (forecasting) accept the solution and reject broken code.

The correct functions come from the solution notebook's exercise cells; each broken
variant is a small text mutation of that code, or a wrapper that breaks what a
function returns (tests/labs/harness.py runs them all). The trained forecaster
(``forecast``, graded in the student's kernel) is checked with stand-ins: a
Holt-Winters forecaster passes, seasonal naive and other broken forecasters fail.
"""

from __future__ import annotations

import copy
import warnings

import nbformat
import numpy as np
import pytest

from tests.factories import ROOT
from tests.labs.harness import (
    Mutation,
    assert_accepts,
    edit,
    load_solution,
    parametrize,
    run_mutation,
    wrap,
)
from utils.checks import CheckError
from utils.checks.lab07 import forecast as fc

PATH = ROOT / "solutions" / "lab07_ner_and_forecasting.ipynb"

CHECKS = {
    "mape": fc.check_mape,
    "rmse": fc.check_rmse,
    "difference": fc.check_difference,
    "undifference": fc.check_undifference,
    "standardize": fc.check_standardize,
    "make_windows": fc.check_make_windows,
    "recursive_forecast": fc.check_recursive_forecast,
}
EXERCISES = [*CHECKS, "forecast"]


def _given_helpers(path) -> str:
    """The lab's given Forecaster and predict_next (plain cells, not exercises), which
    recursive_forecast calls, with the setup imports they need."""
    cells = nbformat.read(path, as_version=4).cells
    given = [
        c.source for c in cells if c.source.startswith(("class Forecaster(", "def predict_next("))
    ]
    assert len(given) == 2, "the Forecaster and predict_next cells"
    return "import numpy as np\nimport torch\nfrom torch import nn\n\n" + "\n\n".join(given)


SOL = load_solution(PATH, preamble=_given_helpers(PATH))


def test_solution_defines_every_exercise():
    assert set(EXERCISES) <= set(SOL)


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution(name):
    assert_accepts(CHECKS[name], SOL[name], name)


OTHER_SIZES = {
    "mape": dict(n=7, seed=7),
    "rmse": dict(n=7, seed=7),
    "difference": dict(T=14, lag=3, seed=7),
    "undifference": dict(horizon=25, lag=4, n_history=9, seed=7),
    "standardize": dict(T=30, n_train=29, seed=7),
    "make_windows": dict(T=9, window=1, horizon=8, seed=7),
    "recursive_forecast": dict(window=6, start=6, horizon=20, seed=7),
}


@pytest.mark.parametrize("name", CHECKS)
def test_check_accepts_the_solution_on_other_sizes(name):
    assert_accepts(CHECKS[name], SOL[name], name, **OTHER_SIZES[name])


def test_the_check_module_holds_no_exercise():
    for name, value in vars(fc).items():
        if callable(value) and getattr(value, "__module__", None) == fc.__name__:
            assert name not in EXERCISES, name


def text(name: str, check: str, old: str, new: str, words) -> Mutation:
    return Mutation(name, check, edit(check, old, new), words)


STATS = "mu, sigma = float(np.mean(series[:n_train])), float(np.std(series[:n_train]))"
APPEND = "values.append(predict_next(params, np.array([values[-window:]]))[0])"
Y_ROW = "series[i + window : i + window + horizon] for"
LEVEL = "levels.append(d_t + levels[-lag])"

MUTATIONS = [
    # -- metrics
    text("mape: a fraction, not percent", "mape", "float(100 * np.mean(", "float(np.mean(",
         "in percent"),
    text("mape: divides by the forecast", "mape", "/ y_true)))", "/ y_pred)))",
         "divides by the forecast"),
    text("mape: no absolute value", "mape", "np.mean(np.abs((y_true - y_pred) / y_true))",
         "np.mean((y_true - y_pred) / y_true)", "absolute value is missing"),
    text("rmse: the MSE", "rmse", "np.sqrt(np.mean((y_true - y_pred) ** 2))",
         "np.mean((y_true - y_pred) ** 2)", "This is the MSE"),
    text("rmse: sum, not mean", "rmse", "np.sqrt(np.mean(", "np.sqrt(np.sum(", "sums the squares"),
    text("rmse: the MAE", "rmse", "np.sqrt(np.mean((y_true - y_pred) ** 2))",
         "np.mean(np.abs(y_true - y_pred))", "mean absolute error"),
    # -- differencing and its inverse
    text("difference: lag 1", "difference", "x[lag:] - x[:-lag]", "x[1:] - x[:-1]", "has shape"),
    text("difference: lag 1, trimmed", "difference", "x[lag:] - x[:-lag]",
         "(x[1:] - x[:-1])[lag - 1 :]", "previous value (lag 1)"),
    text("difference: wrong sign", "difference", "x[lag:] - x[:-lag]", "x[:-lag] - x[lag:]",
         "wrong sign"),
    text("difference: padded with NaN", "difference", "return x[lag:] - x[:-lag]",
         "return np.concatenate([np.full(lag, np.nan), x[lag:] - x[:-lag]])", "without padding"),
    text("undifference: not inverted", "undifference", LEVEL, "levels.append(d_t)",
         "differences themselves"),
    text("undifference: inverts a lag-1 difference", "undifference", LEVEL,
         "levels.append(d_t + levels[-1])", "lag-1 difference"),
    text("undifference: always adds to the history", "undifference", LEVEL,
         "levels.append(d_t + history[-lag + (len(levels) - lag) % lag])",
         "still adds to the history"),
    text("undifference: returns the history too", "undifference", "np.array(levels[lag:])",
         "np.array(levels)", "has shape"),
    # -- scaling
    text("standardize: scaler fitted on all data", "standardize", STATS,
         "mu, sigma = float(np.mean(series)), float(np.std(series))", "saw the test part"),
    text("standardize: scaler fitted on the test part", "standardize", STATS,
         "mu, sigma = float(np.mean(series[n_train:])), float(np.std(series[n_train:]))",
         "mean of the test part"),
    text("standardize: ddof=1", "standardize", "float(np.std(series[:n_train]))",
         "float(np.std(series[:n_train], ddof=1))", "ddof=1"),
    text("standardize: only centred", "standardize", "(series - mu) / sigma, mu",
         "series - mu, mu", "only centred"),
    text("standardize: only the training part scaled", "standardize",
         "(series - mu) / sigma, mu", "(series[:n_train] - mu) / sigma, mu", "whole series"),
    text("standardize: min-max", "standardize", "(series - mu) / sigma, mu",
         "(series - series[:n_train].min()) / np.ptp(series[:n_train]), mu", "min-max"),
    # -- windows
    text("make_windows: target is the last input (off by one)", "make_windows", Y_ROW,
         "series[i + window - 1 : i + window - 1 + horizon] for", "starts with the last input"),
    text("make_windows: one window short", "make_windows",
         "N = len(series) - window - horizon + 1", "N = len(series) - window - horizon",
         "N = T - window - horizon + 1"),
    text("make_windows: inputs one step late", "make_windows", "series[i : i + window] for",
         "series[i + 1 : i + 1 + window] for", "starts one step late"),
    text("make_windows: X and Y swapped", "make_windows", "return X, Y", "return Y, X",
         "has shape"),
    # -- recursive forecast
    text("recursive: uses the true values", "recursive_forecast", APPEND,
         "values.append(predict_next(params, np.array([series[start + len(values) - 2 * window : "
         "start + len(values) - window]]))[0])", "reads the true values"),
    text("recursive: never feeds back", "recursive_forecast", "np.array([values[-window:]])",
         "np.array([values[:window]])", "same window"),
    text("recursive: first window off by one", "recursive_forecast",
         "list(series[start - window : start])", "list(series[start - window - 1 : start - 1])",
         "Off by one"),
    text("recursive: window reversed", "recursive_forecast",
         "list(series[start - window : start])", "list(series[start - window : start][::-1])",
         "reversed"),
    text("recursive: a 1-d window", "recursive_forecast", "np.array([values[-window:]])",
         "np.array(values[-window:])", "windows must have shape (N, L)"),
    text("recursive: one step too few", "recursive_forecast", "for _ in range(horizon):",
         "for _ in range(horizon - 1):", "has shape"),
    # -- found by a second review: no hint from the earlier checks
    text("rmse: root of the squared mean error", "rmse", "np.sqrt(np.mean((y_true - y_pred) ** 2))",
         "np.sqrt(np.mean(y_true - y_pred) ** 2)", "square is taken after the mean"),
    text("mape: symmetric", "mape", "np.mean(np.abs((y_true - y_pred) / y_true))",
         "np.mean(2 * np.abs(y_true - y_pred) / (np.abs(y_true) + np.abs(y_pred)))", "sMAPE"),
    text("undifference: from the start of the history", "undifference",
         "levels = list(history[-lag:])", "levels = list(history[:lag])", "first lag levels"),
    text("undifference: history off by one", "undifference", "levels = list(history[-lag:])",
         "levels = list(history[-lag - 1 : -1])", "Off by one"),
    text("standardize: one value too many", "standardize", STATS,
         "mu, sigma = float(np.mean(series[: n_train + 1])), float(np.std(series[: n_train + 1]))",
         "Off by one"),
    text("standardize: the variance", "standardize", "float(np.std(series[:n_train]))",
         "float(np.var(series[:n_train]))", "is the variance"),
    text("standardize: mu and sigma swapped", "standardize", "return (series - mu) / sigma, mu, sigma",
         "return (series - mu) / sigma, sigma, mu", "swapped"),
    text("recursive: the first window reads series[start]", "recursive_forecast",
         "list(series[start - window : start])", "list(series[start - window + 1 : start + 1])",
         "first value to forecast"),
    text("recursive: writes its forecasts into the series", "recursive_forecast",
         "    values = list(series[start - window : start])\n    for _ in range(horizon):\n"
         "        values.append(predict_next(params, np.array([values[-window:]]))[0])\n"
         "    return np.array(values[window:])",
         "    for k in range(horizon):\n        series[start + k] = predict_next(params, "
         "np.array([series[start + k - window : start + k]]))[0]\n"
         "    return series[start : start + horizon].copy()", "in place"),
]  # fmt: skip


# ------------------------------------------------------------------ broken outputs of any exercise


def _returns_none(fn):
    return lambda *args: None


def _returns_nan(fn):
    def wrapper(*args):
        out = fn(*args)
        if isinstance(out, tuple):
            return (np.full(np.shape(out[0]), np.nan), *out[1:])
        return np.full(np.shape(out), np.nan) if np.ndim(out) else float("nan")

    return wrapper


def _raises(fn):
    def wrapper(*args):
        raise ValueError("operands could not be broadcast together")

    return wrapper


def _returns_str(fn):
    return lambda *args: "not a result"


def _wrong_shape(fn):
    def wrapper(*args):
        out = fn(*args)
        if isinstance(out, tuple):
            return (np.asarray(out[0])[..., None], *out[1:])
        return np.asarray(out)[..., None] if np.ndim(out) else np.array([out, out])

    return wrapper


def _changes_input(fn):
    def wrapper(*args):
        out = fn(*copy.deepcopy(args))
        for a in args:
            if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                a *= 0.5
                break
        return out

    return wrapper


def _stub(fn):
    def wrapper(*args):
        raise NotImplementedError()

    return wrapper


BROKEN = [
    ("returns None", _returns_none, ("None",), CheckError),
    ("returns NaN", _returns_nan, ("non-finite", "expected one number"), CheckError),
    ("raises ValueError", _raises, ("raised ValueError",), CheckError),
    ("returns a str", _returns_str, ("is a str", "returned a str"), CheckError),
    ("returns the wrong shape", _wrong_shape, ("has shape", "one number"), CheckError),
    ("changes its input in place", _changes_input, ("in place",), CheckError),
    ("is still a stub", _stub, ("{name} is not implemented yet",), NotImplementedError),
]
GARBAGE = [
    Mutation(f"{name}: {gid}", name, wrap(name, wrapper),
             tuple(w.replace("{name}", name) for w in words), raises)
    for name in CHECKS
    for gid, wrapper, words, raises in BROKEN
]  # fmt: skip


@parametrize(MUTATIONS + GARBAGE)
def test_check_rejects(mutation):
    run_mutation(mutation, CHECKS, SOL)


# ------------------------------------------------------------------ the trained forecaster


def holt_winters(history, horizon):
    """A forecaster that beats seasonal naive on the airline holdout (MAPE about 5 %)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ExponentialSmoothing(history, trend="add", seasonal="add", seasonal_periods=12).fit()
    return fit.forecast(horizon)


HIDDEN = [dict(), dict(scale=2.0), dict(scale=0.001), dict(horizon=12), dict(horizon=1)]


@pytest.mark.parametrize("kwargs", HIDDEN, ids=str)
def test_forecast_check_accepts_a_good_forecaster(kwargs):
    assert_accepts(fc.check_forecast, holt_winters, "forecast", **kwargs)


AIRLINE = fc._airline()
CACHED = holt_winters(AIRLINE[:-36], 36)


def _seasonal_naive(history, horizon):
    return np.resize(history[-12:], horizon)


FORECASTERS = [
    # (id, forecaster, check arguments, words)
    ("seasonal naive", _seasonal_naive, {}, "It is seasonal naive itself"),
    ("last value repeated", lambda h, k: np.full(k, h[-1]), {}, "not better than seasonal naive"),
    ("no exp (log levels)", lambda h, k: np.log(holt_winters(h, k)), {}, "not better"),
    ("differences, not levels", lambda h, k: np.diff(holt_winters(h, k + 1)), {}, "<= 0"),
    ("ignores the history (cached)", lambda h, k: CACHED[:k], dict(scale=2.0), "not better"),
    ("random", lambda h, k: holt_winters(h, k) * np.random.default_rng().uniform(0.9, 1.1, k),
     dict(horizon=12), "differs from the first"),
    ("one month short", lambda h, k: holt_winters(h, k)[:-1], {}, "has shape"),
    ("returns None", lambda h, k: None, {}, "None"),
    ("returns NaN", lambda h, k: np.full(k, np.nan), {}, "non-finite"),
    ("raises", lambda h, k: {}["model"], {}, "raised KeyError"),
    ("changes the history", lambda h, k: h.__imul__(0.5)[:k], {}, "in place"),
]  # fmt: skip


@pytest.mark.parametrize("case", FORECASTERS, ids=[c[0] for c in FORECASTERS])
def test_forecast_check_rejects(case):
    _, fn, kwargs, words = case
    with pytest.raises(CheckError) as info:
        fc.check_forecast(fn, **kwargs)
    message = str(info.value)
    assert message.startswith("[FAIL]") and words in message, message
