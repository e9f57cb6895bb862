"""The weights of ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` under the names of the equations.

The course writes every cell with row vectors (a batch is a stack of rows)::

    RNN   h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)
    LSTM  I_t = sigmoid(x_t W_xi + h_{t-1} W_hi + b_i)   (and F_t: f, O_t: o, C_tilde: c)
    GRU   R_t = sigmoid(x_t W_xr + h_{t-1} W_hr + b_r)   (and Z_t: z)
          h_tilde = tanh(x_t W_xh + b_xh + R_t * (h_{t-1} W_hh + b_hh))

PyTorch stores one ``weight_ih_l{k}: (G*H, D)``, ``weight_hh_l{k}: (G*H, H)`` and
two biases ``(G*H,)`` per layer, the ``G`` gate blocks stacked in the order
``i, f, g, o`` (LSTM) or ``r, z, n`` (GRU), each block transposed with respect to
the equations (column vectors). :func:`named_weights` reads them under the
equations' names; :func:`load_named_weights` writes named tensors back.

``gate_order`` reads the blocks in another order; only the chapters use it,
to show that a wrong order is caught.
"""

from __future__ import annotations

import torch
from torch import nn

# PyTorch's block order, and the subscript the equations give each block.
GATES = {"RNN": ("h",), "LSTM": ("i", "f", "c", "o"), "GRU": ("r", "z", "h")}
TORCH_ORDER = {"RNN": "h", "LSTM": "ifgo", "GRU": "rzn"}
_SUBSCRIPT = {"LSTM": dict(zip("ifgo", "ifco")), "GRU": dict(zip("rzn", "rzh")), "RNN": {"h": "h"}}


def kind_of(module: nn.Module) -> str:
    """``"RNN"``, ``"LSTM"`` or ``"GRU"`` for the layer and cell modules of PyTorch."""
    for kind, classes in {
        "LSTM": (nn.LSTM, nn.LSTMCell),
        "GRU": (nn.GRU, nn.GRUCell),
        "RNN": (nn.RNN, nn.RNNCell),
    }.items():
        if isinstance(module, classes):
            return kind
    raise TypeError(f"expected nn.RNN, nn.LSTM or nn.GRU (or a cell), got {type(module).__name__}")


def _tensors(module: nn.Module, layer: int, reverse: bool) -> list[torch.Tensor | None]:
    if isinstance(module, nn.RNNCellBase):
        if layer or reverse:
            raise ValueError("a cell has one layer and one direction")
        suffix = ""
    else:
        if not 0 <= layer < module.num_layers:
            raise ValueError(f"layer {layer} does not exist: num_layers = {module.num_layers}")
        if reverse and not module.bidirectional:
            raise ValueError("reverse=True needs a bidirectional module")
        if getattr(module, "proj_size", 0):
            raise ValueError("LSTMs with proj_size are not covered")
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return [
        getattr(module, f"{name}{suffix}", None)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    ]


def named_weights(
    module: nn.Module, layer: int = 0, *, reverse: bool = False, gate_order: str | None = None
) -> dict[str, torch.Tensor]:
    """The weights of one layer and direction of ``module`` under the equations' names.

    Returns differentiable views of the module's parameters (``.detach()`` them
    for plain values). Shapes: ``W_x*: (D, H)``, ``W_h*: (H, H)``, biases ``(H,)``.

    - RNN: ``W_xh, W_hh, b_h`` with ``b_h = bias_ih + bias_hh``;
    - LSTM: ``W_xi, W_xf, W_xc, W_xo, W_hi, ..., b_i, b_f, b_c, b_o`` (biases summed);
    - GRU: ``W_xr, W_xz, W_xh, W_hr, W_hz, W_hh, b_r, b_z`` (summed), and
      ``b_xh, b_hh`` kept apart, since the reset gate multiplies ``h_{t-1} W_hh + b_hh``.

    A module without biases gives zero biases.
    """
    kind = kind_of(module)
    order = gate_order or TORCH_ORDER[kind]
    if sorted(order) != sorted(TORCH_ORDER[kind]):
        raise ValueError(
            f"gate_order must be a permutation of {TORCH_ORDER[kind]!r}, got {order!r}"
        )
    W_ih, W_hh, b_ih, b_hh = _tensors(module, layer, reverse)
    if b_ih is None:
        b_ih = b_hh = W_ih.new_zeros(W_ih.shape[0])
    sub = _SUBSCRIPT[kind]
    blocks = len(order)
    named = {}
    for block, g in zip(W_ih.chunk(blocks), order):
        named[f"W_x{sub[g]}"] = block.T
    for block, g in zip(W_hh.chunk(blocks), order):
        named[f"W_h{sub[g]}"] = block.T
    for bi, bh, g in zip(b_ih.chunk(blocks), b_hh.chunk(blocks), order):
        if kind == "GRU" and sub[g] == "h":
            named["b_xh"], named["b_hh"] = bi, bh
        else:
            named[f"b_{sub[g]}"] = bi + bh
    return named


