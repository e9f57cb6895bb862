"""The running bot: a FAISS index over the candidate responses, and the re-ranker.

``Retriever.reply(message)``:

1. **tokenise** the message (one user turn) and look up its ids;
2. **encode** it with the context LSTM: its states C and its first-stage vector c;
3. **search** the FAISS index (inner product of unit vectors: the cosine) for the
   ``shortlist`` candidates nearest to c;
4. **re-rank** those with the matching score (attention from each candidate to the
   message), and turn the scores into confidences with a softmax over the shortlist.

The artefacts live in one folder, ``exports/chatbot`` (beside the exported functions: under
``$WORKBOOK_EXPORTS`` when that is set, and ``$CHATBOT_DIR`` overrides both), written by the
project notebook or by ``python -m chatbot train`` and ``python -m chatbot index``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from chatbot.model import DualEncoder
from chatbot.text import Vocab, pad_batch, tokenize_turns
from chatbot.train import MAX_CONTEXT, encode_responses

MODEL, VOCAB, CANDIDATES, INDEX = "model.pt", "vocab.json", "candidates.json", "index.faiss"


def artefacts_dir() -> Path:
    """Where the trained model and the index are kept."""
    from utils import env

    return Path(os.environ.get("CHATBOT_DIR") or env.exports_dir() / "chatbot")


class ArtefactsMissingError(FileNotFoundError):
    """The model or the index has not been built; the message gives the command."""


def _need(folder: Path, name: str, command: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise ArtefactsMissingError(
            f"{path} is missing: build it with `{command}` (see the README, 'The chatbot project')"
        )
    return path


def save_model(model: DualEncoder, vocab: Vocab, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{MODEL}.tmp"
    torch.save({"config": model.config, "state_dict": model.state_dict()}, tmp)
    os.replace(tmp, folder / MODEL)
    vocab.save(folder / VOCAB)


def load_model(folder: Path, match) -> tuple[DualEncoder, Vocab]:
    saved = torch.load(_need(folder, MODEL, "python -m chatbot train"), weights_only=True)
    vocab = Vocab.load(_need(folder, VOCAB, "python -m chatbot train"))
    cfg = saved["config"]
    model = DualEncoder(cfg["V"], cfg["E"], cfg["H"], match=match, tau=cfg["tau"])
    model.load_state_dict(saved["state_dict"])
    return model.eval(), vocab


def build_index(R: torch.Tensor):
    """An exact inner-product FAISS index over the unit vectors R (M, H)."""
    import faiss

    index = faiss.IndexFlatIP(R.shape[1])
    index.add(np.ascontiguousarray(R.numpy(), dtype=np.float32))
    return index


def write_index(model, vocab, texts: list[str], folder: Path):
    """Encode ``texts``, index them, and save both in ``folder``; returns the index."""
    import faiss

    index = build_index(encode_responses(model, vocab, texts))
    (folder / CANDIDATES).write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    faiss.write_index(index, str(folder / INDEX))
    return index


@dataclass
class Reply:
    responses: list[tuple[str, float]]  # top-k (text, confidence in [0, 1]), best first
    unknown: list[str]  # words of the message not in the vocabulary
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage
    attention: list[tuple[str, float]] = field(default_factory=list)  # the top reply's


class Retriever:
    """A trained dual encoder, its vocabulary and the index of candidate responses."""

    def __init__(self, model: DualEncoder, vocab: Vocab, texts: list[str], index, shortlist=50):
        if index.ntotal != len(texts):
            raise ValueError(f"the index holds {index.ntotal} vectors for {len(texts)} texts")
        self.model, self.vocab, self.texts, self.index = model.eval(), vocab, texts, index
        self.shortlist = min(shortlist, len(texts))
        # the candidates' vectors, for re-ranking without re-encoding them
        self.R = torch.from_numpy(index.reconstruct_n(0, index.ntotal))
        self.n_candidates = len(texts)

    @classmethod
    def load(cls, folder: Path | None = None, match=None, shortlist: int = 50) -> Retriever:
        import faiss

        folder = Path(folder or artefacts_dir())
        if match is None:
            from chatbot import parts

            match = parts.load().attention_match
        model, vocab = load_model(folder, match)
        texts = json.loads(
            _need(folder, CANDIDATES, "python -m chatbot index").read_text(encoding="utf-8")
        )
        index = faiss.read_index(str(_need(folder, INDEX, "python -m chatbot index")))
        return cls(model, vocab, texts, index, shortlist)

    def reply(self, message: str, k: int = 3) -> Reply:
        """The top ``k`` responses to one message (a user's turn)."""
        return self.reply_batch([[message]], k)[0]

    def reply_turns(self, turns: list[str], k: int = 3) -> Reply:
        """The top ``k`` responses to a context (turns such as ``"USER: ..."``)."""
        return self.reply_batch([turns], k)[0]

    @torch.no_grad()
    def reply_batch(self, contexts: list[list[str]], k: int = 3) -> list[Reply]:
        """:meth:`reply_turns` for several contexts at once: one padded batch through the
        encoder, one FAISS search, one re-ranking (what a busy server does, see
        :class:`MicroBatcher`). Each reply's timings are those of the whole batch."""
        t = [time.perf_counter()]
        tokens = [tokenize_turns(turns)[-MAX_CONTEXT:] for turns in contexts]
        x, lengths = pad_batch([self.vocab.encode(tok) for tok in tokens], MAX_CONTEXT, keep="end")
        t.append(time.perf_counter())
        C, mask, c = self.model.encode_context(x, lengths)
        t.append(time.perf_counter())
        _, found = self.index.search(
            np.ascontiguousarray(c.numpy(), dtype=np.float32), self.shortlist
        )
        t.append(time.perf_counter())
        scores, a = self.model.matching(C, mask, self.R[torch.from_numpy(found)])
        p = torch.softmax(scores, dim=1)
        top = torch.argsort(p, dim=1, descending=True)[:, :k]
        t.append(time.perf_counter())
        timings = dict(
            zip(("tokenize", "encode", "search", "rerank"), (np.diff(t) * 1000).round(3).tolist())
        )
        return [
            Reply(
                responses=[(self.texts[found[n, i]], float(p[n, i])) for i in top[n]],
                unknown=self.vocab.unknown(tokens[n]),
                timings=dict(timings),
                attention=list(zip(tokens[n], a[n, top[n, 0], : len(tokens[n])].tolist())),
            )
            for n in range(len(contexts))
        ]


class MicroBatcher:
    """A thread-safe ``reply(message, k)`` that answers concurrent requests in batches.

    Each request waits in a queue; one worker thread takes every request waiting at
    that moment (up to ``max_batch``) and answers them with one
    :meth:`Retriever.reply_batch`. An idle server answers a request at once (a batch of
    one); under load, the requests that arrive while a batch is computed form the next
    one, so 20 clients cost a few batched passes instead of 20 small ones fighting
    over two cores.
    """

    def __init__(self, retriever: Retriever, max_batch: int = 32):
        import queue
        import threading

        self.retriever, self.max_batch = retriever, max_batch
        self.n_candidates = retriever.n_candidates
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._work, name="reply-batcher", daemon=True).start()

    def reply(self, message: str, k: int = 3) -> Reply:
        import concurrent.futures

        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((message, k, future))
        return future.result()

    def _work(self) -> None:
        import queue

        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            k = max(item[1] for item in batch)
            try:
                replies = self.retriever.reply_batch([[m] for m, _, _ in batch], k)
            except Exception as e:  # noqa: BLE001 - each waiting request gets the error
                for _, _, future in batch:
                    future.set_exception(e)
                continue
            for (_, k_i, future), r in zip(batch, replies):
                r.responses = r.responses[:k_i]
                future.set_result(r)
