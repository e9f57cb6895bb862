"""One small training loop: progress bar, gradient clipping, early stopping.

It covers what the chapters need and nothing more, so a student can read it
in one sitting. A batch is ``(X, Y)``; the model maps ``X`` to ``Y_hat`` and
``loss_fn(Y_hat, Y)`` gives a scalar. For anything else, write the loop by hand
(the chapters do, where the loop is the lesson).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm


def _to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    return batch


def accuracy(Y_hat: torch.Tensor, Y: torch.Tensor) -> float:
    """Fraction of correct predictions. ``Y_hat: (N, C)`` or ``(N, T, C)`` scores; ``Y`` indices."""
    return (Y_hat.argmax(dim=-1) == Y).float().mean().item()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable,
    *,
    metric_fn: Callable | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Mean loss (and ``metric_fn``) over ``loader``, weighted by batch size."""
    model.eval()
    total, n, metric = 0.0, 0, 0.0
    for X, Y in loader:
        X, Y = _to(X, device), _to(Y, device)
        Y_hat = model(X)
        size = len(Y)
        total += loss_fn(Y_hat, Y).item() * size
        if metric_fn is not None:
            metric += metric_fn(Y_hat, Y) * size
        n += size
    if n == 0:
        raise ValueError("the evaluation loader yielded no batches")
    out = {"loss": total / n}
    if metric_fn is not None:
        out["metric"] = metric / n
    return out


def train(
    model: nn.Module,
    train_loader: Iterable,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    val_loader: Iterable | None = None,
    metric_fn: Callable | None = None,
    clip: float | None = None,
    patience: int | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "training",
) -> dict[str, list[float]]:
    """Train ``model`` for ``epochs``; return the history of losses (and metrics).

    - ``clip``: clip the global gradient norm to this value (``clip_grad_norm_``);
      the history records the norm *before* clipping as ``"grad norm"``.
    - ``patience``: stop when the validation loss has not improved for this
      many epochs, and restore the best weights.
    - A NaN or infinite loss stops training with a ``FloatingPointError`` that
      says at which epoch and step, instead of silently producing garbage.

    Returns ``{"train loss": [...], "grad norm": [...], "val loss": [...],
    "val metric": [...], "seconds": [...]}`` (validation keys only with ``val_loader``).
    """
    model.to(device)
    history: dict[str, list[float]] = {"train loss": [], "grad norm": [], "seconds": []}
    if val_loader is not None:
        history["val loss"] = []
        if metric_fn is not None:
            history["val metric"] = []
    best, best_state, bad_epochs = math.inf, None, 0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, unit="epoch")
    for epoch in bar:
        model.train()
        start, total, n, norm_sum, steps = time.perf_counter(), 0.0, 0, 0.0, 0
        for step, (X, Y) in enumerate(train_loader):
            X, Y = _to(X, device), _to(Y, device)
            optimizer.zero_grad()
            loss = loss_fn(model(X), Y)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch}, step {step}: "
                    "lower the learning rate or clip gradients (clip=1.0)"
                )
            loss.backward()
            max_norm = clip if clip is not None else math.inf
            norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            total += loss.item() * len(Y)
            n += len(Y)
            norm_sum += float(norm)
            steps += 1
        if n == 0:
            raise ValueError("the training loader yielded no batches")
        history["train loss"].append(total / n)
        history["grad norm"].append(norm_sum / steps)
        history["seconds"].append(time.perf_counter() - start)
        shown = {"loss": f"{total / n:.4f}"}
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, metric_fn=metric_fn, device=device)
            history["val loss"].append(val["loss"])
            shown["val"] = f"{val['loss']:.4f}"
            if metric_fn is not None:
                history["val metric"].append(val["metric"])
                shown["metric"] = f"{val['metric']:.3f}"
            if patience is not None:
                if val["loss"] < best - 1e-6:
                    best, bad_epochs = val["loss"], 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    bad_epochs += 1
                    if bad_epochs >= patience:
                        bar.set_postfix(shown | {"stopped": epoch})
                        break
        bar.set_postfix(shown)
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
