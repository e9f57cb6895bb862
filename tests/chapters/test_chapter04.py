"""Chapter 4 (GRU): the from-scratch cell equals nn.GRU, and the checks can fail.

The functions come from the cells tagged ``defs`` in notebooks/04_gru.ipynb.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.factories import notebook_namespace
from utils.checks import CheckError, check_close

NOTEBOOK = "notebooks/04_gru.ipynb"


@pytest.fixture(scope="module")
def ch4():
    return notebook_namespace(NOTEBOOK)


def _gru_and_batch(N=3, T=6, D=4, H=5, seed=0):
    torch.manual_seed(seed)
    gru = nn.GRU(D, H, batch_first=True).double()
    # Non-zero biases of both kinds, so b_hh inside the reset is exercised.
    with torch.no_grad():
        gru.bias_ih_l0.uniform_(-1, 1)
        gru.bias_hh_l0.uniform_(-1, 1)
    X = torch.randn(N, T, D, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(N, H, dtype=torch.float64, requires_grad=True)
    return gru, X, h0


@pytest.mark.parametrize("sizes", [(3, 6, 4, 5), (1, 1, 1, 1), (4, 9, 7, 2)])
def test_outputs_and_last_state_equal_nn_gru(ch4, sizes):
    N, T, D, H = sizes
    gru, X, h0 = _gru_and_batch(N, T, D, H)
    outputs_ref, h_n_ref = gru(X, h0[None])
    outputs, h_T = ch4["gru_forward"](X, h0, ch4["named_weights"](gru))
    assert outputs.shape == (N, T, H) and h_T.shape == (N, H)
    torch.testing.assert_close(outputs, outputs_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h_T, h_n_ref[0], rtol=1e-10, atol=1e-12)


def test_gradients_equal_nn_gru(ch4):
    gru, X, h0 = _gru_and_batch()
    G = torch.randn(3, 6, 5, dtype=torch.float64)
    wrt = [X, h0, *gru.parameters()]
    ref = torch.autograd.grad((G * gru(X, h0[None])[0]).sum(), wrt)
    params = ch4["named_weights"](gru)
    ours = torch.autograd.grad((G * ch4["gru_forward"](X, h0, params)[0]).sum(), wrt)
    for g, g_ref in zip(ours, ref):
        assert g.abs().sum() > 0
        torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-12)


def test_float32_matches_default_nn_gru(ch4):
    torch.manual_seed(1)
    gru = nn.GRU(3, 8, batch_first=True)
    X = torch.randn(2, 5, 3)
    h0 = torch.zeros(2, 8)
    outputs, _ = ch4["gru_forward"](X, h0, ch4["named_weights"](gru))
    torch.testing.assert_close(outputs, gru(X)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("order", ["zrn", "nzr", "rnz"])
def test_wrong_gate_order_is_detected(ch4, order):
    gru, X, h0 = _gru_and_batch()
    outputs_ref, _ = gru(X, h0[None])
    wrong, _ = ch4["gru_forward"](X, h0, ch4["named_weights"](gru, gate_order=order))
    assert (wrong - outputs_ref).abs().max() > 1e-3


def test_textbook_form_update_gate_is_a_renaming_but_reset_placement_is_not(ch4):
    gru, X, h0 = _gru_and_batch()
    with torch.no_grad():
        p_torch = ch4["named_weights"](gru)
        p_book = ch4["textbook_params"](p_torch)
        x_t = X[:, 0]
        _, Z_torch = ch4["gru_gates"](x_t, h0, p_torch)
        Z_book = torch.sigmoid(x_t @ p_book["W_xz"] + h0 @ p_book["W_hz"] + p_book["b_z"])
        torch.testing.assert_close(Z_book, 1 - Z_torch, rtol=1e-12, atol=1e-14)
        book, _ = ch4["gru_forward"](X, h0, p_book, cell=ch4["gru_cell_textbook"])
        ref, _ = gru(X, h0[None])
        assert (book - ref).abs().max() > 1e-3


def test_textbook_equals_pytorch_form_when_the_reset_gate_is_open(ch4):
    """With every reset gate exactly 1, where the reset sits cannot matter: both forms agree.

    This checks the rest of the textbook cell (update orientation, merged biases).
    """
    gru, X, h0 = _gru_and_batch()
    H = h0.shape[1]
    with torch.no_grad():
        gru.weight_ih_l0[:H] = 0.0
        gru.weight_hh_l0[:H] = 0.0
        gru.bias_ih_l0[:H] = 40.0  # sigmoid(40) rounds to 1.0 in float64
        gru.bias_hh_l0[:H] = 0.0
        p_book = ch4["textbook_params"](ch4["named_weights"](gru))
        book, _ = ch4["gru_forward"](X, h0, p_book, cell=ch4["gru_cell_textbook"])
        ref, _ = gru(X, h0[None])
    assert gru.bias_hh_l0[2 * H :].abs().min() > 0  # b_hh of the candidate is in play
    torch.testing.assert_close(book, ref, rtol=1e-10, atol=1e-12)


def _broken_cells(cell, gates):
    """Deliberately broken versions of the chapter's `gru_cell`: each one must be caught."""

    def update_flipped(x_t, h_prev, p):  # textbook orientation with PyTorch's weights
        _, Z_t = gates(x_t, h_prev, p)
        h_tilde = (cell(x_t, h_prev, p) - Z_t * h_prev) / (1 - Z_t)
        return (1 - Z_t) * h_prev + Z_t * h_tilde

    def reset_before_product(x_t, h_prev, p):  # R_t * h_prev inside the product
        R_t, Z_t = gates(x_t, h_prev, p)
        h_tilde = torch.tanh(x_t @ p["W_xh"] + p["b_xh"] + (R_t * h_prev) @ p["W_hh"] + p["b_hh"])
        return Z_t * h_prev + (1 - Z_t) * h_tilde

    return {"update flipped": update_flipped, "reset before product": reset_before_product}


