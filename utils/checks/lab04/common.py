"""Lab 4: what every check of the lab shares: reading a student's outputs, and the reference
character model.

The reference model is built from a state dict with PyTorch's own modules
(``nn.Embedding``, ``nn.LSTM`` or ``nn.GRU``, ``nn.Linear``): the weights are the lab's
``CharRNN`` layout (``embed.weight``, ``rnn.weight_ih_l0``, ..., ``head.weight``,
``head.bias``), and the recurrent cell is read from their shapes (4H rows: LSTM, 3H: GRU).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from utils.checks.engine import describe, fail, tensor


def long_tensor(label: str, out, shape: tuple, hint: str | None = None) -> torch.Tensor:
    """``out`` as an integer tensor of ``shape`` (character ids)."""
    out = tensor(label, out, shape, hint)
    if out.is_floating_point() or out.dtype == torch.bool:
        raise fail(f"{label} has dtype {out.dtype}, expected integer character ids (torch.long).",
                   "Index the id tensor; do not turn the ids into floats.")  # fmt: skip
    if out.dtype != torch.long:
        raise fail(f"{label} has dtype {out.dtype}, expected torch.long (int64) character ids.",
                   "F.cross_entropy takes its targets as torch.long only: keep the ids' dtype "
                   "(no .int() or dtype=torch.int32).")  # fmt: skip
    return out


class Reference(nn.Module):
    """The lab's character model written with PyTorch's modules, without dropout:
    x (B, T) ids -> logits (B, T, V), state."""

    def __init__(self, weights: dict):
        super().__init__()
        V_, E = weights["embed.weight"].shape
        H = weights["rnn.weight_hh_l0"].shape[1]
        layers = sum(1 for k in weights if k.startswith("rnn.weight_hh_l"))
        cell = nn.LSTM if weights["rnn.weight_ih_l0"].shape[0] == 4 * H else nn.GRU
        self.embed = nn.Embedding(V_, E)
        self.rnn = cell(E, H, layers, batch_first=True)
        self.head = nn.Linear(H, V_)
        self.to(weights["embed.weight"].dtype)
        self.load_state_dict({k: v.clone() for k, v in weights.items()})

    def forward(self, x, state=None):
        out, state = self.rnn(self.embed(x), state)
        return self.head(out), state


def random_weights(rng: np.random.Generator, *, V: int, E: int, H: int, layers: int,
                   cell: str = "lstm", scale: float = 0.5) -> dict:  # fmt: skip
    """A float64 state dict of the lab's layout with normal entries of std ``scale``."""
    gates = 4 if cell == "lstm" else 3
    shapes = {"embed.weight": (V, E)}
    for layer in range(layers):
        inp = E if layer == 0 else H
        shapes |= {f"rnn.weight_ih_l{layer}": (gates * H, inp), f"rnn.weight_hh_l{layer}": (gates * H, H),
                   f"rnn.bias_ih_l{layer}": (gates * H,), f"rnn.bias_hh_l{layer}": (gates * H,)}  # fmt: skip
    shapes |= {"head.weight": (V, H), "head.bias": (V,)}
    return {k: torch.tensor(rng.normal(scale=scale, size=s)) for k, s in shapes.items()}


def state_tensors(state) -> list[torch.Tensor]:
    """The tensors of a recurrent state: ``h`` (GRU) or ``(h, c)`` (LSTM)."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, tuple | list) and all(isinstance(s, torch.Tensor) for s in state):
        return list(state)
    raise fail(f"the state is a {describe(state)}, expected the recurrent layer's state: a tensor "
               "h (GRU) or a tuple (h, c) (LSTM).")  # fmt: skip
