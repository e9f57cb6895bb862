"""Chapter 6 (sequence to sequence): the equalities the chapter asserts, the mutations they catch,
and the public functions of ``utils.models.seq2seq`` and ``utils.models.decoding`` (generated from
the chapter's export cells).

The functions come from the cells tagged ``defs`` in notebooks/06_seq2seq.ipynb; most tests run
twice, on the notebook's definitions and on the modules, which must behave the same. The mutation
tests run the same cells with one deliberate bug each and show the checks catch it.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import utils.models.decoding as decoding
import utils.models.seq2seq as module
from tests.factories import mutated_namespace, notebook_namespace

NOTEBOOK = "notebooks/06_seq2seq.ipynb"
PAD, SOS, EOS, UNK = 0, 1, 2, 3


@pytest.fixture(scope="module")
def ch6():
    return notebook_namespace(NOTEBOOK)


@pytest.fixture(params=["notebook", "module"])
def ns(request, ch6):
    """The chapter's definitions: from the notebook's cells, then from utils.models.seq2seq and
    utils.models.decoding."""
    return ch6 if request.param == "notebook" else {**vars(module), **vars(decoding)}


def _mutant(old: str, new: str) -> dict:
    """The notebook's ``defs`` cells with ``old`` (found exactly once) replaced by ``new``."""
    return mutated_namespace(NOTEBOOK, old, new)


def _model(ns, V=9, E=6, H=8, seed=0, double=True, V_src=None):
    torch.manual_seed(seed)
    model = ns["Seq2Seq"](ns["Encoder"](V_src or V, E, H), ns["Decoder"](V, E, H))
    return model.double() if double else model


_TRAINED: dict = {}


def _trained(ns):
    """A small float64 model trained briefly on reversal (lengths 1..6): it has learned to stop."""
    if ns["__name__"] not in _TRAINED:
        pairs, V = _pairs(ns, n=300, max_len=6, seed=1)
        model = _model(ns, V, E=8, H=16)
        ns["train_seq2seq"](model, pairs, steps=80, batch_size=32, lr=1e-2, seed=0)
        _TRAINED[ns["__name__"]] = model.eval()
    return _TRAINED[ns["__name__"]]


def _pairs(ns, n=12, max_len=6, seed=0):
    pairs, vocab = ns["reversal_pairs"](n, max_len, seed=seed)
    return pairs, len(vocab)


def test_module_is_the_notebook(ch6):
    for name in ["Vocab", "Encoder", "Decoder", "Seq2Seq", "train_seq2seq"]:
        assert ch6[name].__doc__ == getattr(module, name).__doc__
    for name in ["beam_search", "greedy_decode", "predict", "evaluate", "reorder_state"]:
        assert ch6[name].__doc__ == getattr(decoding, name).__doc__
        assert not hasattr(module, name)  # the model and its training only
    # decoding imports the model's tokens and helpers, it does not copy them
    assert decoding.EOS is module.EOS and decoding.check_source is module.check_source
    assert decoding.batches is module.batches
    assert (module.PAD, module.SOS, module.EOS, module.UNK) == (PAD, SOS, EOS, UNK)
    assert module.SPECIALS == ["<pad>", "<sos>", "<eos>", "<unk>"]


# --- tokens and batches ---------------------------------------------------------------------


def test_vocab(ns):
    vocab = ns["Vocab"].build([list("abca"), list("cd")], min_freq=2)
    assert vocab.itos == ["<pad>", "<sos>", "<eos>", "<unk>", "a", "c"]
    assert len(vocab) == 6 and vocab.stoi["c"] == 5
    assert vocab.encode(list("cab")) == [5, 4, UNK, EOS]
    assert vocab.decode([SOS, 5, PAD, 4, EOS, 5]) == ["c", "a"]  # PAD/SOS dropped, stops at EOS
    assert vocab.decode(torch.tensor([4, 4])) == ["a", "a"]
    with pytest.raises(ValueError, match="starts with"):
        ns["Vocab"](["a", "b"])


