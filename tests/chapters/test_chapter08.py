"""Chapter 8 (applications): the classifier reads ``h_n`` right, trimmed batches have no
padding, the test accuracy counts right, the tagger ignores padding, the CRF's path score
and best path, forecast windows, and contiguous character chunks.

The functions come from the cells tagged ``defs`` in notebooks/08_applications.ipynb; each
mutation test runs the same cells with one deliberate bug and shows the check catches it.
Accuracies and timings are never asserted (they are the notebook's stored outputs).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from tests.factories import mutated_namespace, notebook_namespace

NOTEBOOK = "notebooks/08_applications.ipynb"


@pytest.fixture(scope="module")
def ch8():
    try:
        return notebook_namespace(NOTEBOOK)
    finally:  # the chapter's setup() flushes denormals: leave later tests as they were
        torch.set_flush_denormal(False)


def _mutant(old: str, new: str) -> dict:
    try:
        return mutated_namespace(NOTEBOOK, old, new)
    finally:
        torch.set_flush_denormal(False)


# ------------------------------------------------------------------ sentiment: h_n


def _reviews(seed=0, lengths=(7, 3, 5, 1, 6)):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(4, 30, (n,), generator=g) for n in lengths]


def _check_summary(ns, seed=0):
    """summary() of a padded batch = [forward output at T_i; backward output at t = 1] of
    each review run alone, without padding."""
    torch.manual_seed(seed)
    model = ns["SentimentBiLSTM"](30, emb_size=6, hidden_size=5).eval()
    reviews = _reviews(seed)
    batch = ns["pad_collate"]([(r, 0) for r in reviews])
    with torch.no_grad():
        got = model.summary(batch["X"], batch["lengths"])
        for i, r in enumerate(reviews):
            out, _ = model.lstm(model.embed(r[None]))  # (1, T_i, 2H), no padding
            want = torch.cat([out[0, -1, :5], out[0, 0, 5:]])
            torch.testing.assert_close(got[i], want, rtol=1e-5, atol=1e-6)


def test_summary_reads_both_directions_at_the_real_ends(ch8):
    _check_summary(ch8)
    _check_summary(ch8, seed=3)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("torch.cat([h_n[-2], h_n[-1]], dim=1)", "torch.cat([h_n[-1], h_n[-2]], dim=1)"),
        ("torch.cat([h_n[-2], h_n[-1]], dim=1)", "torch.cat([h_n[-1], h_n[-1]], dim=1)"),
        ("if bool((lengths < X.shape[1]).any()):", "if False:"),
    ],
    ids=["directions swapped", "backward twice", "padding never packed"],
)
def test_summary_mutants_are_caught(old, new):
    with pytest.raises(AssertionError):
        _check_summary(_mutant(old, new))


def test_equal_lengths_run_dense_and_give_the_same_states(ch8):
    torch.manual_seed(0)
    model = ch8["SentimentBiLSTM"](30, emb_size=6, hidden_size=5).eval()
    X = torch.randint(4, 30, (3, 8))
    with torch.no_grad():
        dense = model.summary(X, torch.full((3,), 8))
        out, _ = model.lstm(model.embed(X))
    torch.testing.assert_close(dense, torch.cat([out[:, -1, :5], out[:, 0, 5:]], 1))


def test_accuracy_counts_the_right_signs(ch8):
    class Sign(torch.nn.Module):  # logit = first token id - 10
        def forward(self, X, lengths):
            return X[:, 0].float() - 10

    ids = [torch.tensor([v, 4, 5][: 1 + k % 3]) for k, v in enumerate([12, 3, 15, 8, 11])]
    labels = [1, 0, 0, 0, 1]  # right, right, wrong, right, right
    assert ch8["test_accuracy"](Sign(), ids, labels, batch_size=2) == pytest.approx(0.8)


def _check_trimmed(ns):
    ids = [torch.arange(n) + 10 for n in (45, 47, 52, 60)]
    X, lengths, Y = ns["trimmed_batch"](ids, [0, 1, 1, 0], [0, 1, 2, 3])
    assert X.shape == (4, 40) and lengths.tolist() == [40] * 4 and Y.tolist() == [0, 1, 1, 0]
    for row, r in zip(X, ids):
        assert torch.equal(row, r[:40])  # each review's first tokens: no padding
    X, lengths, _ = ns["trimmed_batch"](ids[:1] + [torch.arange(7)], [0, 1], [0, 1])
    assert X.shape == (2, 7) and lengths.tolist() == [7, 7]  # shorter than 20: kept whole


def test_trimmed_batch_cuts_to_the_shortest_rounded_down(ch8):
    _check_trimmed(ch8)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("T = min(len(ids[i]) for i in idx)", "T = max(len(ids[i]) for i in idx)"),
        (
            "X = torch.stack([ids[i][:T] for i in idx])",
            "X = torch.stack([ids[i][-T:] for i in idx])",
        ),
        ("T = T // multiple * multiple or T", "T = T"),
    ],
    ids=["longest", "the ends of the reviews", "not rounded"],
)
def test_trimmed_batch_mutants_are_caught(old, new):
    with pytest.raises((AssertionError, RuntimeError)):
        _check_trimmed(_mutant(old, new))


# ------------------------------------------------------------------ NER


def _check_tagger(ns, seed=0):
    """Each sentence's tag scores are the same alone and in a padded batch."""
    torch.manual_seed(seed)
    tagger = ns["BiLSTMTagger"](30, 7, emb_size=6, shape_size=3, hidden_size=5).eval()
    sents = _reviews(seed, lengths=(4, 1, 6, 2))
    W = ns["pad_collate"](sents)
    S = torch.zeros_like(W["X"])
    with torch.no_grad():
        batched = tagger(W["X"], S, W["lengths"])
        assert batched.shape == (4, 6, 7)
        for i, s in enumerate(sents):
            alone = tagger(
                s[None], torch.zeros(1, len(s), dtype=torch.long), torch.tensor([len(s)])
            )
            torch.testing.assert_close(batched[i, : len(s)], alone[0], rtol=1e-5, atol=1e-6)


