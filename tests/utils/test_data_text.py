"""Tokenizers, Vocab, pad_collate, BucketBatchSampler, and the synthetic stand-ins."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from utils.data import (
    EOS,
    PAD,
    SOS,
    UNK,
    BucketBatchSampler,
    DatasetUnavailableError,
    Vocab,
    load_dataset,
    pad_collate,
    tokenize_chars,
    tokenize_words,
)
from utils.data.synthetic import stand_in


def test_tokenize_words():
    assert tokenize_words("A great film!<br /><br />Loved it.") == [
        "a",
        "great",
        "film",
        "!",
        "loved",
        "it",
        ".",
    ]
    assert tokenize_words("J'ai froid, très froid.") == [
        "j'",
        "ai",
        "froid",
        ",",
        "très",
        "froid",
        ".",
    ]
    assert tokenize_words("Well-made, 3.5 stars", lower=False) == ["Well-made", ",", "3.5", "stars"]
    assert tokenize_chars("To be\n") == ["T", "o", " ", "b", "e", "\n"]
    with pytest.raises(TypeError, match="must be a str"):
        tokenize_words(["not", "a", "string"])


def test_vocab_roundtrip_and_specials(tmp_path):
    texts = [["the", "cat", "sat"], ["the", "dog"], ["the", "cat"]]
    vocab = Vocab.build(texts, min_freq=2)
    assert vocab.itos == [PAD, UNK, SOS, EOS, "the", "cat"]
    assert (vocab.pad_id, vocab.unk_id, vocab.sos_id, vocab.eos_id) == (0, 1, 2, 3)
    ids = vocab.encode(["the", "dog", "cat"], add_sos=True, add_eos=True)
    assert ids.tolist() == [2, 4, 1, 5, 3] and ids.dtype == torch.long
    assert vocab.decode(ids) == ["the", UNK, "cat"]
    assert vocab.decode([4, 3, 5]) == ["the"]  # stops at <eos>
    assert vocab.decode(ids, strip_specials=False) == [SOS, "the", UNK, "cat", EOS]
    assert len(Vocab.build(texts, max_size=5)) == 5
    vocab.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json").itos == vocab.itos
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([99])
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build(texts, min_freq=0)
    with pytest.raises(TypeError, match="not one string"):
        Vocab.build("the cat")


def test_pad_collate_labels_and_sequences():
    batch = [(torch.tensor([5, 6, 7]), 1), (torch.tensor([8]), 0)]
    out = pad_collate(batch)
    assert out["X"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert out["lengths"].tolist() == [3, 1] and out["Y"].tolist() == [1, 0]
    assert out["mask"].tolist() == [[True, True, True], [True, False, False]]
    seq = pad_collate([([1, 2], [3]), ([4], [5, 6, 7])], pad_id=0)
    assert seq["Y"].tolist() == [[3, 0, 0], [5, 6, 7]] and seq["Y_lengths"].tolist() == [1, 3]
    only_x = pad_collate([[1, 2], [3, 4, 5]])
    assert only_x["X"].shape == (2, 3) and "Y" not in only_x
    with pytest.raises(ValueError, match="empty batch"):
        pad_collate([])
    with pytest.raises(ValueError, match="item 1: x is empty"):
        pad_collate([[1], []])


def test_bucket_batch_sampler():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    sampler = BucketBatchSampler(lengths, batch_size=32, pool_factor=4, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))  # every index once
    assert batches == list(BucketBatchSampler(lengths, batch_size=32, pool_factor=4, seed=0))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    # Buckets waste far less padding than random batches.
    spread = lambda bs: sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in bs)  # noqa: E731
    random_batches = [list(range(s, min(s + 32, 1000))) for s in range(0, 1000, 32)]
    assert spread(batches) < spread(random_batches) / 4
    dropped = BucketBatchSampler(lengths, batch_size=32, drop_last=True)
    assert all(len(b) == 32 for b in dropped) and len(list(dropped)) == len(dropped)
    ordered = list(BucketBatchSampler(lengths, batch_size=100, shuffle=False))
    assert [lengths[b[0]] for b in ordered] == sorted(lengths[b[0]] for b in ordered)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        BucketBatchSampler(lengths, batch_size=0)
    with pytest.raises(ValueError, match="lengths is empty"):
        BucketBatchSampler([], batch_size=4)


def test_sampler_and_collate_in_a_dataloader():
    data = [(torch.arange(1, n + 1), n % 2) for n in [3, 9, 4, 8, 2, 7]]
    loader = DataLoader(data, batch_sampler=BucketBatchSampler([len(x) for x, _ in data], 2),
                        collate_fn=pad_collate)  # fmt: skip
    for batch in loader:
        assert batch["X"].shape[1] == batch["lengths"].max()
        assert torch.equal(batch["mask"].sum(1), batch["lengths"])


@pytest.mark.parametrize(
    "name", ["imdb", "wikiann-en", "sgd", "eng-fra", "ecg5000", "tinyshakespeare", "airline"]
)
def test_stand_ins_are_labelled_and_deterministic(name, capsys):
    first, second = stand_in(name), stand_in(name)
    assert "[SYNTHETIC STAND-IN]" in capsys.readouterr().out
    if hasattr(first, "column_names"):  # a DatasetDict
        assert first["train"].info.description.startswith("[SYNTHETIC STAND-IN]")
        assert first["train"].to_dict() == second["train"].to_dict()
    elif isinstance(first, pd.Series):
        assert first.attrs["synthetic"] and first.equals(second)
    elif isinstance(first, dict):
        assert (first["train"][0] == second["train"][0]).all() and first["train"][0].shape[1] == 140
    else:
        assert first == second and len(first) > 100


def test_stand_in_matches_the_real_schema():
    ner = stand_in("wikiann-en")
    assert ner["train"].features["ner_tags"].feature.names[:3] == ["O", "B-PER", "I-PER"]
    assert all(len(t) == len(g) for t, g in zip(ner["train"]["tokens"], ner["train"]["ner_tags"]))
    imdb = stand_in("imdb")
    assert imdb["train"].features["label"].names == ["neg", "pos"]


def test_a_failed_load_never_returns_a_stand_in(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_DATA", str(tmp_path))
    monkeypatch.delenv("WORKBOOK_MIRROR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError):
        load_dataset("eng-fra", progress=False)


def test_data_layer_helpers_behave_as_the_chapter_says():
    """Chapter 5, Section 6 describes utils.data's BucketBatchSampler and pad_collate: keep the text true."""
    from utils.data import BucketBatchSampler, pad_collate

    lengths = [5, 30, 6, 29, 7, 28, 8, 27] * 4
    sampler = BucketBatchSampler(lengths, 4, pool_factor=8, seed=0)  # one pool of 32
    first = list(sampler)
    assert sorted(i for b in first for i in b) == list(range(len(lengths)))
    for batch in first:  # each pool is sorted by length before it is cut: similar lengths together
        assert max(lengths[i] for i in batch) - min(lengths[i] for i in batch) <= 3
    assert list(sampler) == first  # same order again until set_epoch is called
    sampler.set_epoch(1)
    assert list(sampler) != first
    batch = pad_collate([([3, 4, 5], 1), ([6], 0)])
    assert batch["X"].tolist() == [[3, 4, 5], [6, 0, 0]]
    assert batch["lengths"].tolist() == [3, 1] and batch["Y"].tolist() == [1, 0]
    assert batch["mask"].tolist() == [[True, True, True], [True, False, False]]
