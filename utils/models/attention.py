"""Generated from notebooks/07_attention.ipynb (cells tagged export:attention) by `make modules`.

Do not edit: change the notebook, then run `make modules`.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def dot_score(query, keys):
    """Luong's dot score h_t . h_s for every source position s.

    ``query: (N, H)`` or ``(N, T, H)``, ``keys: (N, S, H)`` -> scores ``(N, S)`` or ``(N, T, S)``.
    """
    if query.shape[-1] != keys.shape[-1]:
        raise ValueError(
            f"dot scores need query and keys of one size, got {query.shape[-1]} and {keys.shape[-1]}"
        )
    if query.dim() == 2:
        return (keys @ query.unsqueeze(-1)).squeeze(-1)
    return query @ keys.transpose(1, 2)


def scaled_dot_score(query, keys):
    """The dot score divided by sqrt(H) (Vaswani et al., 2017). Shapes as :func:`dot_score`."""
    return dot_score(query, keys) / math.sqrt(keys.shape[-1])


SCORES = ("dot", "scaled_dot", "general", "concat", "additive")
"""Score names :class:`Score` accepts ("additive", Bahdanau's name, is Luong's "concat")."""


class Score(nn.Module):
    """An attention score by name: ``Score(name, query_size, key_size)(query, keys)``.

    - ``"dot"``: h_t . h_s;  ``"scaled_dot"``: h_t . h_s / sqrt(H)  (no parameters)
    - ``"general"``: h_t W_a h_s^T with ``W_a: (query_size, key_size)``
    - ``"concat"`` = ``"additive"``: v_a . tanh([h_t; h_s] W_a) = v_a . tanh(h_t W_q + h_s W_k),
      ``W_q: (query_size, attn_size)``, ``W_k: (key_size, attn_size)``, ``v_a: (attn_size,)``

    ``query: (N, query_size)`` or ``(N, T, query_size)``, ``keys: (N, S, key_size)`` ->
    ``(N, S)`` or ``(N, T, S)``.
    """

    def __init__(self, name: str, query_size: int, key_size: int, attn_size: int | None = None):
        super().__init__()
        if name not in SCORES:
            raise ValueError(f"unknown score {name!r}; choose one of {', '.join(SCORES)}")
        if name in ("dot", "scaled_dot") and query_size != key_size:
            raise ValueError(
                f"a {name!r} score needs query_size == key_size, got {query_size} and {key_size}; "
                "use 'general' or 'concat' to compare vectors of different sizes"
            )
        self.name = name
        if name == "general":
            self.W_a = nn.Linear(query_size, key_size, bias=False)
        if name in ("concat", "additive"):
            attn_size = attn_size or key_size
            self.W_q = nn.Linear(query_size, attn_size, bias=False)
            self.W_k = nn.Linear(key_size, attn_size, bias=False)
            self.v_a = nn.Linear(attn_size, 1, bias=False)

    def forward(self, query, keys):
        if self.name == "dot":
            return dot_score(query, keys)
        if self.name == "scaled_dot":
            return scaled_dot_score(query, keys)
        if self.name == "general":
            return dot_score(self.W_a(query), keys)
        q = self.W_q(query).unsqueeze(-2)  # (N, 1, A) or (N, T, 1, A)
        k = self.W_k(keys)  # (N, S, A)
        if query.dim() == 3:
            k = k.unsqueeze(1)  # (N, 1, S, A)
        return self.v_a(torch.tanh(q + k)).squeeze(-1)

    def extra_repr(self) -> str:
        return repr(self.name)


def masked_softmax(scores, mask=None):
    """Softmax over the source positions, exactly 0 where ``mask`` is False.

    ``scores: (N, S)`` or ``(N, T, S)``; ``mask: (N, S)`` bool, True on real tokens (every row needs
    one) -> weights of the shape of ``scores``, each row summing to 1.
    """
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True on real tokens), got {mask.dtype}")
        if mask.shape != (scores.shape[0], scores.shape[-1]):
            raise ValueError(
                f"mask must be (N, S) = ({scores.shape[0]}, {scores.shape[-1]}) to match the "
                f"scores {tuple(scores.shape)}, got {tuple(mask.shape)}"
            )
        if not mask.any(dim=-1).all():
            raise ValueError("every row of mask needs at least one True (a real token)")
        if scores.dim() == 3:
            mask = mask.unsqueeze(1)  # the same source mask at every decoder step
        scores = scores.masked_fill(~mask, float("-inf"))  # exp(-inf) = 0 exactly
    return torch.softmax(scores, dim=-1)


def attention(query, keys, values=None, mask=None, score=dot_score):
    """Attend from ``query`` over ``keys`` and average ``values`` with the weights.

    ``query: (N, Hq)`` (one decoder step) or ``(N, T, Hq)`` (T steps at once); ``keys: (N, S, Hk)``;
    ``values: (N, S, Hv)``, default ``keys``; ``mask: (N, S)`` bool, True on real tokens; ``score``:
    a callable ``(query, keys) -> scores`` (:func:`dot_score`, a :class:`Score`, ...).
    Returns ``context: (N, Hv)`` and ``weights: (N, S)`` (or ``(N, T, Hv)``, ``(N, T, S)``).
    """
    values = keys if values is None else values
    weights = masked_softmax(score(query, keys), mask)
    if query.dim() == 2:
        return (weights.unsqueeze(1) @ values).squeeze(1), weights
    return weights @ values, weights


def source_positions(S: int, device=None):
    """The source positions s = 1..S as floats, ``(S,)``."""
    return torch.arange(1, S + 1, device=device, dtype=torch.float32)


def window_mask(p_t, mask, D: float):
    """Real tokens inside the window [p_t - D, p_t + D].

    ``p_t: (N,)`` window centres (positions s = 1..S), ``mask: (N, S)`` bool -> ``(N, S)`` bool.
    """
    s = source_positions(mask.shape[1], mask.device)
    return mask & ((s - p_t[:, None]).abs() <= D)


def gaussian_window(p_t, S: int, D: float):
    """exp(-(s - p_t)^2 / (2 sigma^2)) with sigma = D / 2. ``p_t: (N,)`` -> ``(N, S)``."""
    s = source_positions(S, p_t.device).to(p_t.dtype)
    sigma = D / 2
    return torch.exp(-((s - p_t[:, None]) ** 2) / (2 * sigma**2))


def local_attention(query, keys, values, mask, score, p_t, D: float, gaussian: bool):
    """Luong's local attention: a softmax over the window [p_t - D, p_t + D] only.

    local-m: ``p_t`` = the decoder step, ``gaussian=False``. local-p: ``p_t`` predicted
    (:class:`PredictivePosition`), and the weights are multiplied by :func:`gaussian_window`
    (they then sum to less than 1). ``query: (N, Hq)``, ``keys: (N, S, Hk)``, ``values: (N, S, Hv)``,
    ``mask: (N, S)`` bool, ``p_t: (N,)``. Returns ``context: (N, Hv)``, ``weights: (N, S)``, exactly 0
    outside the window and on padding.
    """
    if D < 1:
        raise ValueError(f"the half-width D must be at least 1, got {D}")
    weights = masked_softmax(score(query, keys), window_mask(p_t, mask, D))
    if gaussian:
        weights = weights * gaussian_window(p_t, keys.shape[1], D)
    return (weights.unsqueeze(1) @ values).squeeze(1), weights


class PredictivePosition(nn.Module):
    """local-p's window centre p_t = S * sigmoid(v_p . tanh(h_t W_p)), S the source's length.

    ``h_t: (N, H)``, ``lengths: (N,)`` -> ``p_t: (N,)`` in (0, S).
    """

    def __init__(self, hidden_size: int, attn_size: int | None = None):
        super().__init__()
        attn_size = attn_size or hidden_size
        self.W_p = nn.Linear(hidden_size, attn_size, bias=False)
        self.v_p = nn.Linear(attn_size, 1, bias=False)

    def forward(self, h_t, lengths):
        share = torch.sigmoid(self.v_p(torch.tanh(self.W_p(h_t)))).squeeze(-1)  # (N,) in (0, 1)
        return lengths.to(h_t.dtype) * share


class AttentionDecoder(nn.Module):
    """A GRU decoder with Luong attention, following the decoder protocol of ``utils.models.seq2seq``.

    One step: h_t = GRU([embed(y_{t-1}); h~_{t-1}], h_{t-1}) (input feeding), then
    c_t = attention over the encoder outputs, h~_t = tanh([c_t; h_t] W_c), logits = h~_t W_hq + b_q.

    ``score``: a name of :data:`SCORES`; ``local``: None (global attention), ``"m"`` (local-m)
    or ``"p"`` (local-p), with half-width ``window`` (D). The state is ``(h_t (N, H), h~_t (N, H),
    t (N,))``, batch first. ``step(y_prev (N,), state, memory)`` -> ``logits (N, V)``, state,
    ``weights (N, S)``; ``memory``: encoder ``outputs (N, S, enc_size)``, ``mask (N, S)`` bool,
    ``final (N, hidden_size)``.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        enc_size: int,
        score: str = "general",
        input_feeding: bool = True,
        local: str | None = None,
        window: int = 3,
    ):
        super().__init__()
        if local not in (None, "m", "p"):
            raise ValueError(f"local must be None, 'm' (local-m) or 'p' (local-p), got {local!r}")
        self.hidden_size, self.input_feeding, self.local, self.window = (
            hidden_size, input_feeding, local, window
        )  # fmt: skip
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.cell = nn.GRUCell(embed_size + (hidden_size if input_feeding else 0), hidden_size)
        self.score = Score(score, hidden_size, enc_size)
        self.position = PredictivePosition(hidden_size) if local == "p" else None
        self.W_c = nn.Linear(enc_size + hidden_size, hidden_size, bias=False)
        self.out = nn.Linear(hidden_size, vocab_size)

    def init_state(self, memory):
        h = memory.final
        if h.dim() != 2 or h.shape[1] != self.hidden_size:
            raise ValueError(
                f"memory.final must be (N, hidden_size) = (N, {self.hidden_size}), got {tuple(h.shape)}"
            )
        return h, torch.zeros_like(h), h.new_zeros(h.shape[0])

    def step(self, y_prev, state, memory):
        h, h_tilde, t = state
        x = self.embedding(y_prev)  # (N, E)
        if self.input_feeding:
            x = torch.cat([x, h_tilde], dim=-1)  # Luong's input feeding: h~_{t-1} joins the input
        h, t = self.cell(x, h), t + 1
        keys, values = memory.outputs, memory.outputs
        if self.local is None:
            context, weights = attention(h, keys, values, memory.mask, self.score)
        else:
            lengths = memory.mask.sum(dim=1).to(h.dtype)
            p_t = torch.minimum(t, lengths) if self.local == "m" else self.position(h, lengths)
            context, weights = local_attention(
                h, keys, values, memory.mask, self.score, p_t, self.window, self.local == "p"
            )
        h_tilde = torch.tanh(self.W_c(torch.cat([context, h], dim=-1)))
        return self.out(h_tilde), (h, h_tilde, t), weights