def test_pad_batch_and_batches(ns):
    ids, lengths = ns["pad_batch"]([[5, 6, 2], [7, 2]])
    assert ids.tolist() == [[5, 6, 2], [7, 2, PAD]] and lengths.tolist() == [3, 2]
    pairs = [([5, 6, EOS], [6, 5, EOS]), ([7, EOS], [7, EOS]), ([4, 4, 4, EOS], [4, EOS])]
    batch = ns["make_batch"](pairs)
    assert batch.tgt_out.tolist() == [[6, 5, EOS], [7, EOS, PAD], [4, EOS, PAD]]
    assert batch.tgt_in.tolist() == [[SOS, 6, 5], [SOS, 7, PAD], [SOS, 4, PAD]]
    assert batch.src_lengths.tolist() == [3, 2, 4] and batch.src.shape == (3, 4)
    # tgt_in is tgt_out shifted right by one, starting with SOS, wherever tgt_out is real
    real = batch.tgt_out != PAD
    assert torch.equal(batch.tgt_in[:, 1:][real[:, 1:]], batch.tgt_out[:, :-1][real[:, 1:]])
    many, _ = _pairs(ns, n=50)
    seen = [
        tuple(row[row != PAD].tolist())
        for b in ns["batches"](many, 16, shuffle=True, seed=3)
        for row in b.src
    ]
    assert sorted(seen) == sorted(tuple(s) for s, _ in many)  # every pair exactly once
    first = [b.src for b in ns["batches"](many, 16, shuffle=True, seed=3)]
    again = [b.src for b in ns["batches"](many, 16, shuffle=True, seed=3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_bad_batches_raise_clear_errors(ns):
    with pytest.raises(ValueError, match="empty batch"):
        ns["pad_batch"]([])
    with pytest.raises(ValueError, match="at least one token"):
        ns["pad_batch"]([[4], []])
    with pytest.raises(ValueError, match="end with EOS"):
        ns["make_batch"]([([4, EOS], [4, 5])])
    with pytest.raises(ValueError, match="batch_size"):
        next(ns["batches"]([([4, EOS], [4, EOS])], 0))


def test_task_pairs(ns):
    pairs, vocab = ns["reversal_pairs"](30, 7, min_len=2, seed=1)
    for src, tgt in pairs:
        assert src[-1] == tgt[-1] == EOS and tgt[:-1] == src[:-1][::-1] and 2 <= len(src) - 1 <= 7
    assert vocab.decode(pairs[0][0]) == vocab.decode(pairs[0][1])[::-1]
    assert vocab.itos[4:] == [str(d) for d in range(1, 10)]
    train, vocabs = ns["date_pairs"](50, seed=1)
    test, same = ns["date_pairs"](5, seed=2, vocabs=vocabs)
    assert same is vocabs and all(len(t) == 11 for _, t in train + test)
    assert "".join(vocabs[1].decode(train[0][1]))[4] == "-"


# --- the loss -------------------------------------------------------------------------------


def _check_loss(ns, seed=0):
    """Assert sequence_loss = the mean cross-entropy over the non-PAD targets, computed by hand."""
    g = torch.Generator().manual_seed(seed)
    lengths = [4, 1, 3, 2]
    tgt_out = torch.full((4, 4), PAD)
    for i, n in enumerate(lengths):
        tgt_out[i, : n - 1] = torch.randint(3, 7, (n - 1,), generator=g)
        tgt_out[i, n - 1] = EOS
    logits = torch.randn(4, 4, 7, generator=g, dtype=torch.float64)
    loss = ns["sequence_loss"](logits, tgt_out)
    terms = [
        -F.log_softmax(logits[i, t], dim=-1)[tgt_out[i, t]]
        for i in range(4)
        for t in range(4)
        if tgt_out[i, t] != PAD
    ]
    assert len(terms) == sum(lengths)
    torch.testing.assert_close(loss, torch.stack(terms).mean(), rtol=1e-12, atol=1e-12)
    return loss, logits, tgt_out


def test_masked_loss_equals_the_loss_by_hand(ns):
    loss, logits, tgt_out = _check_loss(ns)
    torch.testing.assert_close(
        loss, F.cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=PAD)
    )
    unmasked = F.cross_entropy(logits.transpose(1, 2), tgt_out)
    assert abs(unmasked.item() - loss.item()) > 1e-3  # the padding really changes the number
    with pytest.raises(ValueError, match="disagree"):
        ns["sequence_loss"](logits[:, :3], tgt_out)


@pytest.mark.parametrize(
    "old, new",
    [
        # EOS left out of the loss: the model never learns to stop
        ("< lengths[:, None]", "< lengths[:, None] - 1"),
        # one PAD position counted as a target
        ("< lengths[:, None]", "<= lengths[:, None]"),
    ],
)
def test_loss_check_catches_an_off_by_one_mask(old, new):
    mutant = _mutant(old, new)  # outside pytest.raises: a stale mutation must not pass
    with pytest.raises(AssertionError):
        _check_loss(mutant)


# --- encoder, decoder, teacher forcing --------------------------------------------------------


def test_encoder_zeros_on_padding_and_final_at_the_last_token(ns):
    torch.manual_seed(0)
    src, lengths = ns["pad_batch"]([[4, 5, 6, 2], [7, 2], [8, 8, 2]])
    enc = ns["Encoder"](9, 5, 6).double()
    outputs, final = enc(src, lengths)
    assert outputs.shape == (3, 4, 6) and final.shape == (3, 6)
    padding = torch.arange(4)[None] >= lengths[:, None]
    assert (outputs[padding] == 0).all() and (outputs[~padding] != 0).any(dim=-1).all()
    torch.testing.assert_close(final, outputs[torch.arange(3), lengths - 1], rtol=0, atol=0)
    for i in range(3):  # each row alone, no padding
        alone_out, alone_final = enc(src[i : i + 1, : lengths[i]], lengths[i : i + 1])
        torch.testing.assert_close(alone_final, final[i : i + 1], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(alone_out[0], outputs[i, : lengths[i]], rtol=1e-12, atol=1e-12)
    bi = ns["Encoder"](9, 5, 6, num_layers=2, bidirectional=True).double()
    outputs, final = bi(src, lengths)
    assert outputs.shape == (3, 4, 12) and bi.output_size == 12
    fwd_last = outputs[torch.arange(3), lengths - 1, :6]
    bwd_first = outputs[:, 0, 6:]
    want = torch.tanh(bi.bridge(torch.cat([fwd_last, bwd_first], dim=-1)))
    torch.testing.assert_close(final, want, rtol=1e-12, atol=1e-12)


def _step_by_step(model, batch):
    memory = model.encode(batch.src, batch.src_lengths)
    state, logits = model.decoder.init_state(memory), []
    for t in range(batch.tgt_in.shape[1]):
        step_logits, state, weights = model.decoder.step(batch.tgt_in[:, t], state, memory)
        assert weights is None
        logits.append(step_logits)
    return torch.stack(logits, dim=1)


class StepOnly(nn.Module):
    """A decoder without ``forward_sequence``: Seq2Seq must go step by step."""

    def __init__(self, decoder):
        super().__init__()
        self.inner = decoder

    def init_state(self, memory):
        return self.inner.init_state(memory)

    def step(self, y_prev, state, memory):
        return self.inner.step(y_prev, state, memory)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_teacher_forcing_forward_equals_step_by_step_decoding(ns, num_layers):
    pairs, V = _pairs(ns)
    batch = ns["make_batch"](pairs)
    torch.manual_seed(0)
    model = ns["Seq2Seq"](
        ns["Encoder"](V, 5, 6, num_layers=num_layers),
        ns["Decoder"](V, 5, 6, num_layers=num_layers),
    ).double()
    fused = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=1.0)
    want = _step_by_step(model, batch)
    torch.testing.assert_close(fused, want, rtol=1e-12, atol=1e-12)
    generic = ns["Seq2Seq"](model.encoder, StepOnly(model.decoder))
    torch.testing.assert_close(generic(batch.src, batch.src_lengths, batch.tgt_in), want)


def test_free_running_forward_feeds_back_the_greedy_tokens(ns):
    pairs, V = _pairs(ns)
    batch = ns["make_batch"](pairs)
    model = _model(ns, V)
    free = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=0.0).argmax(-1)
    greedy, _ = ns["greedy_decode"](model, batch.src, batch.src_lengths, batch.tgt_in.shape[1])
    for row_free, row_greedy in zip(free.tolist(), greedy.tolist()):
        n = row_greedy.index(EOS) + 1 if EOS in row_greedy else len(row_greedy)
        assert row_free[:n] == row_greedy[:n]


