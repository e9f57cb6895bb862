"""Chapter 1: the RNN written from scratch equals nn.RNN; the exploration widget behaves.

The NumPy and PyTorch RNNs are loaded from the cells of the chapter tagged ``defs``,
so these tests check the code students read, against ``nn.RNN`` with its weights read
by ``utils.checks.references.named_weights`` (as the chapter does).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from tests.factories import notebook_namespace
from utils.checks.references import named_weights

NOTEBOOK = "notebooks/01_sequences_and_rnns.ipynb"
SHAPES = [(1, 1, 1, 1), (2, 5, 3, 4), (3, 7, 5, 2), (4, 3, 2, 6)]  # (N, T, D, H)


@pytest.fixture(scope="module")
def ch1():
    return notebook_namespace(NOTEBOOK)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _reference(N, T, D, H, seed=0):
    """A float64 nn.RNN with nonzero biases, an input X: (N, T, D) and h0: (1, N, H)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    rnn = nn.RNN(D, H, batch_first=True, dtype=torch.float64)
    X = torch.randn(N, T, D, dtype=torch.float64, generator=g)
    h0 = torch.randn(1, N, H, dtype=torch.float64, generator=g)
    return rnn, X, h0


def _numpy_weights(rnn):
    """W_xh: (D, H), W_hh: (H, H), b_h: (H,) of rnn as NumPy arrays, read as the chapter reads them."""
    named = named_weights(rnn)
    return tuple(named[k].detach().numpy() for k in ("W_xh", "W_hh", "b_h"))


def _scratch_from(ch1, rnn):
    """The chapter's ScratchRNN holding rnn's weights: load_state_dict(named_weights(rnn))."""
    scratch = ch1["ScratchRNN"](rnn.input_size, rnn.hidden_size).to(rnn.weight_hh_l0.dtype)
    scratch.load_state_dict(named_weights(rnn))
    return scratch


