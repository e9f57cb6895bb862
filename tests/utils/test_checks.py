"""Generic self-checks: each one passes the right thing and explains the wrong one."""

import numpy as np
import pytest
import torch

from utils import checks
from utils.checks import CheckError


def test_check_shape_names_got_and_expected():
    checks.check_shape("h_t", np.zeros((5, 3)), (5, 3))
    with pytest.raises(CheckError, match=r"h_t has shape \(3, 5\), expected \(5, 3\).*transposed"):
        checks.check_shape("h_t", torch.zeros(3, 5), (5, 3))
    with pytest.raises(CheckError, match=r"\(4,\), expected \(5, 3\)"):
        checks.check_shape("h_t", np.zeros(4), (5, 3))


def test_none_and_wrong_types_are_explained():
    with pytest.raises(CheckError, match="NoneType.*forget to `return`"):
        checks.check_shape("h_t", None, (2,))
    with pytest.raises(CheckError, match="is a list"):
        checks.check_shape("h_t", [1, 2], (2,))


def test_check_finite_points_at_the_first_bad_entry():
    checks.check_finite("x", np.ones(3))
    x = np.ones((2, 3))
    x[1, 2] = np.nan
    with pytest.raises(
        CheckError, match=r"1 non-finite value\(s\) \(NaN\), first at index \(1, 2\)"
    ):
        checks.check_finite("x", x)
    with pytest.raises(CheckError, match=r"\(inf\)"):
        checks.check_finite("x", torch.tensor([1.0, float("inf")]))


def test_check_dtype():
    checks.check_dtype("x", np.zeros(2, dtype=np.float64), np.float64)
    with pytest.raises(CheckError, match="dtype float32, expected float64"):
        checks.check_dtype("x", np.zeros(2, dtype=np.float32), np.float64)


def test_check_close_reports_where_and_how_much(capsys):
    checks.check_close("y", np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]))
    assert "[PASS] y matches the reference" in capsys.readouterr().out
    with pytest.raises(
        CheckError, match=r"max \|difference\| 0.5 at index \(1,\).*got 2.5, expected 2"
    ):
        checks.check_close("y", np.array([1.0, 2.5]), np.array([1.0, 2.0]))
    with pytest.raises(CheckError, match="has shape"):
        checks.check_close("y", np.zeros(3), np.zeros(2))
    with pytest.raises(CheckError, match="NaN"):
        checks.check_close("y", np.array([np.nan]), np.array([0.0]))


def test_numerical_gradient_matches_a_known_derivative():
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    grad = checks.numerical_gradient(lambda: float(np.sum(np.sin(x) * x)), x)
    assert checks.rel_error(grad, np.cos(x) * x + np.sin(x)) < 1e-8
    assert np.array_equal(x, [[0.3, -1.2], [2.0, 0.5]]), "x must be restored"
    with pytest.raises(TypeError, match="float64"):
        checks.numerical_gradient(lambda: 0.0, x.astype(np.float32))


def test_check_gradient_prints_threshold_and_diagnoses(capsys):
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    err = checks.check_gradient("dW", W * (1 + 1e-10), W)
    assert err < 1e-7
    assert "relative error" in capsys.readouterr().out
    with pytest.raises(CheckError, match="wrong sign"):
        checks.check_gradient("dW", -W, W)
    with pytest.raises(CheckError, match="transpose"):
        checks.check_gradient("dW", W.T, W)
    with pytest.raises(CheckError, match="all zeros"):
        checks.check_gradient("dW", np.zeros_like(W), W)


def test_check_scalar():
    assert checks.check_scalar("loss", torch.tensor(0.5), low=0) == 0.5
    with pytest.raises(CheckError, match="finite"):
        checks.check_scalar("loss", float("nan"))
    with pytest.raises(CheckError, match="at least 0"):
        checks.check_scalar("loss", -1.0, low=0)
    with pytest.raises(CheckError, match="single number"):
        checks.check_scalar("loss", np.zeros(3))


def test_run_safely_names_the_unfinished_function():
    def rnn_step_forward():
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match="rnn_step_forward is not implemented yet"):
        checks.run_safely(rnn_step_forward)
    assert checks.run_safely(lambda a: a + 1, 1) == 2