def test_seq2seq_rejects_bad_input(ns):
    with pytest.raises(ValueError, match="hidden sizes"):
        ns["Seq2Seq"](ns["Encoder"](9, 4, 8), ns["Decoder"](9, 4, 6))
    model = _model(ns)
    src, lengths = ns["pad_batch"]([[4, 2]])
    with pytest.raises(ValueError, match="probability"):
        model(src, lengths, torch.tensor([[SOS, 4]]), teacher_forcing=1.5)
    with pytest.raises(ValueError, match="empty batch"):
        model.encode(src[:0], lengths[:0])
    with pytest.raises(ValueError, match="src_lengths"):
        model.encode(src, torch.tensor([3]))
    with pytest.raises(ValueError, match="token ids"):
        model.encode(src.double(), lengths)


# --- greedy decoding ------------------------------------------------------------------------


class Scripted(nn.Module):
    """A decoder that writes ``script[n, t]`` at step t for row n, whatever it reads."""

    def __init__(self, script, V=9):
        super().__init__()
        self.script, self.V = torch.as_tensor(script), V
        self.weight = nn.Parameter(torch.zeros(1))  # so that the model has a device

    def init_state(self, memory):
        return torch.zeros(memory.final.shape[0], 1, dtype=torch.long)

    def step(self, y_prev, state, memory):
        t = state[:, 0]
        tokens = self.script[torch.arange(len(t)), t.clamp(max=self.script.shape[1] - 1)]
        return F.one_hot(tokens, self.V).double() * 5.0, state + 1, None


