"""Chapter 5 (RNN modules in practice): the from-scratch bidirectional and stacked RNNs equal
nn.RNN, packing equals padding-and-masking, helpers, timing.

The functions come from the cells tagged ``defs`` in
notebooks/05_rnn_modules_in_practice.ipynb; the mutation tests run the same cells with one
deliberate bug each and show the equality checks catch it. ``utils.timing`` is tested at the end.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

from tests.factories import mutated_namespace, notebook_namespace
from utils.checks.references import named_weights

NOTEBOOK = "notebooks/05_rnn_modules_in_practice.ipynb"


@pytest.fixture(scope="module")
def ch5():
    return notebook_namespace(NOTEBOOK)


def _mutant(old: str, new: str) -> dict:
    """The notebook's ``defs`` cells with ``old`` (found exactly once) replaced by ``new``."""
    return mutated_namespace(NOTEBOOK, old, new)


def _check_birnn(ns, N=3, T=6, D=4, H=5, seed=0):
    """Assert ``birnn_layer`` equals ``nn.RNN(bidirectional=True)`` with the same weights."""
    torch.manual_seed(seed)
    rnn = nn.RNN(D, H, batch_first=True, bidirectional=True).double()
    X = torch.randn(N, T, D, dtype=torch.float64)
    with torch.no_grad():
        out_ref, h_n_ref = rnn(X)
        fwd, bwd = named_weights(rnn, 0), named_weights(rnn, 0, reverse=True)
        out, h_n = ns["birnn_layer"](X, fwd, bwd)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_n, h_n_ref, rtol=1e-12, atol=1e-12)
    return out, h_n


def _check_stack(ns, N=3, T=6, D=5, H=5, num_layers=2, seed=0):
    """Assert ``stacked_rnn`` equals ``nn.RNN(num_layers=...)``; D = H so a wrong input still fits."""
    torch.manual_seed(seed)
    rnn = nn.RNN(D, H, num_layers=num_layers, batch_first=True).double()
    X = torch.randn(N, T, D, dtype=torch.float64)
    with torch.no_grad():
        out_ref, h_n_ref = rnn(X)
        layers = [named_weights(rnn, layer) for layer in range(num_layers)]
        out, h_n = ns["stacked_rnn"](X, layers)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_n, h_n_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sizes", [(3, 6, 4, 5), (1, 1, 1, 1), (2, 9, 7, 2)])
def test_birnn_from_scratch_equals_nn_rnn(ch5, sizes):
    N, T, D, H = sizes
    out, h_n = _check_birnn(ch5, N, T, D, H)
    assert out.shape == (N, T, 2 * H) and h_n.shape == (2, N, H)
    # h_n[0]: forward after x_T (last step), h_n[1]: backward after x_1 (first step)
    assert torch.equal(h_n[0], out[:, -1, :H]) and torch.equal(h_n[1], out[:, 0, H:])


@pytest.mark.parametrize(
    "old, new",
    [
        # forgetting to flip the backward states back into time order
        (".flip(1)  # reads x_T..x_1", "  # reads x_T..x_1"),
        # not flipping the input: the "backward" direction reads forwards
        ("rnn_direction(X.flip(1), **backward)", "rnn_direction(X, **backward)"),
        # h_n[1] taken at the last step, where the backward direction has read only x_T
        ("H_bwd[:, 0]])", "H_bwd[:, -1]])"),
        # the forward direction's weights for both directions
        ("(X.flip(1), **backward)", "(X.flip(1), **forward)"),
    ],
)
def test_birnn_check_catches_mutations(old, new):
    mutant = _mutant(old, new)  # outside pytest.raises: a stale mutation must not pass
    with pytest.raises(AssertionError, match="not close"):
        _check_birnn(mutant)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_stacked_rnn_from_scratch_equals_nn_rnn(ch5, num_layers):
    _check_stack(ch5, num_layers=num_layers)
    _check_stack(ch5, D=3, H=4, num_layers=num_layers, seed=1)


@pytest.mark.parametrize(
    "old, new",
    [
        # layer 2 fed the inputs instead of layer 1's states
        ("rnn_direction(states, **weights)", "rnn_direction(X, **weights)"),
        # h_n read at the first step instead of the last
        ("h_n.append(states[:, -1])", "h_n.append(states[:, 0])"),
    ],
)
def test_stack_check_catches_mutations(old, new):
    mutant = _mutant(old, new)  # outside pytest.raises: a stale mutation must not pass
    with pytest.raises(AssertionError, match="not close"):
        _check_stack(mutant)


