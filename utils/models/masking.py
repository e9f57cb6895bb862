"""Generated from notebooks/05_rnn_modules_in_practice.ipynb (cells tagged export:masking) by `make modules`.

Do not edit: change the notebook, then run `make modules`.
"""

from __future__ import annotations

import torch
from torch import nn


def last_states(h_n, num_layers: int, bidirectional: bool):
    """The top layer's last state, directions concatenated.

    ``h_n: (num_layers * dirs, N, H)`` as returned by ``nn.RNN/GRU/LSTM``; returns ``(N, dirs * H)``:
    ``[forward state after x_T, backward state after x_1]`` when bidirectional, else ``(N, H)``.
    """
    dirs = 2 if bidirectional else 1
    if h_n.dim() != 3 or h_n.shape[0] != num_layers * dirs:
        raise ValueError(
            f"h_n must be (num_layers * dirs, N, H) = ({num_layers * dirs}, N, H), got {tuple(h_n.shape)}"
        )
    top = h_n.view(num_layers, dirs, *h_n.shape[1:])[-1]  # (dirs, N, H)
    return torch.cat(list(top), dim=-1)


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, shared by every time step (Gal & Ghahramani, 2016).

    ``X: (N, T, D)`` (batch first) -> ``(N, T, D)``. Identity in eval mode or with ``p = 0``.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, X):
        if X.dim() != 3:
            raise ValueError(f"LockedDropout expects (N, T, D), got shape {tuple(X.shape)}")
        if not self.training or self.p == 0.0:
            return X
        mask = X.new_empty(X.shape[0], 1, X.shape[2]).bernoulli_(1 - self.p) / (1 - self.p)
        return X * mask  # (N, 1, D) broadcasts over T


def length_mask(lengths, max_len: int | None = None):
    """``lengths: (N,)`` -> bool mask ``(N, T)``, True on the real steps t = 1..lengths[i]."""
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.is_floating_point() or (lengths < 1).any():
        raise ValueError(f"lengths must be a 1-D tensor of positive ints, got {lengths.tolist()}")
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def last_valid(outputs, lengths):
    """Each sequence's output at its last real step. ``outputs: (N, T, H)``, ``lengths: (N,)`` -> ``(N, H)``."""
    index = (torch.as_tensor(lengths, device=outputs.device) - 1).view(-1, 1, 1)
    return outputs.gather(1, index.expand(-1, 1, outputs.shape[-1])).squeeze(1)


def masked_mean(outputs, mask):
    """Mean over the real steps only. ``outputs: (N, T, H)``, ``mask: (N, T)`` bool -> ``(N, H)``."""
    mask = mask.unsqueeze(-1).to(outputs.dtype)
    return (outputs * mask).sum(dim=1) / mask.sum(dim=1)


def run_each_alone(rnn, sequences):
    """The reference: run ``rnn`` on every sequence separately, no padding.

    ``sequences``: list of ``(T_i, D)`` tensors; returns a list of outputs ``(T_i, dirs * H)`` and
    ``h_n: (num_layers * dirs, N, H)``.
    """
    outputs, states = [], []
    for seq in sequences:
        out, h_n = rnn(seq[None])  # a batch of one, batch_first
        outputs.append(out[0])
        states.append(h_n[0] if isinstance(h_n, tuple) else h_n)
    return outputs, torch.cat(states, dim=1)