def _scripted_model(ns, script):
    torch.manual_seed(0)
    return ns["Seq2Seq"](ns["Encoder"](9, 4, 4).double(), Scripted(script))


def _check_greedy(ns):
    """Rows finish at steps 2 and 4: greedy stops at step 4 and pads after each row's EOS."""
    script = [[5, EOS, 6, 6, 6, 6, 6, 6], [4, 7, 8, EOS, 6, 6, 6, 6]]
    model = _scripted_model(ns, script)
    src, lengths = ns["pad_batch"]([[4, 2], [5, 5, 2]])
    ids, weights = ns["greedy_decode"](model, src, lengths, max_len=8)
    assert weights is None
    assert ids.tolist() == [[5, EOS, PAD, PAD], [4, 7, 8, EOS]]
    assert ns["cut_at_eos"](ids) == [[5], [4, 7, 8]]
    short, _ = ns["greedy_decode"](model, src, lengths, max_len=3)  # max_len stops it
    assert short.tolist() == [[5, EOS, PAD], [4, 7, 8]]


def test_greedy_stops_at_eos_and_pads_after_it(ns):
    _check_greedy(ns)


@pytest.mark.parametrize(
    "old, new",
    [
        # no padding after EOS: the decoder's garbage after EOS stays in the output
        ("y = logits.argmax(dim=-1).masked_fill(finished, PAD)", "y = logits.argmax(dim=-1)"),
        # EOS never marks a row finished: the loop runs to max_len
        ("finished = finished | (y == EOS)", "finished = finished"),
    ],
)
def test_greedy_check_catches_mutations(old, new):
    mutant = _mutant(old, new)
    with pytest.raises(AssertionError):
        _check_greedy(mutant)