@pytest.mark.parametrize("mutant", ["update flipped", "reset before product"])
def test_comparison_fails_for_a_broken_cell(ch4, mutant):
    """The equality the chapter asserts is not vacuous: break the cell and it fails."""
    gru, X, h0 = _gru_and_batch()
    outputs_ref, _ = gru(X, h0[None])
    params = ch4["named_weights"](gru)
    good, _ = ch4["gru_forward"](X, h0, params, cell=ch4["gru_cell"])
    check_close("outputs", good, outputs_ref, rtol=1e-10, atol=1e-12, quiet=True)
    broken = _broken_cells(ch4["gru_cell"], ch4["gru_gates"])[mutant]
    outputs, _ = ch4["gru_forward"](X, h0, params, cell=broken)
    with pytest.raises(CheckError, match="differs from the reference"):
        check_close("outputs", outputs, outputs_ref, rtol=1e-10, atol=1e-12, quiet=True)


def test_gru_forward_rejects_bad_shapes(ch4):
    params = ch4["named_weights"](nn.GRU(2, 3))
    with pytest.raises(ValueError, match=r"\(N, T, D\)"):
        ch4["gru_forward"](torch.randn(4, 2), torch.zeros(4, 3), params)
    with pytest.raises(ValueError, match=r"h0 must be \(N, H\)"):
        ch4["gru_forward"](torch.randn(4, 5, 2), torch.zeros(3, 3), params)
    with pytest.raises(ValueError, match=r"h0 must be \(N, H\) with N = 4, got shape \(1, 4, 3\)"):
        ch4["gru_forward"](torch.randn(4, 5, 2), torch.zeros(1, 4, 3), params)  # nn.GRU's layout


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("sizes", [(1, 1), (2, 32), (17, 5)])
def test_param_count_formula(ch4, kind, sizes):
    D, H = sizes
    module = getattr(nn, kind)(D, H)
    assert ch4["recurrent_param_count"](kind, D, H) == sum(p.numel() for p in module.parameters())


def test_param_count_rejects_unknown_kind(ch4):
    with pytest.raises(ValueError, match="kind must be one of"):
        ch4["recurrent_param_count"]("Transformer", 2, 3)
