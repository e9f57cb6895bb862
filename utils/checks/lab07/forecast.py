"""Visible and hidden checks of Lab 7, Part 2 (forecasting a monthly series).

Each ``check_*`` calls a student's function through the shared engine on seeded
float64 inputs and compares what comes back with an independent computation:
pandas' ``Series.diff``, scikit-learn's ``StandardScaler`` and metrics, NumPy's
``sliding_window_view``, powers of the companion matrix of a linear predictor.
Known wrong answers (a scaler fitted on the whole series, a target window off by
one, a forecast that reads the true future, MAPE as a fraction, ...) are outputs
of deliberately changed references, so the message names the likely mistake.

:func:`check_forecast` grades a *trained* forecaster: it sends the airline
series up to the holdout (the last 36 months), scores the returned forecast
against the holdout itself and passes when its MAPE is below seasonal naive's.
No function here has the signature of an exercise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from utils.checks.core import check_finite, check_shape, passed, seeded
from utils.checks.engine import Cause, as_array, call, compare, fail, number, unpack

__all__ = [
    "check_difference",
    "check_forecast",
    "check_make_windows",
    "check_mape",
    "check_recursive_forecast",
    "check_rmse",
    "check_standardize",
    "check_undifference",
]

THRESHOLD = 1e-9
"""Largest relative error accepted where the answer is exact (float64)."""

HOLDOUT = 36
"""Months held out at the end of the airline series (1958-01 to 1960-12)."""

SEASON = 12


def _array(name: str, x, shape: tuple[int, ...], hint: str | None = None) -> np.ndarray:
    """``x`` as a float64 array of ``shape`` with finite values, or a CheckError."""
    if x is None:
        raise fail(f"{name} is None, expected an array.", "Did the function forget to `return`?")
    if isinstance(x, list | tuple) and not isinstance(x, str):
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise fail(f"{name} is a {type(x).__name__} that is not an array of numbers.") from None
    x = as_array(name, x)
    check_shape(name, x, shape, hint=hint)
    check_finite(name, x)
    return x.astype(np.float64)


def _walk(rng: np.random.Generator, T: int, start: float = 5.0) -> np.ndarray:
    """A positive random walk with a trend and a yearly wave: a small monthly series."""
    t = np.arange(T)
    return start + 0.05 * t + np.sin(2 * np.pi * t / SEASON) + rng.normal(0, 0.3, T).cumsum()


# --------------------------------------------------------------------------- differencing


def check_difference(fn: Callable, *, T: int = 30, lag: int = SEASON, seed: int = 0) -> None:
    """``fn(x, lag)`` returns the lag differences x_t - x_{t-lag}: (T - lag,)."""
    label = "difference"
    x = _walk(seeded(seed), T)
    out = call(fn, label, x, lag)
    want = pd.Series(x).diff(lag).to_numpy()[lag:]
    shape_hint = (
        f"The first {lag} values have no value {lag} steps before them: keep the "
        f"T - lag = {T - lag} differences, without padding."
    )
    causes = []
    if lag > 1:
        causes.append(
            Cause(
                pd.Series(x).diff(1).to_numpy()[lag:],
                "These are differences with the previous value (lag 1): subtract the value "
                "lag steps before.",
            )
        )
    compare(label, out, want, threshold=THRESHOLD, causes=causes, shape_hint=shape_hint)
    passed(f"difference: matches pandas Series.diff({lag}) on T = {T} values.")


def check_undifference(
    fn: Callable, *, horizon: int = 30, lag: int = SEASON, n_history: int = 24, seed: int = 0
) -> None:
    """``fn(d, history, lag)`` returns the levels y whose lag differences, after the
    history, are ``d``: y_t = d_t + y_{t-lag}, the first lag of them from the history."""
    label = "undifference"
    rng = seeded(seed)
    history = _walk(rng, n_history)
    d = rng.normal(0.3, 1.0, horizon)
    out = call(fn, label, d, history, lag)
    # the reference: per phase of the season, the history's value plus a running sum of d
    reps = -(-horizon // lag)
    padded = np.concatenate([d, np.zeros(reps * lag - horizon)]).reshape(reps, lag)
    from_levels = lambda base: (base + padded.cumsum(axis=0)).reshape(-1)[:horizon]  # noqa: E731
    want = from_levels(history[-lag:])
    from_history = (np.resize(history[-lag:], horizon) + d) if horizon > lag else None
    causes = [
        Cause(d, "These are the differences themselves: add them back onto the levels."),
        Cause(history[-1] + d.cumsum(), "This inverts a lag-1 difference (a running sum from "
              "the last value): add each d_t to the level lag steps before."),
    ]  # fmt: skip
    if from_history is not None:
        causes.append(
            Cause(
                from_history,
                "After the first lag steps it still adds to the history: y_t = d_t + y_{t-lag}, "
                "where y_{t-lag} is a level you have just rebuilt.",
            )
        )
    if lag > 1:
        causes.append(Cause(history[-lag] + d.cumsum(), "It adds each d_t to the previous level: "
                            "with lag > 1 it goes onto the level lag steps before."))  # fmt: skip
    if n_history > lag:
        causes.append(Cause(from_levels(history[:lag]), "It continues from the first lag levels "
                            "of the history: the levels before d are its last lag, history[-lag:]."))  # fmt: skip
        causes.append(Cause(from_levels(history[-lag - 1 : -1]), "Off by one: it continues from "
                            "history[-lag - 1 : -1]; y_{T+1} = d_1 + history[-lag], the level lag "
                            "steps before it."))  # fmt: skip
    compare(label, out, want, threshold=THRESHOLD, causes=causes,
            shape_hint=f"One level per difference: ({horizon},).")  # fmt: skip
    passed(
        f"undifference: matches y_t = d_t + y_(t-{lag}) over {horizon} steps after "
        f"{n_history} of history."
    )


# --------------------------------------------------------------------------- scaling


def check_standardize(fn: Callable, *, T: int = 48, n_train: int = 36, seed: int = 0) -> None:
    """``fn(series, n_train)`` returns (scaled, mu, sigma): the whole series scaled with
    the mean and standard deviation of its first ``n_train`` values only."""
    from sklearn.preprocessing import StandardScaler  # imported when used: it is slow to load

    label = "standardize"
    x = _walk(seeded(seed), T)
    x[n_train:] += 3.0 + np.arange(T - n_train) * 0.2  # the test part moves away
    scaled, mu, sigma = unpack(call(fn, label, x, n_train), label, ("scaled", "mu", "sigma"))
    train_only = StandardScaler().fit(x[:n_train, None])
    everything = StandardScaler().fit(x[:, None])
    test_only = StandardScaler().fit(x[n_train:, None])
    want = train_only.transform(x[:, None])[:, 0]
    leak = "The scaler saw the test part: fit mu and sigma on series[:n_train] only."
    mu_v, sigma_v = number("mu", mu), number("sigma", sigma)
    off = "Off by one: the training part is series[:n_train], its first n_train values."
    compare("mu", np.array(mu_v), np.array(train_only.mean_[0]), threshold=THRESHOLD,
            causes=[Cause(np.array(everything.mean_[0]), leak),
                    Cause(np.array(test_only.mean_[0]), "mu is the mean of the test part: "
                          "fit on series[:n_train]."),
                    Cause(np.array(train_only.scale_[0]), "mu and sigma are swapped: return "
                          "(scaled, mu, sigma) in this order."),
                    Cause(np.array(np.mean(x[: n_train + 1])), off),
                    Cause(np.array(np.mean(x[: max(n_train - 1, 1)])), off)])  # fmt: skip
    ddof1 = np.std(x[:n_train], ddof=1)
    compare("sigma", np.array(sigma_v), np.array(train_only.scale_[0]), threshold=THRESHOLD,
            causes=[Cause(np.array(everything.scale_[0]), leak),
                    Cause(np.array(ddof1), "sigma uses ddof=1: take the standard deviation of "
                          "the values themselves (np.std, ddof=0), as StandardScaler does."),
                    Cause(np.array(train_only.var_[0]), "sigma is the variance: the standard "
                          "deviation is its square root (np.std).")])  # fmt: skip
    compare(label + " scaled", scaled, want, threshold=THRESHOLD,
            causes=[Cause(everything.transform(x[:, None])[:, 0], leak),
                    Cause(x - mu_v, "It is only centred: divide by sigma too."),
                    Cause((x - x[:n_train].min()) / np.ptp(x[:n_train]),
                          "This is min-max scaling: subtract mu and divide by sigma.")],
            shape_hint=f"Scale the whole series ({T},), test part included, with the "
                       "statistics of the training part.")  # fmt: skip
    passed(f"standardize: matches StandardScaler fitted on the first {n_train} of {T} values.")


# --------------------------------------------------------------------------- windows


def check_make_windows(
    fn: Callable, *, T: int = 20, window: int = 5, horizon: int = 3, seed: int = 0
) -> None:
    """``fn(series, window, horizon)`` returns X (N, window), Y (N, horizon),
    N = T - window - horizon + 1, Y[i] the ``horizon`` values right after X[i]."""
    label = "make_windows"
    x = seeded(seed).normal(size=T)
    X, Y = unpack(call(fn, label, x, window, horizon), label, ("X", "Y"))
    both = sliding_window_view(x, window + horizon)
    want_X, want_Y = both[:, :window], both[:, window:]
    N = len(both)
    hint = (
        f"N = T - window - horizon + 1 = {N}: the first window starts at 0, the last one's "
        f"targets end with the series."
    )
    late_start = np.array([x[i + window - 1 : i + window - 1 + horizon] for i in range(N)])
    compare("X", X, want_X, threshold=THRESHOLD, shape_hint=hint,
            causes=[Cause(np.array([x[i + 1 : i + 1 + window] for i in range(N)]),
                          "X[i] starts one step late: X[i] = series[i : i + window].")])  # fmt: skip
    compare("Y", Y, want_Y, threshold=THRESHOLD, shape_hint=hint,
            causes=[Cause(late_start, "Off by one: Y[i] starts with the last input. The targets "
                          "start right after the window: Y[i, 0] = series[i + window].")])  # fmt: skip
    passed(f"make_windows: X {want_X.shape} and Y {want_Y.shape} match sliding_window_view "
           f"(T = {T}, window = {window}, horizon = {horizon}).")  # fmt: skip


# --------------------------------------------------------------------------- recursive forecast


def _linear_model(rng: np.random.Generator, window: int):
    """A stable linear autoregression on windows (N, window) -> (N,), as the lab's parameter
    dict {"coef": (window,), "intercept": float}; also its companion matrix and the map."""
    while True:
        a = rng.normal(0, 0.5, window)
        A = np.zeros((window, window))
        A[:-1, 1:] = np.eye(window - 1)  # the state is the window, oldest value first
        A[-1] = a
        if np.max(np.abs(np.linalg.eigvals(A))) < 0.95:
            break
    c = float(rng.normal(0, 0.5))
    return {"coef": a, "intercept": c}, A, c, lambda windows: windows @ a + c


def _power_forecast(A: np.ndarray, c: float, state: np.ndarray, horizon: int) -> np.ndarray:
    """Forecasts of the linear predictor from ``state`` (the last window), through the
    affine companion matrix: [s_{k+1}; 1] = M^k [s_1; 1]."""
    L = len(state)
    M = np.eye(L + 1)
    M[:L, :L], M[L - 1, L] = A, c
    s = np.append(state, 1.0)
    return np.array([(np.linalg.matrix_power(M, k) @ s)[L - 1] for k in range(1, horizon + 1)])


def check_recursive_forecast(
    fn: Callable, *, window: int = 4, start: int = 20, horizon: int = 10, seed: int = 0
) -> None:
    """``fn(params, series, start, horizon, window)`` returns (horizon,): the forecast of
    series[start : start + horizon] from series[:start] only, feeding back each prediction
    of the model ``params`` (here a linear autoregression, {"coef", "intercept"}, which the
    lab's given ``predict_next(params, windows)`` evaluates)."""
    label = "recursive_forecast"
    rng = seeded(seed)
    params, A, c, predict_next = _linear_model(rng, window)
    series = rng.normal(size=start + horizon + 5)  # the true future differs from any forecast
    out = call(fn, label, params, series, start, horizon, window)
    want = _power_forecast(A, c, series[start - window : start], horizon)
    truth_windows = sliding_window_view(series[start - window : start + horizon - 1], window)
    causes = [
        Cause(predict_next(truth_windows), "It reads the true values after start: a multi-step "
              "forecast feeds back its own predictions (series[start:] is the future)."),
        Cause(np.full(horizon, want[0]), "Every step uses the same window: append each "
              "prediction and drop the oldest value before the next step."),
        Cause(_power_forecast(A, c, series[start - window : start][::-1], horizon),
              "The window is reversed: keep it in time order, oldest value first."),
    ]  # fmt: skip
    causes.append(Cause(_power_forecast(A, c, series[start - window + 1 : start + 1], horizon),
                        "The first window ends with series[start], the first value to forecast "
                        "(unknown then): it is series[start - window : start]."))  # fmt: skip
    if start > window:
        causes.append(Cause(_power_forecast(A, c, series[start - window - 1 : start - 1], horizon),
                            "Off by one: the first window must end with series[start - 1], the "
                            "last known value."))  # fmt: skip
    compare(label, out, want, threshold=1e-8, causes=causes,
            shape_hint=f"One forecast per step ahead: ({horizon},).")  # fmt: skip
    passed(f"recursive_forecast: matches the {horizon}-step forecast of a linear autoregression "
           f"(window = {window}) from series[:start] only.")  # fmt: skip


# --------------------------------------------------------------------------- metrics


def _sk_metrics():
    """scikit-learn's metrics, imported when a check needs them (slow to load)."""
    from sklearn import metrics

    return metrics


def _metric_inputs(seed: int, n: int):
    rng = seeded(seed)
    y_true = rng.uniform(50, 500, n)
    return y_true, y_true * (1 + rng.normal(0, 0.1, n))


def check_mape(fn: Callable, *, n: int = 36, seed: int = 0) -> None:
    """``fn(y_true, y_pred)`` returns the mean absolute percentage error, in percent."""
    label, sk = "mape", _sk_metrics()
    y_true, y_pred = _metric_inputs(seed, n)
    got = number(label, call(fn, label, y_true, y_pred))
    want = 100 * sk.mean_absolute_percentage_error(y_true, y_pred)
    causes = [
        Cause(np.array(want / 100), "This is a fraction: MAPE is in percent (times 100)."),
        Cause(np.array(100 * np.mean(np.abs(y_true - y_pred) / np.abs(y_pred))),
              "It divides by the forecast: divide by the true values, |y - y_hat| / |y|."),
        Cause(np.array(100 * np.mean((y_true - y_pred) / y_true)),
              "The absolute value is missing: errors of both signs cancel."),
        Cause(np.array(100 * sk.mean_absolute_error(y_true, y_pred) / np.mean(y_true)),
              "It divides the mean error by the mean value: average the ratios instead."),
        Cause(np.array(200 * np.mean(np.abs(y_true - y_pred) / (np.abs(y_true) + np.abs(y_pred)))),
              "This is the symmetric MAPE (sMAPE): MAPE divides by |y| only."),
    ]  # fmt: skip
    compare(label, np.array(got), np.array(want), threshold=1e-9, causes=causes)
    passed(f"mape: {got:.4f} % matches 100 * sklearn's mean_absolute_percentage_error.")


def check_rmse(fn: Callable, *, n: int = 36, seed: int = 0) -> None:
    """``fn(y_true, y_pred)`` returns the root mean squared error."""
    label, sk = "rmse", _sk_metrics()
    y_true, y_pred = _metric_inputs(seed, n)
    got = number(label, call(fn, label, y_true, y_pred))
    want = sk.root_mean_squared_error(y_true, y_pred)
    causes = [
        Cause(np.array(sk.mean_squared_error(y_true, y_pred)), "This is the MSE: take its root."),
        Cause(np.array(np.sqrt(np.sum((y_true - y_pred) ** 2))),
              "It sums the squares: average them before the root."),
        Cause(np.array(sk.mean_absolute_error(y_true, y_pred)), "This is the mean absolute error."),
        Cause(np.array(abs(np.mean(y_true - y_pred))), "It is |mean error|: the square is taken "
              "after the mean. Square each error, average, then take the root."),
    ]  # fmt: skip
    compare(label, np.array(got), np.array(want), threshold=1e-9, causes=causes)
    passed(f"rmse: {got:.4f} matches sklearn's root_mean_squared_error.")


# --------------------------------------------------------------------------- the trained forecaster


def _airline() -> np.ndarray:
    from utils.data import load_dataset

    return load_dataset("airline").to_numpy(dtype=np.float64)


def check_forecast(fn: Callable, *, horizon: int = HOLDOUT, scale: float = 1.0) -> None:
    """``fn(history, horizon)`` returns (horizon,) forecasts after ``history``.

    It receives the airline series up to the holdout (108 months, times ``scale``).
    With ``horizon = 36`` the forecast is scored against the held-out months: it
    passes when its MAPE is below seasonal naive's (the last observed year repeated).
    Other horizons are checked for shape, finite and positive values, and that they
    agree with the first months of the 36-month forecast.
    """
    label, sk = "forecast", _sk_metrics()
    series = _airline() * scale
    history, holdout = series[:-HOLDOUT], series[-HOLDOUT:]
    out = call(fn, label, history, horizon)
    got = _array(label, out, (horizon,), hint=f"One forecast per month ahead: ({horizon},).")
    if np.any(got <= 0):
        raise fail(f"{label} has values <= 0: {got.min():.4g}.",
                   "Passenger counts are positive: is the inverse transform missing?")  # fmt: skip
    naive = np.resize(history[-SEASON:], HOLDOUT)
    naive_mape = 100 * sk.mean_absolute_percentage_error(holdout, naive)
    if horizon == HOLDOUT:
        score = 100 * sk.mean_absolute_percentage_error(holdout, got)
        if not score < naive_mape:
            hint = (
                "It is seasonal naive itself."
                if np.allclose(got, naive)
                else "Is the forecast put back on the scale of the history (inverse scaling, "
                "undifferencing, exp)? Is the model trained?"
            )
            raise fail(
                f"{label}: MAPE {score:.2f} % on the {HOLDOUT} held-out months is not better "
                f"than seasonal naive's {naive_mape:.2f} %.",
                hint,
            )
        passed(f"forecast: MAPE {score:.2f} % on the {HOLDOUT} held-out months "
               f"(history times {scale:g}), seasonal naive {naive_mape:.2f} %.")  # fmt: skip
        return
    if horizon < HOLDOUT:
        full = _array(label + f" (horizon {HOLDOUT})", call(fn, label, history, HOLDOUT),
                      (HOLDOUT,))  # fmt: skip
        if not np.allclose(got, full[:horizon], rtol=1e-3):
            raise fail(
                f"{label}: the forecast over {horizon} months differs from the first {horizon} "
                f"months of the forecast over {HOLDOUT}.",
                "The forecast of month k must not depend on how far ahead you forecast (or on "
                "anything random).",
            )
    passed(f"forecast: shape ({horizon},), finite and positive.")
