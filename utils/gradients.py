"""How strongly does the loss reach back to each time step? Per-step gradient norms.

BPTT sends the gradient of a loss backwards through the hidden states
``h_T, h_{T-1}, ..., h_1``. This module measures how large ``dL/dh_t`` is at every
step ``t``, for a recurrent module (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``) or for a
hand-written step function::

    norms = hidden_grad_norms(nn.RNN(2, 16, batch_first=True), X)   # (T,)
    plot_grad_norms(norms)                                          # utils.plot

``dL/dh_t`` here is the *total* derivative: everything the loss owes to ``h_t``,
through the output at step ``t`` and through all later steps. A module is therefore
run one step at a time (``nn.RNN`` on ``X`` in one call hides its intermediate
states from autograd), which gives the same outputs as a single call.
The gradients are taken with ``torch.autograd.grad``, so nothing is accumulated
into the model's ``.grad`` fields; the values equal what ``h_t.retain_grad()``
followed by ``loss.backward()`` leaves in ``h_t.grad``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

RECURRENT_MODULES = (nn.RNN, nn.LSTM, nn.GRU)


def last_step_loss(H: torch.Tensor) -> torch.Tensor:
    """The default loss: the sum of the last hidden state, ``H: (N, T, H)`` -> scalar.

    Its gradient with respect to ``h_T`` is all ones, so ``dL/dh_t`` for ``t < T``
    shows only what BPTT carries back through the recurrence.
    """
    return H[:, -1].sum()


def _check_inputs(X, state: str) -> None:
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a torch.Tensor of shape (N, T, D), got {type(X).__name__}")
    if X.dim() != 3:
        raise ValueError(f"X must have shape (N, T, D) (batch first), got {tuple(X.shape)}")
    if X.shape[1] < 1:
        raise ValueError("X has no time steps (T = 0)")
    if not X.is_floating_point():
        raise TypeError(f"X must be floating point (embed token ids first), got {X.dtype}")
    if state not in ("h", "c"):
        raise ValueError(f"state must be 'h' or 'c', got {state!r}")


def _run_module(module: nn.Module, X: torch.Tensor, h0, state: str):
    """Step ``module`` through ``X: (N, T, D)``; return per-step states to differentiate
    (each ``(L, N, H)``) and the top layer's hidden states ``H: (N, T, H)``."""
    if module.bidirectional:
        raise ValueError(
            "a bidirectional module cannot be run one step at a time; "
            "measure each direction with its own unidirectional module"
        )
    if state == "c":
        raise ValueError(
            "state='c' needs a step function (e.g. an LSTM cell written by hand): "
            f"{type(module).__name__} computes h_t from c_t inside one fused kernel, "
            "so autograd cannot see the path c_t -> h_t and dL/dc_t would miss it"
        )
    carried, tracked, tops = h0, [], []
    for t in range(X.shape[1]):
        x_t = X[:, t : t + 1] if module.batch_first else X[:, t : t + 1].transpose(0, 1)
        _, carried = module(x_t, carried)
        h_t = carried[0] if isinstance(carried, tuple) else carried  # (L, N, H)
        tracked.append(h_t)
        tops.append(h_t[-1])
    return tracked, torch.stack(tops, dim=1), lambda g: g[-1]


def _run_step_fn(step_fn: Callable, X: torch.Tensor, h0, state: str):
    """Run ``step_fn(x_t, state) -> state`` through ``X``; ``state`` is ``h`` or ``(h, c)``."""
    if h0 is None:
        raise ValueError(
            "a step function needs the initial state h0: (N, H), or (h0, c0) for an LSTM cell"
        )
    carried, tracked, tops = h0, [], []
    for t in range(X.shape[1]):
        carried = step_fn(X[:, t], carried)
        h_t = carried[0] if isinstance(carried, tuple) else carried
        if state == "c":
            if not isinstance(carried, tuple):
                raise ValueError("state='c' needs a step function that returns (h_t, c_t)")
            tracked.append(carried[1])
        else:
            tracked.append(h_t)
        if not isinstance(h_t, torch.Tensor) or h_t.dim() != 2 or h_t.shape[0] != X.shape[0]:
            got = tuple(h_t.shape) if isinstance(h_t, torch.Tensor) else type(h_t).__name__
            raise ValueError(
                f"the step function must return h_t: (N, H) with N={X.shape[0]}, got {got}"
            )
        tops.append(h_t)
    return tracked, torch.stack(tops, dim=1), lambda g: g


def hidden_grads(
    model: nn.Module | Callable,
    X: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor], torch.Tensor] = last_step_loss,
    h0=None,
    state: str = "h",
) -> torch.Tensor:
    """The gradient of ``loss_fn(H)`` with respect to each hidden state ``h_t``.

    Args:
        model: an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (any ``batch_first``, any
            ``num_layers``; the top layer is measured), or a step function
            ``step(x_t: (N, D), state) -> state`` where ``state`` is ``h: (N, H)``
            or a tuple ``(h, c)``.
        X: inputs ``(N, T, D)``, batch first (also for a module with ``batch_first=False``).
        loss_fn: maps the top layer's hidden states ``H: (N, T, H)`` to a scalar.
            Default :func:`last_step_loss`.
        h0: initial state; required for a step function (``(N, H)`` or ``(h0, c0)``),
            optional for a module (its usual ``(L, N, H)`` / ``(h0, c0)``; zeros if None).
        state: ``"h"`` (hidden state) or ``"c"`` (LSTM cell state ``c_t``; only for a
            step function returning ``(h_t, c_t)`` that computes ``h_t`` from ``c_t``
            with ordinary tensor operations, as a hand-written LSTM cell does).

    Returns:
        ``(N, T, H)``: ``dL/dh_t`` (or ``dL/dc_t``) for every sequence and step, detached.
    """
    _check_inputs(X, state)
    if isinstance(model, RECURRENT_MODULES):
        tracked, H, top = _run_module(model, X, h0, state)
    elif callable(model):  # a step function, nn.RNNCell, nn.LSTMCell or a hand-written cell
        tracked, H, top = _run_step_fn(model, X, h0, state)
    else:
        raise TypeError(
            f"model must be nn.RNN / nn.LSTM / nn.GRU or a step function, got {type(model).__name__}"
        )
    loss = loss_fn(H)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError("loss_fn must return a scalar tensor (e.g. H[:, -1].sum())")
    if not loss.requires_grad:
        raise ValueError(
            "the loss does not depend on the hidden states through autograd: "
            "do the parameters (or h0) require grad, and is torch.no_grad() off?"
        )
    grads = torch.autograd.grad(loss, tracked, allow_unused=True)
    out = [torch.zeros_like(top(s)) if g is None else top(g) for g, s in zip(grads, tracked)]
    return torch.stack(out, dim=1).detach()


def hidden_grad_norms(
    model: nn.Module | Callable,
    X: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor], torch.Tensor] = last_step_loss,
    h0=None,
    state: str = "h",
) -> torch.Tensor:
    """``||dL/dh_t||`` for ``t = 1..T``, the norm taken over the batch and hidden units.

    Same arguments as :func:`hidden_grads`. Returns a ``(T,)`` tensor (dtype of ``X``);
    index ``t - 1`` holds step ``t``. Plot it with ``utils.plot.plot_grad_norms(..., start=1)``.
    """
    G = hidden_grads(model, X, loss_fn=loss_fn, h0=h0, state=state)  # (N, T, H)
    return G.transpose(0, 1).reshape(G.shape[1], -1).norm(dim=1)