def test_rnn_direction_is_the_chapter_1_loop(ch5):
    torch.manual_seed(0)
    rnn = nn.RNN(3, 4, batch_first=True).double()
    X = torch.randn(2, 5, 3, dtype=torch.float64)
    with torch.no_grad():
        states = ch5["rnn_direction"](X, **named_weights(rnn))
    torch.testing.assert_close(states, rnn(X)[0], rtol=1e-12, atol=1e-12)


def _batch(lengths=(5, 2, 3, 1), D=3, seed=0):
    torch.manual_seed(seed)
    lengths = torch.tensor(lengths)
    seqs = [torch.randn(int(n), D, dtype=torch.float64) for n in lengths]
    return seqs, pad_sequence(seqs, batch_first=True), lengths


def _packed_run(rnn, X_pad, lengths):
    packed = pack_padded_sequence(X_pad, lengths, batch_first=True, enforce_sorted=False)
    out, state = rnn(packed)
    return pad_packed_sequence(out, batch_first=True)[0], state


@pytest.mark.parametrize("kind", [nn.RNN, nn.GRU, nn.LSTM])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_packed_outputs_equal_padded_and_masked(ch5, kind, num_layers):
    seqs, X_pad, lengths = _batch()
    torch.manual_seed(1)
    rnn = kind(3, 4, num_layers=num_layers, batch_first=True).double()
    mask = ch5["length_mask"](lengths)
    with torch.no_grad():
        out_packed, state_packed = _packed_run(rnn, X_pad, lengths)
        out_pad, _ = rnn(X_pad)
        alone_out, alone_h = ch5["run_each_alone"](rnn, seqs)
    h_packed = state_packed[0] if isinstance(state_packed, tuple) else state_packed
    torch.testing.assert_close(out_pad * mask[..., None], out_packed, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out_packed, pad_sequence(alone_out, batch_first=True))
    torch.testing.assert_close(h_packed, alone_h, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ch5["last_valid"](out_pad, lengths), h_packed[-1])


def test_plain_padding_h_n_and_bidirectional_outputs_are_wrong(ch5):
    """The pitfalls the chapter shows must really differ (so the equalities above mean something)."""
    seqs, X_pad, lengths = _batch()
    torch.manual_seed(2)
    gru = nn.GRU(3, 4, batch_first=True).double()
    bigru = nn.GRU(3, 4, batch_first=True, bidirectional=True).double()
    mask = ch5["length_mask"](lengths)
    with torch.no_grad():
        _, h_pad = gru(X_pad)
        _, h_packed = _packed_run(gru, X_pad, lengths)
        bi_pad = bigru(X_pad)[0] * mask[..., None]
        bi_packed, _ = _packed_run(bigru, X_pad, lengths)
    short = lengths < lengths.max()
    assert ((h_pad[0] - h_packed[0]).abs().amax(1) > 1e-6).tolist() == short.tolist()
    gap = (bi_pad - bi_packed).abs()
    torch.testing.assert_close(bi_pad[..., :4], bi_packed[..., :4])  # forward half is fine
    assert gap[short][..., 4:].amax() > 1e-3  # backward half starts in the padding
    torch.testing.assert_close(bi_pad[~short], bi_packed[~short])  # the longest one is unaffected


def test_bidirectional_packed_equals_each_alone(ch5):
    seqs, X_pad, lengths = _batch(lengths=(2, 6, 4))
    torch.manual_seed(3)
    bilstm = nn.LSTM(3, 5, num_layers=2, batch_first=True, bidirectional=True).double()
    with torch.no_grad():
        out_packed, (h_packed, _) = _packed_run(bilstm, X_pad, lengths)
        alone_out, alone_h = ch5["run_each_alone"](bilstm, seqs)
    torch.testing.assert_close(out_packed, pad_sequence(alone_out, batch_first=True))
    torch.testing.assert_close(h_packed, alone_h)


def test_last_states_takes_top_layer_forward_and_backward(ch5):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=3, bidirectional=True, batch_first=True)
    out, (h_n, _) = lstm(torch.randn(2, 6, 3))
    summary = ch5["last_states"](h_n, 3, True)
    assert summary.shape == (2, 8)
    assert torch.equal(summary[:, :4], out[:, -1, :4])
    assert torch.equal(summary[:, 4:], out[:, 0, 4:])
    assert not torch.allclose(summary, out[:, -1])  # the classic bug differs
    gru = nn.GRU(3, 4, num_layers=2, batch_first=True)
    out, h_n = gru(torch.randn(2, 6, 3))
    assert torch.equal(ch5["last_states"](h_n, 2, False), out[:, -1])
    with pytest.raises(ValueError, match="num_layers"):
        ch5["last_states"](h_n, 2, True)