def test_tagger_scores_do_not_depend_on_padding(ch8):
    _check_tagger(ch8)


def test_tagger_without_packing_is_caught():
    old = "packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)\n        h, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=W.shape[1])"
    with pytest.raises(AssertionError):
        _check_tagger(_mutant(old, "h, _ = self.lstm(x)"))


def test_shape_of(ch8):
    shape = ch8["shape_of"]
    assert [shape(w) for w in ("NASA", "Paris", "river", "1968", "(", "A", "eBay")] == [
        0, 1, 2, 3, 3, 1, 3,
    ]  # fmt: skip


def _check_crf(ns):
    score, best = ns["path_score"], ns["best_path_by_enumeration"]
    g = torch.Generator().manual_seed(0)
    E, A = torch.randn(4, 3, generator=g), torch.randn(3, 3, generator=g)
    path = (0, 2, 2, 1)
    want = E[0, 0] + E[1, 2] + E[2, 2] + E[3, 1] + A[0, 2] + A[2, 2] + A[2, 1]
    assert abs(score(E, A, path) - want.item()) < 1e-5
    every = {p: score(E, A, p) for p in itertools.product(range(3), repeat=4)}
    assert best(E, A) == max(every, key=every.get)
    assert best(E, torch.zeros(3, 3)) == tuple(E.argmax(1).tolist())  # A = 0: each token alone


