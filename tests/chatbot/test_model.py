"""The chatbot's model side: words to ids, the fixed 1-of-N sets, the index and the
retriever, the A/B bootstrap, and the command line (train, index, serve, report).

The exercises come from the project's solution as ``utils.instructor.exports`` writes
them (what a student's finished notebook exports); a few steps of training on a small
part of SGD make a model that has the real interface, not the real skill.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import torch

from chatbot import index as ix
from chatbot import parts as parts_module
from chatbot.data import Pairs, load_pairs, one_of_n, text_ids
from chatbot.evaluate import bootstrap_ab, candidate_texts
from chatbot.model import DualEncoder
from chatbot.text import Vocab, pad_batch, tokenize, tokenize_turns
from chatbot.train import fit
from tests.factories import ROOT, free_port
from utils.export import load_module
from utils.instructor.exports import write_reference_exports


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    write_reference_exports(folder)
    return load_module(folder / "chatbot_parts.py", "chatbot_parts_reference")


# ------------------------------------------------------------------ words and pairs


def test_tokens_speakers_and_the_vocabulary(tmp_path):
    assert tokenize("Book it for 7 pm, please.") == [
        "book",
        "it",
        "for",
        "7",
        "pm",
        ",",
        "please",
        ".",
    ]
    assert tokenize_turns(["USER: I'm hungry.", "SYSTEM: Where?", "no prefix"]) == [
        "__user__", "i'm", "hungry", ".", "__system__", "where", "?", "__user__", "no", "prefix",
    ]  # fmt: skip
    vocab = Vocab.build([["a", "b", "a"], ["a", "c", "b"]], min_count=2)
    assert vocab.itos[4:] == ["a", "b"] and vocab.encode(["a", "zzz"]) == [4, 1]
    assert vocab.unknown(["a", "zzz", "q", "zzz"]) == ["zzz", "q"]
    vocab.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json").itos == vocab.itos
    with pytest.raises(ValueError, match="starts with"):
        Vocab(["a", "b"])


def test_pad_batch_keeps_the_end_of_a_context_and_the_start_of_a_response():
    x, lengths = pad_batch([[5, 6, 7, 8], [9], []], 3, keep="end")
    assert x.tolist() == [[6, 7, 8], [9, 0, 0], [0, 0, 0]] and lengths.tolist() == [3, 1, 1]
    x, _ = pad_batch([[5, 6, 7, 8]], 3, keep="start")
    assert x.tolist() == [[5, 6, 7]]
    with pytest.raises(ValueError):
        pad_batch([[1]], 3, keep="middle")


def _pairs(responses):
    n = len(responses)
    return Pairs("test", [f"d{i}" for i in range(n)], [[f"USER: q{i}"] for i in range(n)],
                 list(responses), text_ids(list(responses)))  # fmt: skip


def test_one_of_n_draws_distinct_texts_and_keeps_the_truth_first():
    responses = ["Have a great day."] * 30 + [f"reply {i}" for i in range(30)]
    pairs = _pairs(responses)
    cand = one_of_n(pairs, 10, seed=3)
    assert cand.shape == (60, 10) and (cand[:, 0] == np.arange(60)).all()
    for row in cand:
        texts = [pairs.text_id[j] for j in row]
        assert len(set(texts)) == 10  # the truth's text never among its distractors
    assert (one_of_n(pairs, 10, seed=3) == cand).all()
    assert len(one_of_n(pairs, 10, seed=3, limit=7)) == 7
    with pytest.raises(ValueError, match="distinct responses"):
        one_of_n(_pairs(["a", "b", "a"]), 10)


def test_candidate_texts_are_the_most_frequent_first():
    pairs = _pairs(["b", "a", "b", "c", "a", "b"])
    assert candidate_texts(pairs, 2) == ["b", "a"]


def test_recall_at_k_on_a_case_worked_by_hand(parts):
    scores = torch.tensor([[0.9, 0.1, 0.2], [0.5, 0.7, 0.1], [0.4, 0.4, 0.1]])
    # ranks 0, 1 and 1 (the tie counts against the true response)
    assert parts.recall_at_k(scores, 1) == pytest.approx(1 / 3)
    assert parts.recall_at_k(scores, 2) == pytest.approx(1.0)


def test_bootstrap_interval_covers_no_difference_and_excludes_a_large_one():
    rng = np.random.default_rng(7)  # not the coin's seed (0), or the arms would follow it
    same = rng.random(2_000) < 0.5
    ab = bootstrap_ab(same, same, reps=500)
    assert ab["ci95"][0] < 0 < ab["ci95"][1]
    ab = bootstrap_ab(np.ones(2_000, bool), rng.random(2_000) < 0.3, reps=500)
    assert ab["ci95"][0] > 0.6 and ab["n_A"] + ab["n_B"] == 2_000


# ------------------------------------------------------------------ model, index, retriever


@pytest.fixture(scope="module")
def small(parts):
    """A dual encoder trained for 30 steps on 2,000 SGD pairs, its vocabulary and an index."""
    train = load_pairs()["train"].subset(range(2_000))
    vocab = Vocab.build(train.context_tokens() + train.response_tokens())
    torch.manual_seed(0)
    model = DualEncoder(len(vocab), 16, 16, match=parts.attention_match)
    history = fit(model, train, vocab, parts, steps=30, batch_size=16, progress=False)
    texts = candidate_texts(train, 300)
    return model, vocab, texts, history


@pytest.mark.data
def test_training_lowers_the_loss(small):
    loss = small[3]["loss"]
    assert len(loss) == 30 and np.mean(loss[-5:]) < np.mean(loss[:5])


@pytest.mark.data
def test_each_candidate_is_its_own_nearest_neighbour(small):
    model, vocab, texts, _ = small
    R = ix.encode_responses(model, vocab, texts)
    distinct = torch.unique(R, dim=0)
    index = ix.build_index(R)
    _, nearest = index.search(distinct.numpy(), 1)
    assert torch.equal(R[torch.from_numpy(nearest.ravel())], distinct)


@pytest.mark.data
def test_the_retriever_answers_any_message(small, tmp_path, parts):
    model, vocab, texts, _ = small
    index = ix.write_index(model, vocab, texts, tmp_path)
    ix.save_model(model, vocab, tmp_path)
    retriever = ix.Retriever(model, vocab, texts, index, shortlist=20)
    reply = retriever.reply("I want a table for two in San Jose tonight")
    confidences = [c for _, c in reply.responses]
    assert len(reply.responses) == 3 and confidences == sorted(confidences, reverse=True)
    assert all(0 <= c <= 1 for c in confidences) and all(t in texts for t, _ in reply.responses)
    assert set(reply.timings) == {"tokenize", "encode", "search", "rerank"}
    unknown = retriever.reply("fnord blarg quux")
    assert unknown.unknown == ["fnord", "blarg", "quux"] and len(unknown.responses) == 3
    assert [w for w, _ in reply.attention][0] == "__user__"
    again = ix.Retriever.load(tmp_path, parts.attention_match, shortlist=20)
    assert again.reply("hello there").responses == retriever.reply("hello there").responses


def test_missing_artefacts_and_parts_say_what_to_run(tmp_path, monkeypatch):
    with pytest.raises(ix.ArtefactsMissingError, match="python -m chatbot train"):
        ix.Retriever.load(tmp_path, match=lambda *a: None)
    monkeypatch.setenv("WORKBOOK_EXPORTS", str(tmp_path / "none"))
    with pytest.raises(parts_module.PartsMissingError, match="export cell"):
        parts_module.load()
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "chatbot_parts.py").write_text("def recall_at_k(s, k):\n    return 0.0\n")
    with pytest.raises(parts_module.PartsMissingError, match="lacks sample_negatives"):
        parts_module.load()


# ------------------------------------------------------------------ the command line


@pytest.mark.data
@pytest.mark.slow
def test_train_index_serve_report_from_the_command_line(tmp_path, monkeypatch, capsys):
    """The four commands as a student runs them (train, index and report in this process,
    which loads SGD once; serve as its own process, on uvicorn)."""
    from chatbot.__main__ import main

    exports = tmp_path / "exports"
    write_reference_exports(exports)
    monkeypatch.setenv("WORKBOOK_EXPORTS", str(exports))
    monkeypatch.setenv("WORKBOOK_FAST", "1")
    folder = exports / "chatbot"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    empty = subprocess.run([sys.executable, "-m", "chatbot", "serve", "--dir", str(tmp_path / "no")],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert empty.returncode == 2 and "python -m chatbot train" in empty.stderr
    assert main(["train", "--steps", "5", "--threads", "1"]) == 0
    assert "[metric] chatbot training seconds" in capsys.readouterr().out
    assert main(["index", "--candidates", "500", "--threads", "1"]) == 0
    assert "indexed 500 candidate responses" in capsys.readouterr().out
    assert len(json.loads((folder / "conversations.json").read_text())) == 100
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "chatbot", "serve", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        t0 = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    assert json.load(r) == {"status": "ok", "candidates": 500}
                break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()
                assert time.perf_counter() - t0 < 60, "the server did not start within 60 s"
                time.sleep(0.2)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/reply", data=b'{"message": "book a table please"}',
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as r:
            assert len(json.load(r)["responses"]) == 3
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert main(["report", "--threads", "1"]) == 0
    report = (folder / "report.md").read_text()
    assert "of the time in top-1" in report and (folder / "attention.png").is_file()
    assert json.loads((folder / "metrics.json").read_text())["fast"] is True


@pytest.mark.data
def test_the_micro_batcher_answers_concurrent_requests_as_one_by_one(small):
    """Requests that arrive together are answered in one batch, with the answers each would
    get alone; an error reaches every request of its batch."""
    import concurrent.futures

    model, vocab, texts, _ = small
    R = ix.encode_responses(model, vocab, texts)
    retriever = ix.Retriever(model, vocab, texts, ix.build_index(R))
    messages = [f"book a table for {n} people in San Jose" for n in range(2, 14)] + ["thanks"]
    alone = [retriever.reply(m, k=2).responses for m in messages]
    batcher = ix.MicroBatcher(retriever, max_batch=8)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda m: batcher.reply(m, k=2).responses, messages))
    for a, b in zip(alone, together):
        assert [t for t, _ in a] == [t for t, _ in b]
        assert np.allclose([c for _, c in a], [c for _, c in b], atol=1e-5)
    broken = ix.MicroBatcher(ix.Retriever(model, vocab, texts, ix.build_index(R)))
    broken.retriever.reply_batch = lambda *a: 1 / 0
    with pytest.raises(ZeroDivisionError):
        broken.reply("hello")
