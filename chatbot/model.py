"""The dual encoder: one LSTM reads the context, one reads a candidate response.

    context ids (N, T)  -> Embed -> LSTM_c -> states C (N, T, H)
    response ids (M, L) -> Embed -> LSTM_r -> masked mean -> r (M, H)

Two scores compare them, both cosines divided by a temperature ``tau``:

- the **first-stage** score ``cos(P c, r)`` with ``c`` the masked mean of ``C``: the
  context is one vector, so every candidate's ``r`` can be computed once and searched
  with FAISS;
- the **matching** score ``cos(P c_r, r)``: each candidate ``r`` asks the context, through
  attention (``attention_match``, the project's exercise), which of its words matter for
  that candidate, and ``c_r`` is the context pooled with those weights. It is computed for
  the few candidates the first stage returns (re-ranking), and its weights are the
  attention figure.

``P`` maps context states into the responses' space. The attention function is the
student's own, exported from the project notebook; it is passed in, so this file holds
no exercise's answer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

MatchFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """states (N, T, H), mask (N, T) bool -> (N, H): the mean over the real positions."""
    m = mask.unsqueeze(-1).to(states.dtype)
    return (states * m).sum(1) / m.sum(1).clamp_min(1.0)


class DualEncoder(nn.Module):
    """Context and response encoders; ``match`` is the attention function (see module doc)."""

    def __init__(self, V: int, E: int = 128, H: int = 256, *, match: MatchFn, tau: float = 0.05):
        super().__init__()
        self.config = {"V": V, "E": E, "H": H, "tau": tau}
        self.embed = nn.Embedding(V, E, padding_idx=0)
        self.context_rnn = nn.LSTM(E, H, batch_first=True)
        self.response_rnn = nn.LSTM(E, H, batch_first=True)
        self.P = nn.Linear(H, H)  # context states -> the responses' space
        self.W_q = nn.Linear(H, H, bias=False)  # a candidate -> its query to the context
        self.match = match
        self.tau = tau

    def encode_context(self, x: torch.Tensor, lengths: torch.Tensor):
        """x (N, T) ids, lengths (N,) -> C (N, T, H) states, mask (N, T), c (N, H) unit
        first-stage vectors."""
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        C, _ = self.context_rnn(self.embed(x))
        c = F.normalize(self.P(masked_mean(C, mask)), dim=-1)
        return C, mask, c

    def encode_response(self, y: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """y (M, L) ids, lengths (M,) -> r (M, H), unit vectors."""
        mask = torch.arange(y.shape[1])[None, :] < lengths[:, None]
        R, _ = self.response_rnn(self.embed(y))
        return F.normalize(masked_mean(R, mask), dim=-1)

    def first_stage(self, c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """c (N, H), r (M, H) -> (N, M) scores."""
        return c @ r.T / self.tau

    def matching(self, C, mask, r):
        """C (N, T, H), mask (N, T), r (N, M, H) each context's M candidates, or (M, H)
        the same M for every context -> scores (N, M) and attention a (N, M, T)."""
        if r.dim() == 2:
            r = r.unsqueeze(0).expand(C.shape[0], -1, -1)
        pooled, a = self.match(C, mask, self.W_q(r))
        scores = (F.normalize(self.P(pooled), dim=-1) * r).sum(-1) / self.tau
        return scores, a
