"""Chapter 3 (LSTM): the from-scratch cell equals nn.LSTM, and the checks can fail.

The definitions come from the notebook's cells tagged ``defs``
(``tests.factories.notebook_namespace``), so these tests check the code the chapter shows.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.factories import notebook_namespace
from utils.checks import CheckError, check_close

NB = "notebooks/03_lstm.ipynb"


@pytest.fixture(scope="module")
def ns():
    return notebook_namespace(NB)


def test_from_scratch_lstm_equals_nn_lstm_outputs_and_gradients(ns):
    for seed, sizes in ((0, {}), (1, {"N": 2, "T": 11, "D": 3, "hidden_size": 7})):
        mine, ref = ns["compare_with_nn_lstm"](seed=seed, **sizes)
        assert set(mine) == set(ref)
        assert mine["H"].dtype == torch.float64
        for name in mine:
            check_close(name, mine[name], ref[name], rtol=1e-10, atol=1e-12, quiet=True)
        # the gradients are not trivially zero
        assert mine["dW_hh"].abs().max() > 1e-3 and mine["dX"].abs().max() > 1e-3


@pytest.mark.parametrize("gate_order", ["ifog", "figo", "igfo", "oifg"])
def test_wrong_gate_order_is_detected(ns, gate_order):
    mine, ref = ns["compare_with_nn_lstm"](gate_order=gate_order)
    with pytest.raises(CheckError, match="differs from the reference"):
        check_close("H", mine["H"], ref["H"], rtol=1e-10, atol=1e-12, quiet=True)
    assert (mine["H"] - ref["H"]).abs().max() > 1e-3


def test_lstm_cell_equals_nn_lstmcell_independently(ns):
    """One step against nn.LSTMCell, whose weights are read by hand, not by `named_weights`."""
    torch.manual_seed(3)
    D, H, N = 3, 4, 5
    cell = nn.LSTMCell(D, H).double()
    x_t = torch.randn(N, D, dtype=torch.float64)
    h_prev = torch.randn(N, H, dtype=torch.float64)
    c_prev = torch.randn(N, H, dtype=torch.float64)
    W_ih, W_hh = cell.weight_ih.detach(), cell.weight_hh.detach()
    b = (cell.bias_ih + cell.bias_hh).detach()
    params = {}
    for k, name in enumerate(("i", "f", "c", "o")):  # PyTorch rows: i, f, g, o
        rows = slice(k * H, (k + 1) * H)
        params[f"W_x{name}"] = W_ih[rows].T
        params[f"W_h{name}"] = W_hh[rows].T
        params[f"b_{name}"] = b[rows]
    h_t, c_t, gates = ns["lstm_cell"](x_t, h_prev, c_prev, params)
    h_ref, c_ref = cell(x_t, (h_prev, c_prev))
    torch.testing.assert_close(h_t, h_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c_t, c_ref, rtol=1e-12, atol=1e-12)
    assert set(gates) == {"I", "F", "O", "C_tilde"}
    for name in ("I", "F", "O"):
        assert gates[name].shape == (N, H) and 0 < gates[name].min() and gates[name].max() < 1
    # c_t is the additive update of the gates it returns
    torch.testing.assert_close(c_t, gates["F"] * c_prev + gates["I"] * gates["C_tilde"])


def test_lstm_forward_shapes_gates_and_zero_state(ns):
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 6, batch_first=True)
    X = torch.randn(4, 9, 2)
    H, (h_T, c_T), gates = ns["lstm_forward"](X, ns["named_weights"](lstm))
    assert H.shape == (4, 9, 6) and h_T.shape == (4, 6) and c_T.shape == (4, 6)
    assert set(gates) == {"I", "F", "O", "C_tilde", "c"}
    assert all(g.shape == (4, 9, 6) for g in gates.values())
    torch.testing.assert_close(H[:, -1], h_T)
    torch.testing.assert_close(gates["c"][:, -1], c_T)
    with torch.no_grad():
        H_ref, _ = lstm(X)  # zero initial state
    torch.testing.assert_close(H.detach(), H_ref, rtol=1e-5, atol=1e-6)


def _broken_cells(cell):
    """Deliberately broken versions of the chapter's `lstm_cell`: each one must be caught."""

    def no_tanh_on_c(x_t, h_prev, c_prev, p):  # h_t = O_t * c_t
        _, c_t, g = cell(x_t, h_prev, c_prev, p)
        return g["O"] * c_t, c_t, g

    def swapped_f_and_i(x_t, h_prev, c_prev, p):  # c_t = I_t * c_prev + F_t * C_tilde
        _, _, g = cell(x_t, h_prev, c_prev, p)
        c_t = g["I"] * c_prev + g["F"] * g["C_tilde"]
        return g["O"] * torch.tanh(c_t), c_t, g

    return {"no tanh on c_t": no_tanh_on_c, "F and I swapped": swapped_f_and_i}


@pytest.mark.parametrize("mutant", ["no tanh on c_t", "F and I swapped"])
def test_comparison_fails_for_a_broken_cell(ns, monkeypatch, mutant):
    """The equality the chapter asserts is not vacuous: break the cell and it fails."""
    broken = _broken_cells(ns["lstm_cell"])[mutant]
    monkeypatch.setitem(ns, "lstm_cell", broken)  # lstm_forward looks the cell up here
    mine, ref = ns["compare_with_nn_lstm"]()
    for name in ("H", "dW_hh"):
        with pytest.raises(CheckError, match="differs from the reference"):
            check_close(name, mine[name], ref[name], rtol=1e-10, atol=1e-12, quiet=True)


