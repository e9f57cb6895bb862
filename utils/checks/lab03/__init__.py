"""Visible and hidden checks for Lab 3 (sentiment on IMDB): :mod:`.encoder` (reversing padded
rows, and a bidirectional LSTM of two LSTMs on a padded batch), :mod:`.pooling` (attention
pooling under a mask), :mod:`.trained` (the trained classifier on the test split) and
:mod:`.analysis` (the attention mass on a set of words).

Each ``check_*`` function calls a student's function through the shared engine and
compares what comes back with an independent computation (Python slicing, PyTorch's own
bidirectional LSTM on a packed batch, ``torch.softmax`` and autograd). It prints one
``[PASS]`` line or raises :class:`CheckError` naming the likely cause. No function here has
the signature of an exercise.
"""

from utils.checks.core import CheckError
from utils.checks.lab03.analysis import check_attention_lift
from utils.checks.lab03.encoder import check_bi_lstm, check_reverse_padded
from utils.checks.lab03.pooling import check_attention_pool
from utils.checks.lab03.trained import check_predict_positive, imdb_test

__all__ = [
    "CheckError",
    "check_attention_lift",
    "check_attention_pool",
    "check_bi_lstm",
    "check_predict_positive",
    "check_reverse_padded",
    "imdb_test",
]
