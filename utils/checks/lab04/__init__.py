"""Visible and hidden checks for Lab 4 (character-level generation on Tiny Shakespeare):
:mod:`.batches` (contiguous batches), :mod:`.training` (truncated BPTT and the validation
loss), :mod:`.sampling` (temperature, top-k and generation) and :mod:`.trained` (the
trained model's loss on validation passages).

Each ``check_*`` function calls a student's function through the shared engine and
compares what comes back with an independent computation (the stream indexed directly,
PyTorch's own modules and autograd, the sampling formula in NumPy). It prints one
``[PASS]`` line or raises :class:`CheckError` naming the likely cause. No function here
has the signature of an exercise.
"""

from utils.checks.core import CheckError
from utils.checks.lab04.batches import check_batchify
from utils.checks.lab04.sampling import check_generate, check_sampling_probs
from utils.checks.lab04.trained import check_char_log_probs, shakespeare_split, unseen_speeches
from utils.checks.lab04.training import check_train_steps, check_validation_loss

__all__ = [
    "CheckError",
    "check_batchify",
    "check_char_log_probs",
    "check_generate",
    "check_sampling_probs",
    "check_train_steps",
    "check_validation_loss",
    "shakespeare_split",
    "unseen_speeches",
]
