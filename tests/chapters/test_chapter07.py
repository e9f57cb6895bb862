"""Chapter 7 (attention): the equalities the chapter asserts, and the mutations they catch.

The functions come from the cells tagged ``defs`` in notebooks/07_attention.ipynb (the exported
``utils.models.attention`` code, the from-scratch loop, the tutorial's decoder, multi-head
attention); the mutation tests run the same cells with one deliberate bug each and show the checks
catch it. The module itself is tested against the notebook at the end.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.factories import mutated_namespace, notebook_namespace
from utils.models.seq2seq import PAD, make_batch, sequence_loss

NOTEBOOK = "notebooks/07_attention.ipynb"
SCORES = ("dot", "scaled_dot", "general", "concat", "additive")


@pytest.fixture(scope="module")
def ch7():
    return notebook_namespace(NOTEBOOK)


def _mutant(old: str, new: str) -> dict:
    """The notebook's ``defs`` cells with ``old`` (found exactly once) replaced by ``new``."""
    return mutated_namespace(NOTEBOOK, old, new)


def _batch(lengths=(6, 2, 4, 1), T=3, H=5, seed=0):
    torch.manual_seed(seed)
    lengths = torch.tensor(lengths)
    N, S = len(lengths), int(lengths.max())
    queries = torch.randn(N, T, H, dtype=torch.float64)
    keys = torch.randn(N, S, H, dtype=torch.float64)
    return queries, keys, lengths