def test_greedy_and_beam_restore_the_training_mode(ns):
    model = _model(ns)
    src, lengths = ns["pad_batch"]([[4, 2]])
    model.train()
    ns["greedy_decode"](model, src, lengths, 3)
    ns["beam_search"](model, src, lengths, beam_size=2, max_len=3)
    assert model.training
    model.eval()
    ns["greedy_decode"](model, src, lengths, 3)
    assert not model.training


def test_decoding_rejects_bad_arguments(ns):
    model = _model(ns)
    src, lengths = ns["pad_batch"]([[4, 2]])
    with pytest.raises(ValueError, match="beam_size"):
        ns["beam_search"](model, src, lengths, beam_size=0)
    with pytest.raises(ValueError, match="max_len"):
        ns["beam_search"](model, src, lengths, max_len=0)
    with pytest.raises(ValueError, match="max_len"):
        ns["greedy_decode"](model, src, lengths, 0)
    with pytest.raises(ValueError, match="empty batch"):
        ns["greedy_decode"](model, src[:0], lengths[:0], 5)
    with pytest.raises(ValueError, match="empty batch"):
        ns["beam_search"](model, src[:0], lengths[:0])
    with pytest.raises(ValueError, match="no pairs"):
        ns["predict"](model, [])


# --- beam search ----------------------------------------------------------------------------


def _log_prob(model, src, y, alpha=0.6):
    """log p(y | src) / lp(|y|) by stepping the decoder along y (any tokens, PAD included)."""
    memory = model.encode(torch.tensor([src]), torch.tensor([len(src)]))
    state, prev, total = model.decoder.init_state(memory), SOS, 0.0
    for token in y:
        logits, state, _ = model.decoder.step(torch.tensor([prev]), state, memory)
        total += F.log_softmax(logits, dim=-1)[0, token].item()
        prev = token
    return total / ((5 + len(y)) / 6) ** alpha


def _check_beam(ns, seed=3, V=6, max_len=4):
    """Beam search with a beam wide enough to keep everything equals exhaustive search, and
    reports the normalised log-probability of what it returns."""
    torch.manual_seed(seed)
    model = _model(ns, V, 4, 8, seed=seed)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # peakier distributions, so that lengths and tokens matter
    model.eval()
    sources = [[4, 3, EOS], [3, EOS], [3, 4, 4, 3, EOS]]
    src, lengths = ns["pad_batch"](sources)
    hyps, scores = ns["beam_search"](
        model, src, lengths, beam_size=V**max_len, max_len=max_len, return_scores=True
    )
    others = [t for t in range(V) if t != EOS]
    with torch.no_grad():
        for i, source in enumerate(sources):
            every = [
                list(y) + [EOS] for n in range(max_len) for y in itertools.product(others, repeat=n)
            ]
            best = max(every, key=lambda y: _log_prob(model, source, y))
            assert hyps[i] == best[:-1], (i, hyps[i], best)
            assert scores[i] == pytest.approx(_log_prob(model, source, best), abs=1e-9)
    return model


def test_wide_beam_is_exhaustive_search(ns):
    _check_beam(ns)
    _check_beam(ns, seed=5, V=5, max_len=5)


def test_beam_size_one_is_greedy_and_batched_beam_is_per_example(ns):
    pairs, V = _pairs(ns, n=40, max_len=6)
    batch = ns["make_batch"](pairs)
    for model in (_model(ns, V, seed=1), _trained(ns)):  # random (never stops), trained (stops)
        _check_beam_equalities(ns, model, pairs, batch)


