"""utils.checks.references: nn.RNN/LSTM/GRU weights under the equations' names, and back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from utils.checks.references import (
    kind_of,
    linear_weights,
    load_named_weights,
    named_weights,
    rnn_from_weights,
    torch_layout,
)

torch.manual_seed(0)
N, T, D, H = 3, 5, 4, 6


def rnn_eq(X, h, p):
    return torch.tanh(X @ p["W_xh"] + h @ p["W_hh"] + p["b_h"])


def lstm_eq(x, h, c, p):
    gate = {g: x @ p[f"W_x{g}"] + h @ p[f"W_h{g}"] + p[f"b_{g}"] for g in "ifco"}
    I_t, F_t, O_t = (torch.sigmoid(gate[g]) for g in "ifo")
    c = F_t * c + I_t * torch.tanh(gate["c"])
    return O_t * torch.tanh(c), c


def gru_eq(x, h, p):
    R_t = torch.sigmoid(x @ p["W_xr"] + h @ p["W_hr"] + p["b_r"])
    Z_t = torch.sigmoid(x @ p["W_xz"] + h @ p["W_hz"] + p["b_z"])
    h_tilde = torch.tanh(x @ p["W_xh"] + p["b_xh"] + R_t * (h @ p["W_hh"] + p["b_hh"]))
    return (1 - Z_t) * h_tilde + Z_t * h


def run(step, X, *state):
    outs = []
    for t in range(X.shape[1]):
        state = step(X[:, t], *state)
        state = state if isinstance(state, tuple) else (state,)
        outs.append(state[0])
    return torch.stack(outs, 1)


STEPS = {nn.RNN: (rnn_eq, 1), nn.GRU: (gru_eq, 1), nn.LSTM: (lstm_eq, 2)}


@pytest.mark.parametrize("cls", list(STEPS), ids=lambda c: c.__name__)
def test_the_equations_with_named_weights_equal_a_deep_bidirectional_module(cls):
    """Every layer and direction read by named_weights reproduces the module's output."""
    step, n_states = STEPS[cls]
    m = cls(D, H, num_layers=2, bidirectional=True, batch_first=True).double()
    X = torch.randn(N, T, D, dtype=torch.float64)

    def direction(inp, layer, reverse):
        p = named_weights(m, layer, reverse=reverse)
        h = [torch.zeros(N, H, dtype=torch.float64)] * n_states
        seq = inp.flip(1) if reverse else inp
        out = run(lambda x, *s: step(x, *s, p), seq, *h)
        return out.flip(1) if reverse else out

    layer0 = torch.cat([direction(X, 0, False), direction(X, 0, True)], dim=-1)
    layer1 = torch.cat([direction(layer0, 1, False), direction(layer0, 1, True)], dim=-1)
    torch.testing.assert_close(layer1, m(X)[0])


def test_gradients_stack_back_into_the_module_layout():
    lstm = nn.LSTM(D, H, batch_first=True).double()
    X = torch.randn(N, T, D, dtype=torch.float64)
    lstm(X)[0].sum().backward()
    p = {k: v.detach().requires_grad_() for k, v in named_weights(lstm).items()}
    run(
        lambda x, h, c: lstm_eq(x, h, c, p), X, *[torch.zeros(N, H, dtype=torch.float64)] * 2
    ).sum().backward()
    layout = torch_layout("LSTM", {k: v.grad for k, v in p.items()})
    torch.testing.assert_close(layout["weight_ih"], lstm.weight_ih_l0.grad)
    torch.testing.assert_close(layout["weight_hh"], lstm.weight_hh_l0.grad)
    torch.testing.assert_close(layout["bias_ih"], lstm.bias_ih_l0.grad)  # the summed bias


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU, nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_load_is_the_inverse_of_read(cls):
    source, target = cls(D, H).double(), cls(D, H).double()
    load_named_weights(target, {k: v.detach() for k, v in named_weights(source).items()})
    for (k, a), b in zip(named_weights(source).items(), named_weights(target).values()):
        torch.testing.assert_close(a, b, msg=k)


def test_a_wrong_gate_order_gives_other_weights_and_bad_orders_are_refused():
    gru = nn.GRU(D, H)
    right, wrong = named_weights(gru), named_weights(gru, gate_order="zrn")
    assert torch.equal(right["W_xr"], wrong["W_xz"]) and not torch.equal(
        right["W_xr"], wrong["W_xr"]
    )
    with pytest.raises(ValueError, match="permutation of 'rzn'"):
        named_weights(gru, gate_order="rzz")


def test_rnn_from_weights_builds_the_module_of_the_equations():
    W_xh, W_hh, b_h = torch.randn(D, H), torch.randn(H, H) * 0.3, torch.randn(H)
    X = torch.randn(N, T, D, dtype=torch.float64)
    rnn = rnn_from_weights(W_xh.numpy(), W_hh.numpy(), b_h.numpy())
    p = {"W_xh": W_xh.double(), "W_hh": W_hh.double(), "b_h": b_h.double()}
    want = run(lambda x, h: rnn_eq(x, h, p), X, torch.zeros(N, H, dtype=torch.float64))
    torch.testing.assert_close(rnn(X)[0], want)
    cell = rnn_from_weights(W_xh, W_hh, b_h, cell=True)
    assert isinstance(cell, nn.RNNCell) and cell.weight_ih.dtype == torch.float64


def test_linear_weights_follow_the_row_convention():
    lin = nn.Linear(D, 2)
    x = torch.randn(N, D)
    p = linear_weights(lin)
    torch.testing.assert_close(x @ p["W"] + p["b"], lin(x))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: kind_of(nn.Linear(2, 2)), TypeError, "expected nn.RNN, nn.LSTM or nn.GRU"),
        (lambda: named_weights(nn.RNN(2, 3), 1), ValueError, "layer 1 does not exist"),
        (lambda: named_weights(nn.RNN(2, 3), reverse=True), ValueError, "bidirectional"),
        (lambda: named_weights(nn.RNNCell(2, 3), reverse=True), ValueError, "one direction"),
        (lambda: named_weights(nn.LSTM(2, 3, proj_size=1)), ValueError, "proj_size"),
        (lambda: torch_layout("TCN", {}), ValueError, "kind must be one of"),
        (lambda: torch_layout("RNN", {"W_xh": torch.zeros(2, 3)}), KeyError, "W_hh"),
        (lambda: load_named_weights(nn.RNN(2, 3, bias=False), {}), ValueError, "with biases"),
        (
            lambda: load_named_weights(nn.RNN(2, 3), {"W_xh": torch.zeros(4, 3), "W_hh": torch.zeros(3, 3), "b_h": torch.zeros(3)}),
            ValueError,
            "check D and H",
        ),
    ],
)  # fmt: skip
def test_errors_say_what_is_wrong(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_module_without_biases_reads_zero_biases():
    p = named_weights(nn.GRU(D, H, bias=False))
    assert all(float(p[k].abs().sum()) == 0 for k in ("b_r", "b_z", "b_xh", "b_hh"))
