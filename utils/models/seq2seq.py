"""Generated from notebooks/06_seq2seq.ipynb (cells tagged export:seq2seq) by `make modules`.

Do not edit: change the notebook, then run `make modules`.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from utils.models.masking import last_states, length_mask
from utils.tasks import date_task, reversal_task


class Vocab:
    """Tokens <-> ids; ids 0..3 are ``SPECIALS`` (``PAD, SOS, EOS, UNK``) in every vocabulary."""

    def __init__(self, itos):
        self.itos = list(itos)
        if self.itos[: len(SPECIALS)] != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {self.itos[:4]}")
        self.stoi = {token: i for i, token in enumerate(self.itos)}

    @classmethod
    def build(cls, token_lists, min_freq: int = 1):
        """The specials, then every token seen at least ``min_freq`` times, sorted."""
        counts = Counter(token for tokens in token_lists for token in tokens)
        kept = sorted(t for t, n in counts.items() if n >= min_freq and t not in SPECIALS)
        return cls(SPECIALS + kept)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens) -> list[int]:
        """Token ids, unknown tokens as ``UNK``, with ``EOS`` appended."""
        return [self.stoi.get(token, UNK) for token in tokens] + [EOS]

    def decode(self, ids) -> list[str]:
        """Tokens up to the first ``EOS``; ``PAD`` and ``SOS`` dropped."""
        tokens = []
        for i in map(int, ids):
            if i == EOS:
                break
            if i not in (PAD, SOS):
                tokens.append(self.itos[i])
        return tokens


SPECIALS = ["<pad>", "<sos>", "<eos>", "<unk>"]
PAD, SOS, EOS, UNK = 0, 1, 2, 3  # their ids


def reversal_pairs(n: int, max_len: int, *, min_len: int = 1, vocab_size: int = 10, seed: int = 0):
    """``n`` pairs of id lists (source, reversed source), both ending with ``EOS``, lengths uniform in
    ``[min_len, max_len]`` (``utils.tasks.reversal_task``), and the one vocabulary of both sides."""
    X, _, lengths = reversal_task(
        n, max_len, vocab_size, seed, variable_length=True, min_len=min_len
    )
    vocab = Vocab.build([[str(i) for i in range(1, vocab_size)]])
    pairs = []
    for row, length in zip(X.tolist(), lengths.tolist()):
        tokens = [str(i) for i in row[:length]]
        pairs.append((vocab.encode(tokens), vocab.encode(tokens[::-1])))
    return pairs, vocab


def date_pairs(n: int, *, seed: int = 0, vocabs=None):
    """``n`` date pairs (``utils.tasks.date_task``) as character ids, and ``(src_vocab, tgt_vocab)``:
    built from these pairs unless ``vocabs`` gives them (use the training set's for a test set)."""
    text = date_task(n, seed=seed)
    if vocabs is None:
        vocabs = Vocab.build(s for s, _ in text), Vocab.build(t for _, t in text)
    src_vocab, tgt_vocab = vocabs
    return [(src_vocab.encode(s), tgt_vocab.encode(t)) for s, t in text], vocabs


def pad_batch(seqs):
    """``N`` id lists -> ``ids: (N, T)`` long, padded with ``PAD``, and ``lengths: (N,)`` long."""
    if len(seqs) == 0:
        raise ValueError("pad_batch got an empty batch")
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    if (lengths < 1).any():
        raise ValueError(f"every sequence needs at least one token, got lengths {lengths.tolist()}")
    ids = torch.full((len(seqs), int(lengths.max())), PAD, dtype=torch.long)
    for i, seq in enumerate(seqs):
        ids[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return ids, lengths


class Batch(NamedTuple):
    """``src: (N, S)``, ``src_lengths: (N,)``, ``tgt_in: (N, T)`` = ``SOS y_1 .. y_{T-1}``,
    ``tgt_out: (N, T)`` = ``y_1 .. y_T`` (``y_T = EOS``); ``PAD`` after each row's end."""

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor


def make_batch(pairs) -> Batch:
    """One padded ``Batch`` from ``(src ids, tgt ids)`` pairs; every tgt ends with ``EOS``."""
    for _, tgt in pairs:
        if len(tgt) == 0 or tgt[-1] != EOS:
            raise ValueError(f"target ids must end with EOS ({EOS}): use Vocab.encode; got {tgt}")
    src, src_lengths = pad_batch([list(s) for s, _ in pairs])
    tgt_out, _ = pad_batch([list(t) for _, t in pairs])
    tgt_in, _ = pad_batch([[SOS] + list(t[:-1]) for _, t in pairs])
    return Batch(src, src_lengths, tgt_in, tgt_out)


def batches(pairs, batch_size: int, *, shuffle: bool = False, seed: int = 0):
    """Iterate over ``Batch``es of ``batch_size`` pairs (the last may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = list(range(len(pairs)))
    if shuffle:
        random.Random(seed).shuffle(order)
    for i in range(0, len(order), batch_size):
        yield make_batch([pairs[j] for j in order[i : i + batch_size]])


def sequence_loss(logits, tgt_out):
    """Mean cross-entropy over the real target tokens (``EOS`` included, ``PAD`` excluded).
    ``logits: (N, T, V)``, ``tgt_out: (N, T)`` -> a scalar."""
    if logits.dim() != 3 or logits.shape[:2] != tgt_out.shape:
        raise ValueError(
            f"logits (N, T, V) and tgt_out (N, T) disagree: {tuple(logits.shape)}, {tuple(tgt_out.shape)}"
        )
    lengths = (tgt_out != PAD).sum(dim=1)  # real tokens per row, EOS included
    mask = torch.arange(tgt_out.shape[1], device=tgt_out.device)[None, :] < lengths[:, None]
    per_token = F.cross_entropy(logits.transpose(1, 2), tgt_out, reduction="none")  # (N, T)
    return (per_token * mask).sum() / mask.sum()


def check_source(src, src_lengths):
    """Raise a clear error unless ``src: (N, S)`` ids and ``src_lengths: (N,)`` in ``1..S``."""
    if src.dim() != 2 or src.is_floating_point():
        raise ValueError(f"src must be (N, S) token ids, got {src.dtype} {tuple(src.shape)}")
    if src.shape[0] == 0:
        raise ValueError("empty batch: src has no rows")
    if src_lengths.shape != (src.shape[0],):
        raise ValueError(f"src_lengths must be ({src.shape[0]},), got {tuple(src_lengths.shape)}")
    if (src_lengths < 1).any() or (src_lengths > src.shape[1]).any():
        raise ValueError(f"src_lengths must be in 1..{src.shape[1]}, got {src_lengths.tolist()}")


class Encoder(nn.Module):
    """Embedding + GRU over the packed source.

    ``forward(src (N, S), src_lengths (N,))`` -> ``outputs (N, S, H_enc)`` (zeros on padding;
    ``H_enc = 2H`` when bidirectional) and ``final (N, H)``: the state the decoder starts from, the
    top layer's state after each row's last real token (both directions through ``bridge``).
    """

    def __init__(
        self, vocab_size, embed_size, hidden_size, num_layers=1, dropout=0.0, bidirectional=False
    ):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.bidirectional = bidirectional
        self.output_size = hidden_size * (2 if bidirectional else 1)  # H_enc
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(
            embed_size, hidden_size, num_layers, batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional,
        )  # fmt: skip
        self.bridge = nn.Linear(2 * hidden_size, hidden_size) if bidirectional else None

    def forward(self, src, src_lengths):
        check_source(src, src_lengths)
        X = self.dropout(self.embedding(src))  # (N, S, E)
        packed = pack_padded_sequence(X, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)
        outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        final = last_states(h_n, self.num_layers, self.bidirectional)  # (N, H) or (N, 2H)
        if self.bidirectional:
            final = torch.tanh(self.bridge(final))
        return outputs, final


class Memory(NamedTuple):
    """What the decoder reads: ``outputs (N, S, H_enc)``, ``mask (N, S)`` True on real source
    tokens, ``final (N, H)``. Batch first everywhere, so ``reorder_state`` applies to it."""

    outputs: torch.Tensor
    mask: torch.Tensor
    final: torch.Tensor


class Decoder(nn.Module):
    """The fixed-context decoder (Cho et al., 2014): the context ``c = memory.final`` is the
    initial state of every layer and is fed again at every step.

    ``step(y_prev (N,), state (N, L, H), memory)`` -> ``logits (N, V)``, ``state (N, L, H)``, ``None``
    (no attention weights). ``s_t = GRU([e(y_{t-1}); c], s_{t-1})``, logits from ``[s_t; e(y_{t-1}); c]``.
    """

    def __init__(self, vocab_size, embed_size, hidden_size, num_layers=1, dropout=0.0):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(
            embed_size + hidden_size, hidden_size, num_layers, batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )  # fmt: skip
        self.out = nn.Linear(2 * hidden_size + embed_size, vocab_size)

    def init_state(self, memory):
        """``(N, L, H)``: every layer starts from the context (batch first, for beam search)."""
        return memory.final[:, None, :].repeat(1, self.num_layers, 1)

    def step(self, y_prev, state, memory):
        e = self.dropout(self.embedding(y_prev))  # (N, E)
        c = memory.final  # (N, H): the same context at every step
        x = torch.cat([e, c], dim=-1)[:, None, :]  # (N, 1, E + H)
        out, h = self.rnn(x, state.transpose(0, 1).contiguous())  # GRU states are (L, N, H)
        s = out[:, 0]  # (N, H): the top layer's s_t
        logits = self.out(self.dropout(torch.cat([s, e, c], dim=-1)))  # (N, V)
        return logits, h.transpose(0, 1), None

    def forward_sequence(self, tgt_in, state, memory):
        """All T steps at once under teacher forcing (the inputs are known): ``tgt_in: (N, T)`` ->
        ``logits (N, T, V)``, the same as T calls of ``step`` fed ``tgt_in[:, t]``."""
        E = self.dropout(self.embedding(tgt_in))  # (N, T, E)
        C = memory.final[:, None, :].expand(-1, tgt_in.shape[1], -1)  # (N, T, H)
        S, _ = self.rnn(torch.cat([E, C], dim=-1), state.transpose(0, 1).contiguous())
        return self.out(self.dropout(torch.cat([S, E, C], dim=-1)))


class Seq2Seq(nn.Module):
    """An encoder and any decoder with ``init_state`` and ``step``.

    ``forward(src (N, S), src_lengths (N,), tgt_in (N, T), teacher_forcing=1.0)`` -> logits
    ``(N, T, V)``. At step t > 1 the decoder reads the true ``tgt_in[:, t]`` with probability
    ``teacher_forcing`` (drawn per row and step), else its own previous prediction.
    """

    def __init__(self, encoder, decoder):
        super().__init__()
        sizes = getattr(encoder, "hidden_size", None), getattr(decoder, "hidden_size", None)
        if None not in sizes and sizes[0] != sizes[1]:
            raise ValueError(f"encoder and decoder hidden sizes differ: {sizes[0]} != {sizes[1]}")
        self.encoder, self.decoder = encoder, decoder

    def encode(self, src, src_lengths) -> Memory:
        outputs, final = self.encoder(src, src_lengths)
        return Memory(outputs, length_mask(src_lengths, src.shape[1]), final)

    def forward(self, src, src_lengths, tgt_in, teacher_forcing: float = 1.0):
        if tgt_in.dim() != 2 or tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"tgt_in must be ({src.shape[0]}, T), got {tuple(tgt_in.shape)}")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing is a probability, got {teacher_forcing}")
        memory = self.encode(src, src_lengths)
        state = self.decoder.init_state(memory)
        if teacher_forcing == 1.0 and hasattr(self.decoder, "forward_sequence"):
            return self.decoder.forward_sequence(tgt_in, state, memory)  # one fused call
        y_prev, logits = tgt_in[:, 0], []  # y_0 = SOS
        for t in range(tgt_in.shape[1]):
            if t > 0:
                y_prev = tgt_in[:, t]
                if teacher_forcing < 1.0:  # scheduled sampling: sometimes feed the prediction
                    use_truth = torch.rand(y_prev.shape, device=y_prev.device) < teacher_forcing
                    y_prev = torch.where(use_truth, y_prev, logits[-1].argmax(dim=-1))
            step_logits, state, _ = self.decoder.step(y_prev, state, memory)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)


def train_seq2seq(
    model, train_pairs, *, steps, batch_size=64, lr=3e-3, teacher_forcing=1.0, clip=1.0, seed=0
):
    """Adam on ``sequence_loss`` with the gradient norm clipped to ``clip``.

    ``teacher_forcing``: a ratio, or a schedule ``step -> ratio``. Batches are shuffled with
    ``seed``; returns ``{"loss": [...], "teacher_forcing": [...]}``, one entry per step.
    """
    if steps < 1 or len(train_pairs) == 0:
        raise ValueError(
            f"need steps >= 1 and training pairs, got {steps} steps, {len(train_pairs)} pairs"
        )
    schedule = teacher_forcing if callable(teacher_forcing) else (lambda step: teacher_forcing)
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = {"loss": [], "teacher_forcing": []}
    torch.manual_seed(seed)  # the scheduled-sampling draws
    model.train()
    epoch = 0
    while len(history["loss"]) < steps:
        for batch in batches(train_pairs, batch_size, shuffle=True, seed=seed + epoch):
            if len(history["loss"]) == steps:
                break
            ratio = float(schedule(len(history["loss"])))
            src, src_lengths, tgt_in, tgt_out = (x.to(device) for x in batch)
            loss = sequence_loss(model(src, src_lengths, tgt_in, ratio), tgt_out)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            history["loss"].append(loss.item())
            history["teacher_forcing"].append(ratio)
        epoch += 1
    return history


def linear_decay(steps: int, end: float = 0.0):
    """Teacher-forcing ratio falling in a straight line from 1 to ``end`` over ``steps``."""
    return lambda step: max(end, 1.0 - (1.0 - end) * step / steps)


def exponential_decay(steps: int, end: float = 0.05):
    """``k ** step`` (Bengio et al., 2015), ``k`` chosen so that it reaches ``end`` at ``steps``."""
    k = end ** (1.0 / steps)
    return lambda step: k**step


def inverse_sigmoid_decay(steps: int):
    """``k / (k + exp(step / k))`` (Bengio et al., 2015), ``k`` chosen so that it is 0.5 at ``steps / 2``."""
    lo, hi = 1.0, max(3.0, float(steps))  # k log k = steps / 2 has its root in between
    for _ in range(60):
        k = (lo + hi) / 2
        lo, hi = (k, hi) if k * math.log(k) < steps / 2 else (lo, k)
    return lambda step: k / (k + math.exp(step / k))