def _check_beam_equalities(ns, model, pairs, batch):
    greedy, _ = ns["greedy_decode"](model, batch.src, batch.src_lengths, max_len=12)
    beam1 = ns["beam_search"](model, batch.src, batch.src_lengths, beam_size=1, max_len=12)
    assert beam1 == ns["cut_at_eos"](greedy)
    for K in (2, 5):
        hyps, scores = ns["beam_search"](
            model, batch.src, batch.src_lengths, beam_size=K, max_len=12, return_scores=True
        )
        for i in range(len(pairs)):
            n = int(batch.src_lengths[i])
            one, one_score = ns["beam_search"](
                model, batch.src[i : i + 1, :n], batch.src_lengths[i : i + 1],
                beam_size=K, max_len=12, return_scores=True,
            )  # fmt: skip
            assert one == [hyps[i]] and one_score[0] == pytest.approx(scores[i], abs=1e-9)


def test_beam_scores_are_the_normalised_log_probabilities(ns, ch6):
    pairs, V = _pairs(ns, n=30, max_len=6)
    batch = ns["make_batch"](pairs)
    model = _trained(ns)
    for alpha in (0.0, 0.6, 1.0):
        hyps, scores = ns["beam_search"](
            model, batch.src, batch.src_lengths, beam_size=3, max_len=5, alpha=alpha,
            return_scores=True,
        )  # fmt: skip
        done = [len(h) < 5 for h in hyps]  # a hypothesis of max_len tokens never wrote EOS
        assert 0 < sum(done) < len(hyps)
        by_steps = [
            _log_prob(model, s, h + [EOS] if ok else h, alpha)
            for (s, _), h, ok in zip(pairs, hyps, done)
        ]
        assert scores == pytest.approx(by_steps, abs=1e-9)
        finished = [i for i, ok in enumerate(done) if ok]
        recomputed = ch6["score_hypotheses"](
            model, [pairs[i][0] for i in finished], [hyps[i] for i in finished], alpha=alpha
        )
        torch.testing.assert_close(
            torch.tensor([scores[i] for i in finished], dtype=torch.float64), recomputed
        )


@pytest.mark.parametrize(
    "old, new",
    [
        # EOS ignored: no hypothesis ever finishes
        ("finished = finished[parent] | (y == EOS)", "finished = finished[parent]"),
        # finished hypotheses keep growing (and paying for the tokens after EOS)
        ("logp = torch.where(finished[:, None], done, logp)", "logp = logp"),
        # no length normalisation: raw log-probabilities prefer short outputs
        (
            "normalised = scores.view(-1) / length_penalty(lengths, alpha)",
            "normalised = scores.view(-1)",
        ),
        # the wrong length: EOS not counted
        (
            "lengths = lengths[parent] + (~finished[parent]).to(lengths.dtype)",
            "lengths = lengths[parent] + (~finished).to(lengths.dtype)",
        ),
    ],
)
def test_beam_check_catches_mutations(old, new):
    mutant = _mutant(old, new)
    with pytest.raises(AssertionError):
        _check_beam(mutant)
        _check_beam(mutant, seed=5, V=5, max_len=5)


def test_reorder_state_maps_over_tuples(ns):
    state = (
        torch.arange(6).view(3, 2),
        None,
        ns["Memory"](torch.zeros(3, 1), torch.ones(3), torch.arange(3)),
    )
    out = ns["reorder_state"](state, torch.tensor([2, 2, 0]))
    assert out[0].tolist() == [[4, 5], [4, 5], [0, 1]] and out[1] is None
    assert isinstance(out[2], ns["Memory"]) and out[2].final.tolist() == [2, 2, 0]
    assert ns["length_penalty"](torch.tensor(7.0), 0.6).item() == pytest.approx(2.0**0.6)


# --- evaluation, training, schedules ----------------------------------------------------------


def _check_predict(ns):
    """predict decodes freely: it equals greedy decoding cut at EOS."""
    pairs, V = _pairs(ns, n=40, max_len=8)
    model = _model(ns, V, seed=4, double=False)
    batch = ns["make_batch"](pairs)
    greedy, _ = ns["greedy_decode"](model, batch.src, batch.src_lengths, max_len=14)
    assert ns["predict"](model, pairs, max_len=14) == ns["cut_at_eos"](greedy)
    assert ns["predict"](model, pairs, max_len=14, batch_size=7) == ns["cut_at_eos"](greedy)