def _check_loop_equals_batched(ns, name="general", **kw):
    """Assert the (i, t, s) loop equals the batched attention, weights and context."""
    queries, keys, lengths = _batch(**kw)
    torch.manual_seed(1)
    score = ns["Score"](name, queries.shape[-1], keys.shape[-1]).double()
    with torch.no_grad():
        loop = ns["attention_loop"](queries, keys, lengths, ns["score_pair"](score))
        batched = ns["attention_batched"](queries, keys, lengths, score)
    torch.testing.assert_close(batched[1], loop[1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(batched[0], loop[0], rtol=1e-12, atol=1e-12)


def _check_padding(ns, name="general"):
    """Weights exactly 0.0 on padding, rows summing to 1, for one step and for T steps."""
    queries, keys, lengths = _batch()
    score = ns["Score"](name, queries.shape[-1], keys.shape[-1]).double()
    with torch.no_grad():
        _, weights = ns["attention_batched"](queries, keys, lengths, score)
    mask = torch.arange(keys.shape[1]) < lengths[:, None]
    assert (weights.transpose(0, 1)[:, ~mask] == 0.0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2], dtype=weights.dtype))
    with torch.no_grad():
        _, one_step = ns["attention"](queries[:, 0], keys, mask=mask, score=score)
    assert (one_step[~mask] == 0.0).all()
    torch.testing.assert_close(one_step, weights[:, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", SCORES)
@pytest.mark.parametrize("lengths", [(6, 2, 4, 1), (1,), (3, 3)])
def test_loop_equals_batched(ch7, name, lengths):
    _check_loop_equals_batched(ch7, name, lengths=lengths)


@pytest.mark.parametrize("name", SCORES)
def test_weights_zero_on_padding_and_sum_to_one(ch7, name):
    _check_padding(ch7, name)


def test_padding_content_cannot_change_the_context(ch7):
    queries, keys, lengths = _batch()
    mask = torch.arange(keys.shape[1]) < lengths[:, None]
    junk = torch.where(mask[..., None], keys, 50 * torch.randn_like(keys))
    context, _ = ch7["attention"](queries, keys, mask=mask)
    assert torch.equal(ch7["attention"](queries, junk, mask=mask)[0], context)
    assert not torch.allclose(ch7["attention"](queries, junk)[0], context)  # the mask matters


@pytest.mark.parametrize("name", SCORES)
def test_weights_depend_on_the_encoder_states(ch7, name):
    queries, keys, lengths = _batch()
    mask = torch.arange(keys.shape[1]) < lengths[:, None]
    score = ch7["Score"](name, 5, 5).double()
    with torch.no_grad():
        _, w = ch7["attention"](queries, keys, mask=mask, score=score)
        _, w_other = ch7["attention"](queries, keys.flip(1) + 0.5, mask=mask, score=score)
    changed = (w - w_other).abs().amax(dim=(1, 2)) > 1e-6
    assert changed[lengths > 1].all()  # a source of one token always gets weight 1


def test_the_tutorial_weights_do_not_look_at_the_source(ch7):
    torch.manual_seed(0)
    tutorial = ch7["TutorialAttention"](3, 4, max_length=10)
    embedded, hidden = torch.randn(2, 3), torch.randn(2, 4)
    keys_a, keys_b = torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    context_a, w_a = tutorial(embedded, hidden, keys_a)
    context_b, w_b = tutorial(embedded, hidden, keys_b)
    assert torch.equal(w_a, w_b) and not torch.allclose(context_a, context_b)


@pytest.mark.parametrize("with_mask", [False, True])
def test_scaled_dot_equals_sdpa(ch7, with_mask):
    queries, keys, lengths = _batch(T=4, H=8)
    values = torch.randn(*keys.shape[:2], 3, dtype=torch.float64)
    mask = torch.arange(keys.shape[1]) < lengths[:, None] if with_mask else None
    context, _ = ch7["attention"](queries, keys, values, mask=mask, score=ch7["scaled_dot_score"])
    attn_mask = None if mask is None else mask[:, None, :]
    ref = F.scaled_dot_product_attention(queries, keys, values, attn_mask=attn_mask)
    torch.testing.assert_close(context, ref, rtol=1e-12, atol=1e-12)
    one_step, _ = ch7["attention"](queries[:, 0], keys, values, mask, ch7["scaled_dot_score"])
    torch.testing.assert_close(one_step, ref[:, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("with_mask", [False, True])
def test_multi_head_equals_nn_multihead_attention(ch7, with_mask):
    torch.manual_seed(0)
    lengths = torch.tensor([7, 4, 1])
    mask = torch.arange(7) < lengths[:, None]
    mha = nn.MultiheadAttention(8, 2, batch_first=True).double()
    X_q, X = torch.randn(3, 5, 8, dtype=torch.float64), torch.randn(3, 7, 8, dtype=torch.float64)
    with torch.no_grad():
        ours = ch7["multi_head"](X_q, X, mha, mask=mask if with_mask else None)
        ref, _ = mha(X_q, X, X, key_padding_mask=~mask if with_mask else None)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def _gaussian_reference(score, query, keys, mask, p_t, D):
    """Luong's local-p weights written out: softmax inside the window, times the Gaussian."""
    s = torch.arange(1, keys.shape[1] + 1, dtype=keys.dtype)
    inside = mask & ((s - p_t[:, None]).abs() <= D)
    a = torch.softmax(score(query, keys).masked_fill(~inside, float("-inf")), dim=-1)
    return a * torch.exp(-((s - p_t[:, None]) ** 2) / (2 * (D / 2) ** 2)), inside


def _check_local(ns, D=2, seed=0):
    queries, keys, lengths = _batch(lengths=(9, 5, 2, 7), H=4, seed=seed)
    mask = torch.arange(keys.shape[1]) < lengths[:, None]
    torch.manual_seed(seed)
    score = ns["Score"]("general", 4, 4).double()
    position = ns["PredictivePosition"](4).double()
    with torch.no_grad():
        p_t = position(queries[:, 0], lengths)
        assert ((p_t > 0) & (p_t < lengths)).all()
        _, w = ns["local_attention"](queries[:, 0], keys, keys, mask, score, p_t, D, True)
        want, inside = _gaussian_reference(score, queries[:, 0], keys, mask, p_t, D)
        _, w_m = ns["local_attention"](queries[:, 0], keys, keys, mask, score, p_t, D, False)
    assert (w[~inside] == 0.0).all() and (w_m[~inside] == 0.0).all()  # outside [p_t - D, p_t + D]
    torch.testing.assert_close(w, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(w_m.sum(-1), torch.ones(4, dtype=w.dtype))
    assert (w.sum(-1) < 1).all()


@pytest.mark.parametrize("D", [1, 2, 3])
def test_local_attention_window_and_gaussian(ch7, D):
    _check_local(ch7, D=D)
    _check_local(ch7, D=D, seed=3)


def _tiny_model(ns, seed=0, **kw):
    torch.manual_seed(seed)
    V = 12
    model = ns["Seq2Seq"](ns["Encoder"](V, 8, 16), ns["AttentionDecoder"](V, 8, 16, 16, **kw))
    src, src_lengths = ns["pad_batch"]([[5, 6, 7, 8, 9, 10], [4, 5], [9, 8, 7], [11]])
    return model.eval(), src, src_lengths


DECODERS = [
    {},
    {"score": "dot"},
    {"score": "concat", "input_feeding": False},
    {"local": "m", "window": 1},
    {"local": "p", "window": 2, "score": "scaled_dot"},
]


@pytest.mark.parametrize("kw", DECODERS)
def test_decoder_works_with_greedy_decode_and_beam_search(ch7, kw):
    model, src, src_lengths = _tiny_model(ch7, **kw)
    with torch.no_grad():
        ids, weights = ch7["greedy_decode"](model, src, src_lengths, max_len=7)
        mask = model.encode(src, src_lengths).mask
        best = ch7["beam_search"](model, src, src_lengths, beam_size=1, max_len=7)
        wide = ch7["beam_search"](model, src, src_lengths, beam_size=3, max_len=7)
    assert weights.shape == (4, ids.shape[1], src.shape[1])
    assert (weights.transpose(0, 1)[:, ~mask] == 0.0).all()
    if kw.get("local") != "p":  # local-p's Gaussian leaves weights summing to less than 1
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    assert best == ch7["cut_at_eos"](ids)
    assert len(wide) == 4 and all(isinstance(row, list) for row in wide)


def test_decoder_trains_with_a_bidirectional_encoder_and_scheduled_sampling(ch7):
    torch.manual_seed(0)
    V = 12
    encoder = ch7["Encoder"](V, 8, 16, num_layers=2, bidirectional=True)
    decoder = ch7["AttentionDecoder"](V, 8, 16, encoder.output_size, score="concat")
    model = ch7["Seq2Seq"](encoder, decoder)
    pairs = [([5, 6, 7, 2], [7, 6, 5, 2]), ([4, 9, 2], [9, 4, 2]), ([8, 2], [8, 2])]
    batch = make_batch(pairs)
    logits = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=0.5)
    assert logits.shape == (3, batch.tgt_in.shape[1], V)
    sequence_loss(logits, batch.tgt_out).backward()
    assert decoder.score.W_k.weight.grad.abs().sum() > 0  # the gradient reaches the scores
    history = ch7["train_seq2seq"](model, pairs * 4, steps=30, batch_size=6, lr=1e-2)
    assert history["loss"][-1] < history["loss"][0]
    ids, weights = ch7["greedy_decode"](model, batch.src, batch.src_lengths, max_len=5)
    assert weights.shape == (3, ids.shape[1], batch.src.shape[1])
    assert (weights.transpose(0, 1)[:, batch.src == PAD] == 0.0).all()


def _check_decoder_looks_at_the_source(ns, **kw):
    """Same decoder state, other encoder states: the step's weights must change."""
    model, src, src_lengths = _tiny_model(ns, **kw)
    with torch.no_grad():
        memory = model.encode(src, src_lengths)
        state = model.decoder.init_state(memory)
        y_prev = torch.full((4,), ns["SOS"])
        _, _, w = model.decoder.step(y_prev, state, memory)
        other = memory._replace(outputs=memory.outputs + torch.randn_like(memory.outputs))
        _, _, w_other = model.decoder.step(y_prev, state, other)
    long_enough = memory.mask.sum(1) > 1
    assert ((w - w_other).abs().amax(-1) > 1e-6)[long_enough].all(), "weights ignore the source"


@pytest.mark.parametrize("kw", DECODERS)
def test_decoder_weights_depend_on_the_encoder_states(ch7, kw):
    _check_decoder_looks_at_the_source(ch7, **kw)


def test_local_m_window_follows_the_step(ch7):
    model, src, src_lengths = _tiny_model(ch7, local="m", window=1)
    with torch.no_grad():
        memory = model.encode(src, src_lengths)
        state = model.decoder.init_state(memory)
        y = torch.full((4,), ch7["SOS"])
        s = torch.arange(1, src.shape[1] + 1)
        for t in range(1, 9):
            logits, state, w = model.decoder.step(y, state, memory)
            p_t = torch.minimum(torch.tensor(t), src_lengths)  # clipped to the source's end
            assert (w[(s - p_t[:, None]).abs() > 1] == 0.0).all()
            y = logits.argmax(-1)


def test_input_feeding_feeds_the_attentional_vector(ch7):
    for feeding in (True, False):
        model, src, src_lengths = _tiny_model(ch7, input_feeding=feeding)
        with torch.no_grad():
            memory = model.encode(src, src_lengths)
            h, h_tilde, t = model.decoder.init_state(memory)
            y = torch.full((4,), ch7["SOS"])
            out = model.decoder.step(y, (h, h_tilde, t), memory)[0]
            moved = model.decoder.step(y, (h, h_tilde + 1.0, t), memory)[0]
        assert torch.equal(out, moved) != feeding


def test_clear_errors(ch7):
    Score, masked_softmax = ch7["Score"], ch7["masked_softmax"]
    with pytest.raises(ValueError, match="unknown score 'bilinear'"):
        Score("bilinear", 4, 4)
    with pytest.raises(ValueError, match="query_size == key_size"):
        Score("dot", 4, 6)
    with pytest.raises(ValueError, match="same size|one size"):
        ch7["dot_score"](torch.randn(2, 4), torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match=r"mask must be \(N, S\) = \(2, 5\)"):
        masked_softmax(torch.randn(2, 5), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(N, S\)"):
        ch7["attention"](torch.randn(2, 3, 4), torch.randn(2, 5, 4), mask=torch.ones(5, 2).bool())
    with pytest.raises(TypeError, match="bool"):
        masked_softmax(torch.randn(2, 5), torch.ones(2, 5))
    with pytest.raises(ValueError, match="at least one True"):
        masked_softmax(torch.randn(2, 5), torch.tensor([[True] * 5, [False] * 5]))
    with pytest.raises(ValueError, match="local must be"):
        ch7["AttentionDecoder"](10, 4, 8, 8, local="x")
    with pytest.raises(ValueError, match="at least 1"):
        ch7["local_attention"](
            torch.randn(1, 4), torch.randn(1, 5, 4), torch.randn(1, 5, 4),
            torch.ones(1, 5, dtype=torch.bool), ch7["dot_score"], torch.tensor([2.0]), 0.5, True,
        )  # fmt: skip
    decoder = ch7["AttentionDecoder"](10, 4, 8, 6)
    memory = SimpleNamespace(
        outputs=torch.randn(2, 3, 6), mask=torch.ones(2, 3).bool(), final=torch.randn(2, 6)
    )
    with pytest.raises(ValueError, match=r"memory.final must be \(N, hidden_size\)"):
        decoder.init_state(memory)


def test_scaling_keeps_scores_at_unit_variance(ch7):
    torch.manual_seed(0)
    q, k = torch.randn(2000, 256), torch.randn(2000, 4, 256)
    assert ch7["dot_score"](q, k).std() == pytest.approx(16, rel=0.05)
    assert ch7["scaled_dot_score"](q, k).std() == pytest.approx(1, rel=0.05)
    assert math.isclose(
        float(ch7["scaled_dot_score"](q, k)[0, 0] * 16), float(q[0] @ k[0, 0]), rel_tol=1e-5
    )


# The mutations: each test would pass on the broken code without its check.


def test_wrong_softmax_axis_is_caught():
    mutant = _mutant("return torch.softmax(scores, dim=-1)", "return torch.softmax(scores, dim=0)")
    with pytest.raises(AssertionError):
        _check_loop_equals_batched(mutant)
    with pytest.raises(AssertionError):
        _check_padding(mutant)


def test_mask_off_by_one_is_caught():
    mutant = _mutant(
        "torch.arange(keys.shape[1]) < lengths[:, None]",
        "torch.arange(keys.shape[1]) <= lengths[:, None]",
    )
    with pytest.raises(AssertionError):
        _check_loop_equals_batched(mutant)
    with pytest.raises(AssertionError):
        _check_padding(mutant)


def test_weights_without_the_encoder_states_are_caught():
    # the tutorial's bug: the weights never read the encoder states, the context still averages them
    mutant = _mutant(
        "keys, values = memory.outputs, memory.outputs",
        "keys, values = torch.ones_like(memory.outputs), memory.outputs",
    )
    with pytest.raises(AssertionError, match="weights ignore the source"):
        _check_decoder_looks_at_the_source(mutant)


@pytest.mark.parametrize(
    "old, new",
    [
        # the Gaussian window not applied: local-p becomes local-m around p_t
        ("weights = weights * gaussian_window(p_t, keys.shape[1], D)", "weights = weights"),
        # sigma = D instead of D / 2
        ("    sigma = D / 2\n", "    sigma = D\n"),
        # positions counted from 0: window and Gaussian one position off
        ("torch.arange(1, S + 1, device", "torch.arange(0, S, device"),
    ],
)
def test_local_p_mutations_are_caught(old, new):
    mutant = _mutant(old, new)
    with pytest.raises(AssertionError):
        _check_local(mutant)


def test_the_module_is_the_notebook_code(ch7):
    """utils.models.attention passes the same checks as the notebook's cells."""
    import utils.models.attention as module

    # the module's functions, the notebook's loop and helpers
    ns = {**ch7, **vars(module), "attention_batched": _batched_with(module)}
    assert ns["attention"] is module.attention and ns["Score"] is module.Score
    _check_padding(ns)
    _check_local(ns)
    _check_decoder_looks_at_the_source(ns)
    for name in SCORES:
        _check_loop_equals_batched(ns, name)


def _batched_with(module):
    def attention_batched(queries, keys, lengths, score):
        mask = torch.arange(keys.shape[1]) < lengths[:, None]
        return module.attention(queries, keys, mask=mask, score=score)

    return attention_batched
