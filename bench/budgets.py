"""Run-time budgets of every notebook, in one table (seconds on a 2-core CPU, one torch thread).

``full``: a student's default run; ``fast``: FAST mode, as CI runs it. ``make bench``
measures both against these numbers, and a notebook missing from the table is
an error: a new chapter or lab adds its row here. The **Time** line at the top of
each notebook and the README's course map state what ``make bench`` measured
(``tests/test_bench.py`` holds them to ``bench/results.json``).
"""

from __future__ import annotations

from typing import NamedTuple


class Budget(NamedTuple):
    full: int
    fast: int


BUDGETS: dict[str, Budget] = {
    "notebooks/01_sequences_and_rnns.ipynb": Budget(full=60, fast=45),
    "notebooks/02_bptt_and_gradients.ipynb": Budget(full=180, fast=45),
    "notebooks/03_lstm.ipynb": Budget(full=180, fast=45),
    "notebooks/04_gru.ipynb": Budget(full=180, fast=45),
    "notebooks/05_rnn_modules_in_practice.ipynb": Budget(full=180, fast=45),
    "notebooks/06_seq2seq.ipynb": Budget(full=180, fast=45),
    "notebooks/07_attention.ipynb": Budget(full=180, fast=45),
    "notebooks/08_applications.ipynb": Budget(full=300, fast=60),
    "notebooks/09_rnns_today.ipynb": Budget(full=180, fast=45),
    "solutions/lab01_rnn_from_scratch.ipynb": Budget(full=60, fast=45),
    "solutions/lab02_lstm_gru_from_scratch.ipynb": Budget(full=120, fast=45),
    "solutions/lab03_imdb_sentiment.ipynb": Budget(full=900, fast=90),
    "solutions/lab04_char_generation.ipynb": Budget(full=900, fast=90),
    "solutions/lab05_neural_machine_translation.ipynb": Budget(full=1200, fast=90),
    "solutions/lab06_ecg_anomalies.ipynb": Budget(full=600, fast=60),
    "solutions/lab07_ner_and_forecasting.ipynb": Budget(full=600, fast=60),
    "solutions/lab08_chatbot_project.ipynb": Budget(full=900, fast=60),
}


def budget(rel: str) -> Budget:
    """The budget of the notebook at ``rel`` (relative to the workbook)."""
    try:
        return BUDGETS[rel]
    except KeyError:
        raise KeyError(f"{rel} has no run-time budget: add a row to bench/budgets.py") from None