def test_predict_is_free_running(ns):
    _check_predict(ns)


def test_predict_check_catches_teacher_forcing_at_inference():
    mutant = _mutant(
        "ids, _ = greedy_decode(model, src, src_lengths, max_len)",
        "ids = model(src, src_lengths, batch.tgt_in.to(device)).argmax(dim=-1)",
    )
    with pytest.raises(AssertionError):
        _check_predict(mutant)


def test_score_predictions_and_accuracy_by_length(ns):
    pairs = [([4, EOS], [4, EOS]), ([4, 5, EOS], [5, 4, EOS]), ([6, 7, EOS], [7, 6, EOS])]
    exact, token = ns["score_predictions"]([[4], [5, 6], [7, 6, 6]], pairs)
    assert exact == [True, False, False]
    assert token == pytest.approx([1.0, 2 / 3, 2 / 3])  # EOS at the wrong place is a wrong token
    train, V = _pairs(ns, n=400, max_len=5, seed=1)
    test, _ = _pairs(ns, n=100, max_len=5, seed=2)
    model = _model(ns, V, E=16, H=32, double=False)
    ns["train_seq2seq"](model, train, steps=40, batch_size=32, lr=1e-2, seed=0)
    table = ns["accuracy_by_length"](model, test)
    assert list(table.columns) == ["count", "exact", "token"]
    assert table["count"].sum() == len(test) and set(table.index) <= set(range(1, 6))
    overall = ns["evaluate"](model, test)
    assert overall["exact"] == pytest.approx((table.exact * table["count"]).sum() / len(test))
    assert overall["token"] == pytest.approx(
        sum(ns["score_predictions"](ns["predict"](model, test), test)[1]) / len(test)
    )


def test_training_is_deterministic_and_learns(ns):
    train, V = _pairs(ns, n=300, max_len=4, seed=1)
    histories = []
    for _ in range(2):
        model = _model(ns, V, E=16, H=32, double=False)
        histories.append(
            ns["train_seq2seq"](
                model,
                train,
                steps=30,
                batch_size=32,
                lr=1e-2,
                seed=0,
                teacher_forcing=ns["linear_decay"](30),
            )  # fmt: skip
        )
    assert histories[0] == histories[1]
    loss, ratios = histories[0]["loss"], histories[0]["teacher_forcing"]
    assert len(loss) == 30 and ratios[0] == 1.0 and ratios[-1] == pytest.approx(1 / 30)
    assert sum(loss[-5:]) < sum(loss[:5])


def test_schedules(ns):
    steps = 1000
    linear = ns["linear_decay"](steps)
    exponential = ns["exponential_decay"](steps, end=0.05)
    inverse = ns["inverse_sigmoid_decay"](steps)
    assert linear(0) == 1.0 and linear(steps) == 0.0 and linear(steps // 2) == pytest.approx(0.5)
    assert exponential(0) == 1.0 and exponential(steps) == pytest.approx(0.05)
    assert inverse(steps / 2) == pytest.approx(0.5, abs=1e-6) and inverse(0) > 0.99
    for schedule in (linear, exponential, inverse):
        values = [schedule(i) for i in range(0, steps + 1, 50)]
        assert values == sorted(values, reverse=True) and all(0 <= v <= 1 for v in values)


def test_exposure_bias_probe(ch6):
    """decode_with_mistake feeds a wrong digit exactly once, after step k."""
    pairs, V = _pairs(ch6, n=20, max_len=6)
    model = _model(ch6, V, double=False)
    batch = ch6["make_batch"](pairs)
    for k in (1, 2):
        ids = ch6["decode_with_mistake"](model, batch.src, batch.src_lengths, batch.tgt_out, k)
        assert ids.shape == batch.tgt_out.shape
        assert (ids[:, k - 1] != batch.tgt_out[:, k - 1]).all()
        assert set(ids[:, k - 1].tolist()) <= set(range(4, 13))
