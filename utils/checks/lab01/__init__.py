"""Visible checks for Lab 1 (RNN from scratch with manual BPTT, in NumPy).

Each ``check_*`` function calls a student's function on small random float64
inputs and compares what comes back with an *independent* computation: PyTorch's
``nn.RNNCell`` / ``nn.RNN`` / ``nn.Linear`` with the same weights copied in,
``F.cross_entropy`` and ``torch.nn.utils.clip_grad_norm_``, differentiated by
autograd. It prints one ``[PASS]`` line, or raises :class:`CheckError` saying
what was expected, what came, and the likely cause. Causes are recognised by
comparing with the output of a deliberately changed reference (no tanh
derivative, sigmoid instead of tanh, a BPTT loop that runs forward in time, ...).
No function here has the signature of an exercise (and the lab is NumPy only).

Conventions of the lab (row vectors, batch first, steps t = 1..T from h_0)::

    h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)     W_xh: (D, H), W_hh: (H, H), b_h: (H,)
    o_t = h_t W_hq + b_q                           W_hq: (H, V), b_q: (V,)
    cache of step t = (x_t, h_{t-1}, h_t, W_xh, W_hh)

Python indexes from 0: ``X[:, t - 1]`` is x_t, ``states[:, t - 1]`` is h_t.
"""

from utils.checks.core import CheckError
from utils.checks.lab01.backward import check_rnn_backward, check_rnn_step_backward
from utils.checks.lab01.forward import (
    check_rnn_forward,
    check_rnn_step_forward,
    check_temporal_softmax_loss,
)
from utils.checks.lab01.model import check_clip_grad_norm, check_loss_and_grads
from utils.checks.lab01.reference import LONG, PARAM_NAMES, STEP_CACHE, THRESHOLD

__all__ = [
    "LONG",
    "PARAM_NAMES",
    "STEP_CACHE",
    "THRESHOLD",
    "CheckError",
    "check_clip_grad_norm",
    "check_loss_and_grads",
    "check_rnn_backward",
    "check_rnn_forward",
    "check_rnn_step_backward",
    "check_rnn_step_forward",
    "check_temporal_softmax_loss",
]
