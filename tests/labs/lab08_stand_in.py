"""A stand-in for the model the project notebook trains: an untrained, small dual encoder
and the vocabulary of 2,000 training pairs (built once per process). ``rank_responses`` of
the solution runs on it in tests/labs/test_lab08_checks.py; it has the trained model's
interface, not its skill (the Recall@1 bar is tested with TF-IDF there)."""

from __future__ import annotations

import functools

import torch


def _attention(C, mask, q):
    scores = torch.einsum("nth,nmh->nmt", C, q).masked_fill(~mask[:, None], float("-inf"))
    a = torch.softmax(scores, dim=-1)
    return torch.einsum("nmt,nth->nmh", a, C), a


@functools.cache
def untrained():
    from chatbot.data import load_pairs
    from chatbot.model import DualEncoder
    from chatbot.text import Vocab

    train = load_pairs()["train"].subset(range(2_000))
    vocab = Vocab.build(train.context_tokens() + train.response_tokens())
    torch.manual_seed(0)
    return DualEncoder(len(vocab), 16, 16, match=_attention).eval(), vocab
