"""Lab 3: what the checks share: random lengths of a padded batch, and their mask."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["lengths_for", "mask_of"]


def lengths_for(rng: np.random.Generator, B: int, T: int) -> torch.Tensor:
    """(B,) lengths between 1 and T, with T (a full row) and 1 among them, in random order."""
    lengths = rng.integers(1, T + 1, size=B)
    lengths[: min(B, 2)] = [T, 1][: min(B, 2)]
    return torch.from_numpy(rng.permutation(lengths)).long()


def mask_of(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T) bool: True on the first lengths[b] positions of row b."""
    return torch.arange(T)[None, :] < lengths[:, None]
