"""Visible checks for Lab 2 (LSTM and GRU from scratch, in NumPy).

Each ``check_*`` function calls a student's function on small random float64
inputs and compares what comes back with an *independent* computation: PyTorch's
``nn.LSTMCell`` / ``nn.LSTM`` / ``nn.GRUCell`` with the same weights copied in
through :mod:`utils.checks.references`, differentiated by autograd. It prints one
``[PASS]`` line, or raises :class:`CheckError` naming the likely cause, found by
comparing with the output of a deliberately changed reference (wrong gate order,
tanh'(c_t) forgotten, reset gate before the matmul, ...). No function here has
the signature of an exercise (and the lab is NumPy only).

Conventions of the lab (row vectors, batch first, t = 1..T from h_0, c_0; PyTorch's
gate order, so the stacked weights copy straight from ``nn.LSTM`` / ``nn.GRU``)::

    LSTM  a = x_t W_x + h_{t-1} W_h + b      W_x: (D, 4H), W_h: (H, 4H), b: (4H,), blocks i, f, g, o
          c_t = f_t * c_{t-1} + i_t * g_t,   h_t = o_t * tanh(c_t)
          cache = (x_t, h_prev, c_prev, i_t, f_t, g_t, o_t, c_t, W_x, W_h)
    GRU   W_x: (D, 3H), W_h: (H, 3H), b_x, b_h: (3H,), blocks r, z, n
          n_t = tanh(x_t W_xn + b_xn + r_t * (h_{t-1} W_hn + b_hn)),  h_t = (1 - z_t) n_t + z_t h_{t-1}
          cache = (x_t, h_prev, r_t, z_t, n_t, hn_t, W_x, W_h),  hn_t = h_{t-1} W_hn + b_hn
"""

from utils.checks.core import CheckError
from utils.checks.lab02.gru import check_gru_step_backward, check_gru_step_forward
from utils.checks.lab02.lstm import check_lstm_step_backward, check_lstm_step_forward
from utils.checks.lab02.norms import check_lstm_grad_norms
from utils.checks.lab02.reference import GRU_CACHE, LONG, LSTM_CACHE, THRESHOLD
from utils.checks.lab02.sequence import check_lstm_backward, check_lstm_forward

__all__ = [
    "GRU_CACHE",
    "LONG",
    "LSTM_CACHE",
    "THRESHOLD",
    "CheckError",
    "check_gru_step_backward",
    "check_gru_step_forward",
    "check_lstm_backward",
    "check_lstm_forward",
    "check_lstm_grad_norms",
    "check_lstm_step_backward",
    "check_lstm_step_forward",
]