def test_masked_mean_and_loss(ch5):
    seqs, X_pad, lengths = _batch()
    mask = ch5["length_mask"](lengths)
    X_pad = X_pad + 7.0 * ~mask[..., None]  # junk in the padding must not matter
    ref = torch.stack([s.mean(0) for s in seqs])
    torch.testing.assert_close(ch5["masked_mean"](X_pad, mask), ref)
    assert not torch.allclose(X_pad.mean(1), ref)
    logits = torch.randn(4, 5, 3, dtype=torch.float64)
    targets = torch.randint(0, 3, (4, 5))
    per_step = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    torch.testing.assert_close(
        (per_step * mask).sum() / mask.sum(), F.cross_entropy(logits[mask], targets[mask])
    )


def test_length_mask(ch5):
    mask = ch5["length_mask"](torch.tensor([3, 1]), max_len=4)
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False]]
    with pytest.raises(ValueError, match="positive"):
        ch5["length_mask"](torch.tensor([2, 0]))
    with pytest.raises(ValueError, match="ints"):
        ch5["length_mask"](torch.tensor([2.5, 1.0]))


def test_bucket_batches_cover_everything_and_reduce_padding(ch5):
    g = torch.Generator().manual_seed(0)
    lengths = torch.cat(
        [torch.randint(5, 31, (180,), generator=g), torch.randint(150, 301, (20,), generator=g)]
    )
    lengths = lengths[torch.randperm(200, generator=g)]
    bucketed = ch5["bucket_batches"](lengths, 16, seed=1)
    random_ = ch5["random_batches"](200, 16, seed=1)
    for batches in (bucketed, random_):
        assert sorted(i for b in batches for i in b) == list(range(200))
        assert all(1 <= len(b) <= 16 for b in batches)
    # inside a bucket the lengths are contiguous in sorted order
    spans = [int(lengths[b].max() - lengths[b].min()) for b in bucketed]
    assert sorted(spans)[len(spans) // 2] <= 3
    assert ch5["padding_fraction"](bucketed, lengths) < 0.5 * ch5["padding_fraction"](
        random_, lengths
    )
    assert ch5["bucket_batches"](lengths, 16, seed=1) == bucketed  # deterministic
    with pytest.raises(ValueError):
        ch5["bucket_batches"]([], 4)


def test_padding_fraction_known_answer(ch5):
    # batches [0, 1] (lengths 2, 4 -> area 8) and [2] (length 3 -> area 3): 9 real of 11
    assert ch5["padding_fraction"]([[0, 1], [2]], [2, 4, 3]) == pytest.approx(2 / 11)


def test_locked_dropout_shares_the_mask_over_time(ch5):
    torch.manual_seed(0)
    drop = ch5["LockedDropout"](p=0.5)
    Y = drop(torch.ones(64, 7, 16))
    assert (Y == Y[:, :1]).all()
    assert set(Y.unique().tolist()) == {0.0, 2.0}  # kept units are scaled by 1 / (1 - p)
    assert 0.35 < (Y[:, 0] == 0).float().mean() < 0.65
    drop.eval()
    X = torch.randn(2, 3, 4)
    assert torch.equal(drop(X), X)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ch5["LockedDropout"](p=1.0)
    with pytest.raises(ValueError, match=r"\(N, T, D\)"):
        ch5["LockedDropout"]()(torch.ones(3, 4))


def test_learned_init_gru(ch5):
    torch.manual_seed(0)
    model = ch5["LearnedInitGRU"](3, 4, num_layers=2, bidirectional=True)
    with torch.no_grad():
        model.h0.normal_()
    X = torch.randn(5, 6, 3)
    out, h_n = model(X)
    assert out.shape == (5, 6, 8) and h_n.shape == (4, 5, 4)
    ref, _ = model.gru(X, model.h0.expand(-1, 5, -1).contiguous())
    assert torch.equal(out, ref)
    assert not torch.allclose(out, model.gru(X)[0])  # the learned state is really used
    out.sum().backward()
    assert model.h0.grad.abs().sum() > 0
