"""utils.gradients: dL/dh_t through time for nn.* modules and step functions."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from utils.gradients import hidden_grad_norms, hidden_grads, last_step_loss


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------- utils.gradients
def _retain_grad_reference(module, X, batch_first):
    """dL/dh_t (top layer) by stepping the module with retain_grad and L = sum(h_T)."""
    h, states = None, []
    for t in range(X.shape[1]):
        x_t = X[:, t : t + 1] if batch_first else X[:, t : t + 1].transpose(0, 1)
        _, h = module(x_t, h)
        h_t = h[0] if isinstance(h, tuple) else h
        h_t.retain_grad()
        states.append(h_t)
    out, _ = module(X if batch_first else X.transpose(0, 1))
    out = out if batch_first else out.transpose(0, 1)
    torch.testing.assert_close(out[:, -1], states[-1][-1])  # stepping = one call
    states[-1][-1].sum().backward()
    module.zero_grad()
    return torch.stack([s.grad[-1] for s in states], dim=1)


@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU, nn.LSTM])
@pytest.mark.parametrize("batch_first", [True, False])
def test_hidden_grads_of_modules(cls, batch_first):
    torch.manual_seed(0)
    module = cls(2, 5, num_layers=2, batch_first=batch_first).double()
    X = torch.randn(3, 9, 2, dtype=torch.float64)
    G = hidden_grads(module, X)
    assert G.shape == (3, 9, 5)
    torch.testing.assert_close(G, _retain_grad_reference(module, X, batch_first))
    norms = hidden_grad_norms(module, X)
    assert norms.shape == (9,)
    torch.testing.assert_close(norms, G.transpose(0, 1).reshape(9, -1).norm(dim=1))
    assert all(p.grad is None for p in module.parameters())  # nothing accumulated


def test_hidden_grads_of_a_linear_step_function_are_powers():
    """h_t = h_{t-1} W with W = 0.5 I and L = sum(h_T): dL/dh_t = 0.5^(T-t) * ones."""
    W = (0.5 * torch.eye(3, dtype=torch.float64)).requires_grad_()
    X = torch.zeros(2, 6, 1, dtype=torch.float64)
    norms = hidden_grad_norms(lambda x_t, h: h @ W, X, h0=torch.ones(2, 3, dtype=torch.float64))
    expected = torch.tensor([0.5 ** (6 - t) for t in range(1, 7)], dtype=torch.float64) * math.sqrt(
        6
    )
    torch.testing.assert_close(norms, expected)


def test_hidden_grads_custom_loss_and_cell():
    torch.manual_seed(0)
    cell = nn.RNNCell(2, 4).double()
    X = torch.randn(3, 5, 2, dtype=torch.float64)
    h0 = torch.zeros(3, 4, dtype=torch.float64)
    G = hidden_grads(cell, X, h0=h0, loss_fn=lambda H: (H**2).sum())
    # with a loss on every step, the last gradient is 2 h_T
    h = h0
    for t in range(5):
        h = cell(X[:, t], h)
    torch.testing.assert_close(G[:, -1], 2 * h.detach())
    assert (G[:, 0].abs() > 0).any()


def test_cell_state_gradient_of_a_step_function():
    """c_t = 0.9 c_{t-1} + x_t W, h_t = tanh(c_t), L = sum(h_T): dL/dc_t = 0.9^(T-t) (1 - h_T^2)."""
    W = torch.randn(1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    W.requires_grad_()

    def step(x_t, state):
        _, c = state
        c = 0.9 * c + x_t @ W
        return torch.tanh(c), c

    X = torch.randn(2, 4, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    zeros = torch.zeros(2, 3, dtype=torch.float64)
    G = hidden_grads(step, X, h0=(zeros, zeros), state="c")
    c = zeros
    for t in range(4):
        c = 0.9 * c + X[:, t] @ W.detach()
    dL_dcT = 1 - torch.tanh(c) ** 2
    for t in range(4):
        torch.testing.assert_close(G[:, t], 0.9 ** (3 - t) * dL_dcT)


def test_last_step_loss():
    H = torch.arange(12.0).reshape(1, 3, 4)
    assert last_step_loss(H).item() == 8 + 9 + 10 + 11


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: hidden_grads(nn.RNN(2, 3, bidirectional=True), torch.randn(1, 4, 2)),
            ValueError,
            "bidirectional",
        ),
        (lambda: hidden_grads(nn.RNN(2, 3), torch.randn(4, 2)), ValueError, r"\(N, T, D\)"),
        (
            lambda: hidden_grads(nn.RNN(2, 3), torch.zeros(1, 4, 2, dtype=torch.long)),
            TypeError,
            "floating",
        ),
        (
            lambda: hidden_grads(nn.LSTM(2, 3), torch.randn(1, 4, 2), state="c"),
            ValueError,
            "fused kernel",
        ),
        (
            lambda: hidden_grads(nn.RNN(2, 3), torch.randn(1, 4, 2), state="x"),
            ValueError,
            "'h' or 'c'",
        ),
        (lambda: hidden_grads(nn.RNNCell(2, 3), torch.randn(1, 4, 2)), ValueError, "initial state"),
        (
            lambda: hidden_grads(nn.RNN(2, 3), torch.randn(1, 4, 2), loss_fn=lambda H: H),
            ValueError,
            "scalar",
        ),
        (lambda: hidden_grads(42, torch.randn(1, 4, 2)), TypeError, "step function"),
        (lambda: hidden_grads(nn.RNN(2, 3), [[1.0]]), TypeError, "torch.Tensor"),
    ],
)
def test_hidden_grads_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_hidden_grads_under_no_grad_says_why():
    with torch.no_grad(), pytest.raises(ValueError, match="no_grad"):
        hidden_grads(nn.RNN(2, 3, batch_first=True), torch.randn(1, 4, 2))
