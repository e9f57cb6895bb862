"""Visible and hidden checks for Lab 6 (ECG anomaly detection with an LSTM autoencoder).

Each ``check_*`` function calls a student's function through the shared engine
(:mod:`utils.checks.engine`) and compares what comes back with an independent
computation: scikit-learn's ``train_test_split`` for the lab's stated test rule and
its metrics (``precision_recall_fscore_support``, ``f1_score``, ``roc_auc_score``),
NumPy for the statistics, and the LSTM equations written out in torch for the
autoencoder. It prints one ``[PASS]`` line, or raises :class:`CheckError` naming the
likely cause (a known wrong variant: the threshold chosen on other data, anomalies in
the training part, the error averaged over the wrong axis, ...). No function here has
the signature of an exercise.

Conventions of the lab: a beat is a row of ``T = 140`` samples; ``X: (N, T)`` beats,
``(N, T, 1)`` as the autoencoder's input; class 1 is normal, classes 2-5 are
anomalies; label 1 means anomaly (the positive class), and a beat is flagged when its
score is **above** the threshold.
"""

from utils.checks.core import CheckError
from utils.checks.lab06.detection import check_choose_threshold, check_precision_recall_f1
from utils.checks.lab06.model import check_autoencoder_forward, check_reconstruction_error
from utils.checks.lab06.split import TEST_SIZE, check_split_beats, check_standardize, test_part
from utils.checks.lab06.trained import check_anomaly_scores, check_detect, ecg_part

__all__ = [
    "TEST_SIZE",
    "CheckError",
    "check_anomaly_scores",
    "check_autoencoder_forward",
    "check_choose_threshold",
    "check_detect",
    "check_precision_recall_f1",
    "check_reconstruction_error",
    "check_split_beats",
    "check_standardize",
    "ecg_part",
    "test_part",
]
