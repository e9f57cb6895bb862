"""Visible and hidden checks for Lab 7: a named-entity tagger (Part 1: :mod:`.ner`, and
:mod:`.crf` for its CRF output layer) and forecasting (Part 2: :mod:`.forecast`).

Each ``check_*`` function calls a student's function through the shared engine and
compares what comes back with an independent computation (seqeval, ``F.cross_entropy``,
brute-force enumeration of a tiny CRF's tag paths, ...). It prints one ``[PASS]`` line or
raises :class:`CheckError` naming the likely cause. No function here has the signature
of an exercise.
"""

from utils.checks.core import CheckError
from utils.checks.lab07.crf import (
    check_crf_log_partition,
    check_crf_path_score,
    check_viterbi_decode,
)
from utils.checks.lab07.ner import (
    TAGS,
    check_bio_to_spans,
    check_masked_token_loss,
    check_repair_bio,
    check_span_f1,
    check_tagger,
)

from .forecast import *  # noqa: F403

__all__ = [
    "TAGS",
    "CheckError",
    "check_bio_to_spans",
    "check_crf_log_partition",
    "check_crf_path_score",
    "check_masked_token_loss",
    "check_repair_bio",
    "check_span_f1",
    "check_tagger",
    "check_viterbi_decode",
]