def torch_layout(kind: str, named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Named tensors (or their gradients) stacked back into PyTorch's layout.

    Returns ``{"weight_ih": (G*H, D), "weight_hh": (G*H, H), "bias_ih": (G*H,),
    "bias_hh": (G*H,)}``; a summed bias goes into ``bias_ih`` and ``bias_hh`` is zero
    there. Use it to compare gradients computed with the equations' names with
    the gradients autograd stores in a module.
    """
    if kind not in GATES:
        raise ValueError(f"kind must be one of {sorted(GATES)}, got {kind!r}")
    subs = GATES[kind]
    missing = [
        k
        for g in subs
        for k in (f"W_x{g}", f"W_h{g}")
        + (("b_xh", "b_hh") if kind == "GRU" and g == "h" else (f"b_{g}",))
        if k not in named
    ]
    if missing:
        raise KeyError(f"{kind} weights need {missing}; got {sorted(named)}")
    weight_ih = torch.cat([named[f"W_x{g}"].T for g in subs])
    weight_hh = torch.cat([named[f"W_h{g}"].T for g in subs])
    b_ih, b_hh = [], []
    for g in subs:
        if kind == "GRU" and g == "h":
            b_ih.append(named["b_xh"])
            b_hh.append(named["b_hh"])
        else:
            b_ih.append(named[f"b_{g}"])
            b_hh.append(torch.zeros_like(named[f"b_{g}"]))
    return {
        "weight_ih": weight_ih,
        "weight_hh": weight_hh,
        "bias_ih": torch.cat(b_ih),
        "bias_hh": torch.cat(b_hh),
    }


@torch.no_grad()
def load_named_weights(
    module: nn.Module, named: dict, layer: int = 0, *, reverse: bool = False
) -> nn.Module:
    """Copy named weights (tensors or NumPy arrays, row convention) into ``module``; return it.

    The inverse of :func:`named_weights`. ``module`` must have biases.
    """
    kind = kind_of(module)
    targets = _tensors(module, layer, reverse)
    if targets[2] is None:
        raise ValueError("load_named_weights needs a module with biases (bias=True)")
    dtype = targets[0].dtype
    layout = torch_layout(kind, {k: torch.as_tensor(v, dtype=dtype) for k, v in named.items()})
    for target, (name, value) in zip(targets, layout.items()):
        if target.shape != value.shape:
            raise ValueError(
                f"{name} of the module has shape {tuple(target.shape)}, the named weights "
                f"give {tuple(value.shape)}: check D and H"
            )
        target.copy_(value)
    return module


def rnn_from_weights(
    W_xh, W_hh, b_h, *, cell: bool = False, dtype: torch.dtype = torch.float64
) -> nn.Module:
    """A one-layer, batch-first ``nn.RNN`` (or ``nn.RNNCell``) holding the given weights.

    ``W_xh: (D, H)``, ``W_hh: (H, H)``, ``b_h: (H,)`` (arrays or tensors).
    """
    D, H = W_xh.shape
    module = nn.RNNCell(D, H) if cell else nn.RNN(D, H, batch_first=True)
    module = module.to(dtype)
    return load_named_weights(module, {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h})


def linear_weights(linear: nn.Linear) -> dict[str, torch.Tensor]:
    """``W: (in, out)`` and ``b: (out,)`` of an ``nn.Linear``, so that ``y = x W + b``."""
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"expected nn.Linear, got {type(linear).__name__}")
    b = linear.bias if linear.bias is not None else linear.weight.new_zeros(linear.out_features)
    return {"W": linear.weight.T, "b": b}
