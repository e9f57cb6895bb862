"""Visible and hidden checks for the project, a retrieval chatbot: :mod:`.retrieval`
(sampling negatives by text; Recall@k), :mod:`.matching` (the attention matching layer;
the InfoNCE loss) and :mod:`.trained` (the trained model on SGD's test split).

Each ``check_*`` function calls a student's function through the shared engine and
compares what comes back with an independent computation (a ranking computed here,
``torch.softmax``, ``F.cross_entropy`` and autograd). It prints one ``[PASS]`` line or
raises :class:`CheckError` naming the likely cause. No function here has the signature of
an exercise.
"""

from utils.checks.core import CheckError
from utils.checks.lab08.matching import check_attention_match, check_info_nce_loss
from utils.checks.lab08.retrieval import check_recall_at_k, check_sample_negatives
from utils.checks.lab08.trained import check_rank_responses, sgd_test

__all__ = [
    "CheckError",
    "check_attention_match",
    "check_info_nce_loss",
    "check_rank_responses",
    "check_recall_at_k",
    "check_sample_negatives",
    "sgd_test",
]