def test_named_weights_are_views_and_gradients_stack_back(ns):
    """The chapter differentiates through `named_weights` views and stacks with `torch_layout`."""
    mine, ref = ns["compare_with_nn_lstm"](seed=2)
    for name in ("dW_ih", "dW_hh", "db_ih", "db_hh"):
        assert mine[name].shape == ref[name].shape
        torch.testing.assert_close(mine[name], ref[name], rtol=1e-10, atol=1e-12)
    lstm = nn.LSTM(3, 4)
    named = ns["named_weights"](lstm)
    assert named["W_xi"].shape == (3, 4) and named["W_hc"].shape == (4, 4)
    named["W_xf"].sum().backward()  # a view: the gradient lands in the module's f block
    expected = torch.zeros(16, 3)
    expected[4:8] = 1.0
    torch.testing.assert_close(lstm.weight_ih_l0.grad, expected)


def test_bad_inputs_give_clear_errors(ns):
    lstm_forward = ns["lstm_forward"]
    params = ns["named_weights"](nn.LSTM(2, 3))
    with pytest.raises(ValueError, match=r"shape \(N, T, D\)"):
        lstm_forward(torch.randn(4, 2), params)
    with pytest.raises(ValueError, match="3 features per step, but W_xi expects D = 2"):
        lstm_forward(torch.randn(4, 5, 3), params)
    h0 = torch.zeros(1, 4, 3)  # nn.LSTM's layout, not the cell's
    with pytest.raises(ValueError, match=r"h_0 has shape \(1, 4, 3\).*pass h_0\[0\]"):
        lstm_forward(torch.randn(4, 5, 2), params, (h0, h0))
    with pytest.raises(ValueError, match=r"c_0 has shape \(4, 2\)"):
        lstm_forward(torch.randn(4, 5, 2), params, (torch.zeros(4, 3), torch.zeros(4, 2)))
    with pytest.raises(ValueError, match=r"shape \(N, T, D\), got list"):
        lstm_forward([[1.0]], params)
    with pytest.raises(TypeError, match="needs an nn.LSTM, got RNN"):
        ns["set_forget_bias"](nn.RNN(2, 3), 1.0)
    with pytest.raises(ValueError, match="bias=False"):
        ns["set_forget_bias"](nn.LSTM(2, 3, bias=False), 1.0)
    with pytest.raises(ValueError, match="'rnn' or 'lstm', got 'gru'"):
        ns["LastStepRegressor"]("gru")


def test_set_forget_bias_sets_only_b_f(ns):
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 5, num_layers=2)
    before = ns["named_weights"](nn.LSTM(2, 5))  # shapes only
    old = {n: p.detach().clone() for n, p in lstm.named_parameters()}
    assert ns["set_forget_bias"](lstm, 3.0) is lstm
    H = 5
    for name, p in lstm.named_parameters():
        if name.startswith("bias"):
            total_f = p[H : 2 * H]
            other = torch.cat([p[:H], p[2 * H :]])
            torch.testing.assert_close(other, torch.cat([old[name][:H], old[name][2 * H :]]))
            assert torch.all(total_f == (3.0 if name.startswith("bias_ih") else 0.0))
        else:
            torch.testing.assert_close(p.detach(), old[name])
    # through the equations: b_f = bias_ih + bias_hh in the forget block
    one_layer = ns["set_forget_bias"](nn.LSTM(2, 5), 2.5)
    b_f = ns["named_weights"](one_layer)["b_f"]
    assert b_f.shape == before["b_f"].shape
    torch.testing.assert_close(b_f.detach(), torch.full((5,), 2.5))
    # and the forget gate of a zero input and state is then sigmoid(2.5)
    _, _, gates = ns["lstm_forward"](torch.zeros(1, 1, 2), ns["named_weights"](one_layer))
    torch.testing.assert_close(gates["F"].detach(), torch.sigmoid(torch.full((1, 1, 5), 2.5)))


def test_last_step_regressor_and_training_loop(ns):
    torch.manual_seed(0)
    for cell, n_params in (
        ("rnn", 32 * (2 + 32) + 2 * 32 + 33),
        ("lstm", 4 * 32 * 34 + 8 * 32 + 33),
    ):
        model = ns["LastStepRegressor"](cell)
        assert sum(p.numel() for p in model.parameters()) == n_params
        assert model(torch.randn(5, 7, 2)).shape == (5,)
    lstm_model = ns["LastStepRegressor"]("lstm", forget_bias=1.0)
    torch.testing.assert_close(ns["named_weights"](lstm_model.rnn)["b_f"].detach(), torch.ones(32))
    X, Y = ns["adding_problem"](64, 10, seed=0)
    before = [p.detach().clone() for p in lstm_model.parameters()]
    hist = ns["train_regressor"](
        lstm_model, X, Y, X[:16], Y[:16], steps=7, batch_size=16, eval_every=3
    )
    assert hist["step"] == [3, 6, 7]
    assert len(hist["train loss"]) == len(hist["val loss"]) == 3
    assert all(v > 0 for v in hist["val loss"])
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, lstm_model.parameters()))


def test_forget_bias_keeps_the_gradient_alive(ns):
    """The claim of Section 4, on a short sequence: a larger b_f, a flatter gradient."""
    from utils.gradients import hidden_grad_norms

    X, _ = ns["adding_problem"](1, 30, seed=123)
    ratios = {}
    for b_f in (0.0, 1.0, 3.0):
        torch.manual_seed(0)
        lstm = ns["set_forget_bias"](nn.LSTM(2, 16, batch_first=True), b_f)
        norms = hidden_grad_norms(lstm, X)
        ratios[b_f] = (norms[0] / norms[-1]).item()
    assert ratios[0.0] < ratios[1.0] < ratios[3.0]
    assert ratios[3.0] > 100 * ratios[0.0]