def test_path_score_and_best_path(ch8):
    _check_crf(ch8)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "A[a, b].item() for a, b in zip(path, path[1:])",
            "A[b, a].item() for a, b in zip(path, path[1:])",
        ),
        ("for t, y in enumerate(path)", "for t, y in enumerate(path[1:])"),
        ("key=lambda path: path_score(E, A, path))", "key=lambda path: -path_score(E, A, path))"),
    ],
    ids=["transition transposed", "first emission dropped", "the worst path"],
)
def test_crf_mutants_are_caught(old, new):
    with pytest.raises(AssertionError):
        _check_crf(_mutant(old, new))


# ------------------------------------------------------------------ forecasting


def _check_windows(ns):
    series = torch.arange(10.0)
    X, Y = ns["windows"](series, 3, 2)
    assert X.shape == (6, 3) and Y.shape == (6, 2)
    for k in range(6):
        assert X[k].tolist() == [k, k + 1, k + 2] and Y[k].tolist() == [k + 3, k + 4]


def test_windows(ch8):
    _check_windows(ch8)
    X, Y = ch8["windows"](torch.arange(5.0), 4)
    assert X.tolist() == [[0, 1, 2, 3]] and Y.tolist() == [[4]]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("series.unfold(0, width + horizon, 1)", "series.unfold(0, width + horizon, horizon)"),
        (
            "return pieces[:, :width], pieces[:, width:]",
            "return pieces[:, :width], pieces[:, width - 1 : -1]",
        ),
    ],
    ids=["step = horizon", "targets one step early"],
)
def test_windows_mutants_are_caught(old, new):
    with pytest.raises(AssertionError):
        _check_windows(_mutant(old, new))


def test_forecaster_shapes_and_fit_lowers_the_loss(ch8):
    torch.manual_seed(0)
    series = torch.sin(torch.arange(80.0) / 3)
    X, Y = ch8["windows"](series, 12, 4)
    model = ch8["Forecaster"](hidden_size=8, horizon=4)
    assert model(X).shape == (len(X), 4)
    before = torch.nn.functional.mse_loss(model(X), Y).item()
    ch8["fit"](model, X, Y, epochs=60)
    with torch.no_grad():
        assert torch.nn.functional.mse_loss(model(X), Y).item() < before / 2


# ------------------------------------------------------------------ characters


def _check_chunks(ns):
    stream = torch.arange(1001)
    pairs = list(ns["chunks"](stream, 4, 50))
    L = 1000 // 4
    assert len(pairs) == L // 50
    for k, (x, y) in enumerate(pairs):
        assert x.shape == y.shape == (4, 50)
        for b in range(4):  # row b of chunk k: characters b L + 50 k ..., targets one later
            assert x[b].tolist() == list(range(b * L + 50 * k, b * L + 50 * k + 50))
            assert torch.equal(y[b], x[b] + 1)


def test_chunks_are_contiguous_per_row(ch8):
    _check_chunks(ch8)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("inputs, targets = rows[:-1].view(B, L), rows[1:].view(B, L)",
         "inputs, targets = rows[:-1].view(L, B).T, rows[1:].view(L, B).T"),
        ("inputs, targets = rows[:-1].view(B, L), rows[1:].view(B, L)",
         "inputs, targets = rows[1:].view(B, L), rows[:-1].view(B, L)"),
        ("for start in range(0, L - T + 1, T):", "for start in range(0, L - T + 1, T // 2):"),
    ],
    ids=["rows read column-wise", "inputs and targets swapped", "overlapping chunks"],
)  # fmt: skip
def test_chunks_mutants_are_caught(old, new):
    with pytest.raises(AssertionError):
        _check_chunks(_mutant(old, new))


def test_char_gru_carries_its_state(ch8):
    torch.manual_seed(0)
    model = ch8["CharGRU"](11, hidden_size=6).eval()
    x = torch.randint(0, 11, (2, 10))
    with torch.no_grad():
        whole, h_whole = model(x)
        first, h = model(x[:, :4])
        second, h2 = model(x[:, 4:], h)
    assert whole.shape == (2, 10, 11) and h_whole.shape == (1, 2, 6)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(h2, h_whole)