# --- the NumPy RNN ---------------------------------------------------------------------


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_numpy_rnn_equals_nn_rnn(ch1, N, T, D, H):
    rnn, X, h0 = _reference(N, T, D, H)
    outputs, h_n = rnn(X, h0)
    W_xh, W_hh, b_h = _numpy_weights(rnn)
    assert W_xh.shape == (D, H) and W_hh.shape == (H, H) and b_h.shape == (H,)
    states = ch1["rnn_forward_np"](X.numpy(), h0[0].numpy(), W_xh, W_hh, b_h)
    assert states.shape == (N, T, H)
    np.testing.assert_allclose(states, outputs.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(states[:, -1], h_n[0].detach().numpy(), rtol=1e-12, atol=1e-12)


def test_named_weights_are_the_chapter_bookkeeping():
    """W_xh = weight_ih_l0.T, W_hh = weight_hh_l0.T, b_h = bias_ih_l0 + bias_hh_l0 (the prose of section 2)."""
    rnn, _, _ = _reference(1, 1, 3, 4)
    W_xh, W_hh, b_h = _numpy_weights(rnn)
    np.testing.assert_array_equal(W_xh, rnn.weight_ih_l0.detach().numpy().T)
    np.testing.assert_array_equal(W_hh, rnn.weight_hh_l0.detach().numpy().T)
    np.testing.assert_array_equal(b_h, (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().numpy())


def test_numpy_step_is_one_step_of_the_layer(ch1):
    rnn, X, h0 = _reference(3, 1, 4, 5)
    outputs, _ = rnn(X, h0)
    W_xh, W_hh, b_h = _numpy_weights(rnn)
    h_1 = ch1["rnn_step_np"](X[:, 0].numpy(), h0[0].numpy(), W_xh, W_hh, b_h)
    np.testing.assert_allclose(h_1, outputs[:, 0].detach().numpy(), rtol=1e-12, atol=1e-12)


def test_the_comparison_catches_an_untransposed_w_hh(ch1):
    """The equality above is not vacuous: W_hh used as stored by PyTorch gives other states."""
    rnn, X, h0 = _reference(2, 6, 3, 4)
    outputs, _ = rnn(X, h0)
    W_xh, W_hh, b_h = _numpy_weights(rnn)
    wrong = ch1["rnn_forward_np"](X.numpy(), h0[0].numpy(), W_xh, W_hh.T, b_h)
    assert not np.allclose(wrong, outputs.detach().numpy(), rtol=1e-6, atol=1e-6)


# --- the concatenated form: tanh([x_t, h_{t-1}] W + b_h) with W = [W_xh; W_hh] ------------


def _concat_instance(N=3, D=2, H=5, seed=0):
    rnn, X, h0 = _reference(N, 1, D, H, seed=seed)
    W_xh, W_hh, b_h = _numpy_weights(rnn)
    return X[:, 0].numpy(), h0[0].numpy(), W_xh, W_hh, b_h


@pytest.mark.parametrize("N,D,H", [(1, 1, 1), (3, 2, 5), (2, 4, 4), (4, 6, 3)])
def test_concatenated_step_equals_the_two_products(ch1, N, D, H):
    x_t, h_prev, W_xh, W_hh, b_h = _concat_instance(N, D, H)
    W = np.concatenate([W_xh, W_hh], axis=0)  # (D + H, H), as the chapter stacks it
    h_t = ch1["rnn_step_concat_np"](x_t, h_prev, W, b_h)
    assert h_t.shape == (N, H)
    np.testing.assert_allclose(
        h_t, ch1["rnn_step_np"](x_t, h_prev, W_xh, W_hh, b_h), rtol=1e-12, atol=1e-12
    )
    # and both equal one step of nn.RNN
    rnn, X, h0 = _reference(N, 1, D, H)
    outputs, _ = rnn(X, h0)
    np.testing.assert_allclose(h_t, outputs[:, 0].detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("D,H", [(3, 4), (4, 4), (2, 6)])
def test_concatenated_step_catches_blocks_stacked_in_the_wrong_order(ch1, D, H):
    """The mutation: [W_hh; W_xh] has the same shape (D + H, H) but computes something else."""
    x_t, h_prev, W_xh, W_hh, b_h = _concat_instance(3, D, H)
    W_swapped = np.concatenate([W_hh, W_xh], axis=0)
    assert W_swapped.shape == (D + H, H)
    wrong = ch1["rnn_step_concat_np"](x_t, h_prev, W_swapped, b_h)
    right = ch1["rnn_step_np"](x_t, h_prev, W_xh, W_hh, b_h)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(wrong, right, rtol=1e-6, atol=1e-6)


def test_concatenated_step_catches_the_inputs_concatenated_in_the_wrong_order(ch1):
    """The other half of the mutation: W stacked right, [h_{t-1}, x_t] fed (D = H so it runs)."""
    x_t, h_prev, W_xh, W_hh, b_h = _concat_instance(3, 4, 4)
    W = np.concatenate([W_xh, W_hh], axis=0)
    wrong = ch1["rnn_step_concat_np"](h_prev, x_t, W, b_h)
    assert not np.allclose(wrong, ch1["rnn_step_np"](x_t, h_prev, W_xh, W_hh, b_h), atol=1e-6)


@pytest.mark.parametrize(
    "X_shape,h0_shape,match",
    [((2, 5), (2, 4), "X must have shape"), ((2, 5, 7), (2, 4), "D=3"), ((2, 5, 3), (3, 4), "h0")],
)
def test_numpy_rnn_rejects_bad_shapes(ch1, X_shape, h0_shape, match):
    W_xh, W_hh, b_h = np.zeros((3, 4)), np.zeros((4, 4)), np.zeros(4)
    with pytest.raises(ValueError, match=match):
        ch1["rnn_forward_np"](np.zeros(X_shape), np.zeros(h0_shape), W_xh, W_hh, b_h)


# --- the PyTorch RNN -------------------------------------------------------------------


@pytest.mark.parametrize("N,T,D,H", SHAPES)
@pytest.mark.parametrize("with_h0", [True, False])
def test_scratch_rnn_equals_nn_rnn_outputs_and_gradients(ch1, N, T, D, H, with_h0):
    rnn, X, h0 = _reference(N, T, D, H)
    scratch = _scratch_from(ch1, rnn)
    X_ref, X_s = X.clone().requires_grad_(), X.clone().requires_grad_()
    h0_ref, h0_s = h0.clone().requires_grad_(), h0[0].clone().requires_grad_()
    if with_h0:
        outputs, h_n = rnn(X_ref, h0_ref)
        outputs_s, h_T = scratch(X_s, h0_s)
    else:
        outputs, h_n = rnn(X_ref)
        outputs_s, h_T = scratch(X_s)
    torch.testing.assert_close(outputs_s, outputs)
    torch.testing.assert_close(h_T, h_n[0])

    weights = torch.randn(N, T, H, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ((outputs * weights).sum() + h_n.sum()).backward()
    ((outputs_s * weights).sum() + h_T.sum()).backward()
    torch.testing.assert_close(scratch.W_xh.grad, rnn.weight_ih_l0.grad.T)
    torch.testing.assert_close(scratch.W_hh.grad, rnn.weight_hh_l0.grad.T)
    torch.testing.assert_close(scratch.b_h.grad, rnn.bias_ih_l0.grad)
    torch.testing.assert_close(scratch.b_h.grad, rnn.bias_hh_l0.grad)
    torch.testing.assert_close(X_s.grad, X_ref.grad)
    if with_h0:
        torch.testing.assert_close(h0_s.grad, h0_ref.grad[0])


def test_scratch_rnn_copies_weights_and_keeps_them_separate(ch1):
    rnn, _, _ = _reference(1, 1, 3, 4)
    scratch = _scratch_from(ch1, rnn)
    assert scratch.W_xh.dtype == torch.float64
    torch.testing.assert_close(
        scratch.b_h, rnn.bias_ih_l0 + rnn.bias_hh_l0
    )  # the two biases, summed
    with torch.no_grad():
        scratch.W_hh.add_(1.0)  # a copy, not a view of nn.RNN's weights
    assert not torch.allclose(scratch.W_hh, rnn.weight_hh_l0.T)


def test_scratch_rnn_fresh_parameters(ch1):
    torch.manual_seed(0)
    model = ch1["ScratchRNN"](input_size=3, hidden_size=5)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes == {"W_xh": (3, 5), "W_hh": (5, 5), "b_h": (5,)}
    bound = 5**-0.5
    assert model.W_hh.abs().max() <= bound and model.W_hh.std() > 0
    outputs, h_T = model(torch.randn(2, 4, 3))
    assert outputs.shape == (2, 4, 5) and h_T.shape == (2, 5)
    assert outputs.abs().max() < 1  # tanh


def test_scratch_rnn_parameters_carry_the_names_of_named_weights(ch1):
    """load_state_dict(named_weights(rnn)) works because the names are the same: nothing missing, nothing extra."""
    rnn, _, _ = _reference(1, 1, 3, 4)
    scratch = ch1["ScratchRNN"](3, 4).double()
    result = scratch.load_state_dict(named_weights(rnn))
    assert not result.missing_keys and not result.unexpected_keys


def test_scratch_rnn_comparison_catches_a_forgotten_bias(ch1):
    """The mutation: b_h = bias_ih_l0 alone (bias_hh_l0 forgotten) gives other outputs."""
    rnn, X, h0 = _reference(2, 4, 3, 5)
    named = dict(named_weights(rnn))
    named["b_h"] = rnn.bias_ih_l0
    scratch = ch1["ScratchRNN"](3, 5).double()
    scratch.load_state_dict(named)
    outputs, _ = rnn(X, h0)
    outputs_s, _ = scratch(X, h0[0])
    with pytest.raises(AssertionError):
        torch.testing.assert_close(outputs_s, outputs)


@pytest.mark.parametrize("shape", [(2, 5), (2, 5, 4)])
def test_scratch_rnn_rejects_bad_input(ch1, shape):
    model = ch1["ScratchRNN"](input_size=3, hidden_size=5)
    with pytest.raises(ValueError, match=r"X must have shape \(N, T, D=3\)"):
        model(torch.zeros(shape))
