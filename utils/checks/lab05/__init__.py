"""Visible and hidden checks for Lab 5 (neural machine translation, English to French, with
Luong attention): :mod:`.attention` (the scores, the masked softmax, one decoder step),
:mod:`.training` (scheduled sampling), :mod:`.bleu` (corpus BLEU) and :mod:`.translation`
(the trained translator on the held-out test split).

Each ``check_*`` function calls a student's function through the shared engine and
compares what comes back with an independent computation (a GRU cell written out gate by
gate, a masked softmax, sacrebleu, ...). It prints one ``[PASS]`` line or raises
:class:`CheckError` naming the likely cause. No function here has the signature of an
exercise.
"""

from utils.checks.core import CheckError
from utils.checks.lab05.attention import check_attend, check_decoder_step, check_luong_scores
from utils.checks.lab05.bleu import check_corpus_bleu
from utils.checks.lab05.training import check_mix_inputs, check_teacher_forcing_ratio
from utils.checks.lab05.translation import check_translate

__all__ = [
    "CheckError",
    "check_attend",
    "check_corpus_bleu",
    "check_decoder_step",
    "check_luong_scores",
    "check_mix_inputs",
    "check_teacher_forcing_ratio",
    "check_translate",
]
