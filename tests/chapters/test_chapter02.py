"""Chapter 2: BPTT through the hidden states, clipping, truncated BPTT.

The chapter's definitions (cells tagged ``defs``) are loaded from the notebook and
checked against independent computations: torch autograd with ``retain_grad``,
``torch.autograd.functional.jacobian`` and finite differences. Each equality is
also shown to reject a deliberately wrong version. Also tests ``utils.gradients``
and the chapter's widget function in ``utils.widgets``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tests.factories import notebook_namespace
from utils.checks import CheckError, check_close, numerical_gradient, rel_error

NOTEBOOK = "notebooks/02_bptt_and_gradients.ipynb"


@pytest.fixture(scope="module")
def ns():
    return notebook_namespace(NOTEBOOK)


def _instance(seed=1, T=12, D=3, H=4, scale=1.0):
    rng = np.random.default_rng(seed)
    return dict(
        X=rng.normal(size=(T, D)),
        h0=rng.normal(scale=0.5, size=H),
        W_xh=rng.normal(scale=0.5, size=(D, H)),
        W_hh=rng.normal(scale=scale / np.sqrt(H), size=(H, H)),
        b_h=rng.normal(scale=0.1, size=H),
        w=rng.normal(size=H),
    )


def _autograd_hidden_grads(p):
    """dL/dh_t for t = 0..T with L = h_T . w, by retain_grad (independent of the chapter)."""
    t = {k: torch.tensor(v) for k, v in p.items()}
    h = t["h0"].clone().requires_grad_()
    states = [h]
    for x_t in t["X"]:
        h = torch.tanh(x_t @ t["W_xh"] + h @ t["W_hh"] + t["b_h"])
        h.retain_grad()
        states.append(h)
    (h @ t["w"]).backward()
    return torch.stack([s.grad for s in states]).numpy()


# --------------------------------------------------------------------------- section 1: BPTT
def test_forward_matches_torch_rnn(ns):
    p = _instance()
    H_all = ns["rnn_forward_np"](p["X"], p["h0"], p["W_xh"], p["W_hh"], p["b_h"])
    assert H_all.shape == (13, 4)
    rnn = nn.RNN(3, 4, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(p["W_xh"].T))
        rnn.weight_hh_l0.copy_(torch.tensor(p["W_hh"].T))
        rnn.bias_ih_l0.copy_(torch.tensor(p["b_h"]))
        rnn.bias_hh_l0.zero_()
    out, _ = rnn(torch.tensor(p["X"])[None], torch.tensor(p["h0"])[None, None])
    np.testing.assert_allclose(H_all[1:], out[0].detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(H_all[0], p["h0"])


def test_forward_rejects_bad_shapes(ns):
    p = _instance()
    with pytest.raises(ValueError, match=r"X: \(T, D\)"):
        ns["rnn_forward_np"](p["X"][None], p["h0"], p["W_xh"], p["W_hh"], p["b_h"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hidden_grads_match_autograd(ns, seed):
    p = _instance(seed=seed, T=15)
    H_all = ns["rnn_forward_np"](p["X"], p["h0"], p["W_xh"], p["W_hh"], p["b_h"])
    G = ns["hidden_grads_np"](H_all, p["W_hh"], p["w"])
    assert G.shape == (16, 4)
    check_close("dL/dh_t", G, _autograd_hidden_grads(p), rtol=1e-10, atol=1e-13, quiet=True)


def test_step_jacobian_matches_autograd_jacobian(ns):
    p = _instance()
    h_prev = p["h0"]
    t = {k: torch.tensor(v) for k, v in p.items()}

    def step(h):
        return torch.tanh(t["X"][0] @ t["W_xh"] + h @ t["W_hh"] + t["b_h"])

    h_t = np.tanh(p["X"][0] @ p["W_xh"] + h_prev @ p["W_hh"] + p["b_h"])
    J_ref = torch.autograd.functional.jacobian(step, torch.tensor(h_prev)).numpy()
    np.testing.assert_allclose(
        ns["step_jacobian_np"](h_t, p["W_hh"]), J_ref, rtol=1e-12, atol=1e-14
    )


def test_hidden_grads_match_finite_differences(ns):
    p = _instance(T=5, scale=1.5)  # short and not too contractive: dL/dh_0 is measurable
    H_all = ns["rnn_forward_np"](p["X"], p["h0"], p["W_xh"], p["W_hh"], p["b_h"])
    G = ns["hidden_grads_np"](H_all, p["W_hh"], p["w"])
    h0 = p["h0"].copy()
    numeric = numerical_gradient(
        lambda: ns["rnn_forward_np"](p["X"], h0, p["W_xh"], p["W_hh"], p["b_h"])[-1] @ p["w"], h0
    )
    assert rel_error(G[0], numeric) < 1e-7


@pytest.mark.parametrize(
    "wrong",
    [
        lambda h_t, W_hh: np.diag(1.0 - h_t**2) @ W_hh,  # W_hh not transposed
        lambda h_t, W_hh: W_hh.T,  # tanh' forgotten
        lambda h_t, W_hh: np.diag(1.0 - np.tanh(h_t) ** 2) @ W_hh.T,  # tanh' of the wrong thing
    ],
)
def test_wrong_jacobian_is_detected(ns, wrong):
    """The comparison with autograd fails when the Jacobian is wrong (so it can fail)."""
    p = _instance(T=10)
    H_all = ns["rnn_forward_np"](p["X"], p["h0"], p["W_xh"], p["W_hh"], p["b_h"])
    reference = _autograd_hidden_grads(p)
    original = ns["step_jacobian_np"]
    ns["step_jacobian_np"] = wrong  # hidden_grads_np looks it up in the notebook namespace
    try:
        G_wrong = ns["hidden_grads_np"](H_all, p["W_hh"], p["w"])
    finally:
        ns["step_jacobian_np"] = original
    with pytest.raises(CheckError):
        check_close("dL/dh_t", G_wrong, reference, rtol=1e-6, atol=1e-10, quiet=True)


# --------------------------------------------------------------------------- section 3: clipping
def _regression_data(n=64, T=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, T, 1, generator=g)
    return X, X[:, -5:, 0].sum(dim=1)


def test_clip_by_norm_keeps_direction_and_by_value_turns_it(ns):
    X, Y = _regression_data()
    cos = {}
    for clip, threshold in [("norm", 0.5), ("value", 0.01)]:
        torch.manual_seed(0)
        model = ns["Forecaster"](hidden_size=8, spectral_radius=1.1)
        history = ns["train_forecaster"](
            model, X, Y, clip=clip, threshold=threshold, epochs=2, lr=0.05
        )
        assert len(history["loss"]) == 2 * 4  # 64 samples in batches of 16, 2 epochs
        assert all(math.isfinite(v) for v in history["loss"])
        cos[clip] = np.array(history["cosine"])
    np.testing.assert_allclose(cos["norm"], 1.0, atol=1e-5)
    assert cos["value"].min() < 0.99


def test_without_clipping_cosine_is_one_and_norm_is_recorded(ns):
    X, Y = _regression_data()
    torch.manual_seed(0)
    model = ns["Forecaster"](hidden_size=8)
    history = ns["train_forecaster"](model, X, Y, clip=None, epochs=1, lr=0.01)
    np.testing.assert_allclose(history["cosine"], 1.0, atol=1e-6)
    assert all(n > 0 for n in history["grad norm"])


def test_forecaster_spectral_radius(ns):
    torch.manual_seed(0)
    model = ns["Forecaster"](hidden_size=16, spectral_radius=1.2)
    rho = torch.linalg.eigvals(model.rnn.weight_hh_l0.detach()).abs().max().item()
    assert rho == pytest.approx(1.2, rel=1e-4)
    assert model(torch.zeros(3, 7, 1)).shape == (3,)


def test_train_forecaster_records_sigma_max_before_each_step(ns):
    """history["sigma max"][k] is sigma_max(W_hh) at the weights step k's gradient was taken at."""
    X, Y = _regression_data()
    torch.manual_seed(0)
    model = ns["Forecaster"](hidden_size=8, spectral_radius=1.2)
    snapshots = []
    model.register_forward_pre_hook(
        lambda m, args: snapshots.append(m.rnn.weight_hh_l0.detach().clone())
    )
    history = ns["train_forecaster"](model, X, Y, clip="norm", threshold=1.0, epochs=1, lr=0.05)
    assert history["sigma max"][0] == pytest.approx(1.2, rel=1e-5)  # orthogonal Q times 1.2
    expected = [torch.linalg.matrix_norm(W, 2).item() for W in snapshots]
    np.testing.assert_allclose(history["sigma max"], expected, rtol=1e-6)
    # the mutation: sigma_max read after optimizer.step() would record the next step's
    # weights, expected[1:]; the test tells the two apart
    assert not np.allclose(history["sigma max"][:-1], expected[1:], rtol=1e-6)


def test_train_forecaster_rejects_unknown_clip(ns):
    X, Y = _regression_data()
    with pytest.raises(ValueError, match="clip must be"):
        ns["train_forecaster"](ns["Forecaster"](), X, Y, clip="both")


# --------------------------------------------------------------------------- section 4: TBPTT
def _stream(T=61, seed=0):
    t = torch.arange(T, dtype=torch.float32)
    return (
        torch.sin(0.3 * t) + 0.1 * torch.randn(T, generator=torch.Generator().manual_seed(seed))
    ).reshape(1, T, 1)


def test_tbptt_without_detach_raises(ns):
    rnn, head, optimizer = ns["make_stream_model"](hidden_size=4)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        ns["tbptt_epoch"](rnn, head, _stream(), 10, optimizer, detach=False)


def test_tbptt_with_detach_trains(ns):
    rnn, head, optimizer = ns["make_stream_model"](hidden_size=8, lr=0.02)
    stream = _stream()
    losses = [ns["tbptt_epoch"](rnn, head, stream, 10, optimizer) for _ in range(30)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0]


def test_tbptt_single_chunk_is_full_bptt(ns):
    """With one chunk as long as the stream, truncated BPTT makes the full-BPTT update."""
    stream = _stream(T=21)
    rnn, head, optimizer = ns["make_stream_model"](hidden_size=4, lr=0.01)
    ref_rnn, ref_head, _ = ns["make_stream_model"](hidden_size=4)
    loss = ns["tbptt_epoch"](rnn, head, stream, 20, optimizer)
    H, _ = ref_rnn(stream[:, :-1])
    ref_loss = ((ref_head(H) - stream[:, 1:]) ** 2).mean()
    assert loss == pytest.approx(ref_loss.item(), rel=1e-6)
    ref_loss.backward()
    ref_opt = torch.optim.Adam([*ref_rnn.parameters(), *ref_head.parameters()], lr=0.01)
    ref_opt.step()
    for p, q in zip(rnn.parameters(), ref_rnn.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("num_steps", [0, -3, 2.5, True, [], [10, 10], [60, 0], [30, 30.0]])
def test_tbptt_rejects_bad_num_steps(ns, num_steps):
    rnn, head, optimizer = ns["make_stream_model"](hidden_size=4)
    with pytest.raises(ValueError, match="num_steps"):
        ns["tbptt_epoch"](rnn, head, _stream(), num_steps, optimizer)  # the stream has 60 steps


@pytest.mark.parametrize(("k", "expected"), [(25, [25, 25, 10]), (60, [60]), (7, [7] * 8 + [4])])
def test_chunk_lengths_of_an_int(ns, k, expected):
    assert ns["chunk_lengths"](k, 60) == expected


def test_tbptt_with_a_list_of_lengths_equals_the_int_version(ns):
    """[10] * 6 is what num_steps=10 does: the same losses and the same weights after."""
    stream = _stream()  # 60 steps of inputs
    a = ns["make_stream_model"](hidden_size=4)
    b = ns["make_stream_model"](hidden_size=4)
    loss_a = ns["tbptt_epoch"](*a[:2], stream, 10, a[2])
    loss_b = ns["tbptt_epoch"](*b[:2], stream, [10] * 6, b[2])
    assert loss_a == pytest.approx(loss_b, rel=1e-12)
    for p, q in zip(a[0].parameters(), b[0].parameters()):
        torch.testing.assert_close(p, q)
    # and other lengths make other updates (the list is used, not ignored)
    c = ns["make_stream_model"](hidden_size=4)
    ns["tbptt_epoch"](*c[:2], stream, [3, 50, 7], c[2])
    assert not torch.allclose(c[0].weight_hh_l0, a[0].weight_hh_l0)


# --------------------------------------------------------------------------- randomized truncation
def _segment_problems(random_segments, total=2_000, mean_length=25.0):
    """What is wrong with a random_segments function, as a list of strings (empty: nothing)."""
    problems = []

    def draw(seed):
        return random_segments(total, mean_length, np.random.default_rng(seed))

    first = draw(0)
    if sum(first) != total:
        problems.append(f"lengths sum to {sum(first)}, not {total}")
    if not all(isinstance(k, int) and k >= 1 for k in first):
        problems.append("a length is not a positive int")
    if draw(0) != first:
        problems.append("the same seed gave other lengths")
    if draw(1) == first or len(set(first)) < 5:
        problems.append("the lengths are not random")
    rng = np.random.default_rng(2)
    many = [k for _ in range(50) for k in random_segments(total, mean_length, rng)[:-1]]
    if abs(np.mean(many) - mean_length) > 0.05 * mean_length:  # the last (cut) one left out
        problems.append(f"mean length {np.mean(many):.1f}, asked {mean_length}")
    return problems


def test_random_segments_sum_to_total_are_seeded_and_have_the_mean_asked(ns):
    assert _segment_problems(ns["random_segments"]) == []
    assert _segment_problems(ns["random_segments"], total=249, mean_length=5) == []


@pytest.mark.parametrize("total,mean_length", [(1, 25), (249, 25), (30, 1), (100, 200)])
def test_random_segments_edge_cases(ns, total, mean_length):
    lengths = ns["random_segments"](total, mean_length, np.random.default_rng(0))
    assert sum(lengths) == total and min(lengths) >= 1
    if mean_length == 1:
        assert lengths == [1] * total  # geometric with p = 1 is always 1
    assert ns["chunk_lengths"](lengths, total) == lengths  # tbptt_epoch accepts them


def test_random_segments_rejects_bad_arguments(ns):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="total"):
        ns["random_segments"](0, 25, rng)
    with pytest.raises(ValueError, match="mean_length"):
        ns["random_segments"](100, 0.5, rng)


def _no_cut(total, mean_length, rng):  # the last segment is not cut to fit
    lengths = []
    while sum(lengths) < total:
        lengths.append(int(rng.geometric(1 / mean_length)))
    return lengths


def _unseeded(total, mean_length, rng):  # ignores the generator it is given
    return _cut(total, [int(k) for k in np.random.default_rng().geometric(1 / mean_length, total)])


def _fixed(total, mean_length, rng):  # regular truncation in disguise
    k = int(mean_length)
    return [k] * (total // k) + [total % k] * (total % k > 0)


def _wrong_mean(total, mean_length, rng):  # p = 1 / (2 * mean): twice as long on average
    return _cut(total, [int(k) for k in rng.geometric(1 / (2 * mean_length), total)])


def _cut(total, lengths):
    out = []
    for k in lengths:
        out.append(min(k, total - sum(out)))
        if sum(out) == total:
            return out
    return out


@pytest.mark.parametrize("mutant", [_no_cut, _unseeded, _fixed, _wrong_mean])
def test_segment_checks_catch_broken_versions(mutant):
    """The checks above can fail: each broken version is rejected."""
    assert _segment_problems(mutant) != []
