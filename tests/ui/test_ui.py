"""The workbook in JupyterLab, as a student sees it, in headless Chromium.

Each notebook in ``NOTEBOOKS`` is opened in JupyterLab (started from this
environment, on a copy of the notebooks), run with *Run > Run All Cells* in
FAST mode, and the page must show: every code cell run, no error or stderr
output, every widget rendered (no text repr, no "Error displaying widget"),
every image loaded, plus what the entry expects (a slider that redraws its
figure, a tqdm progress bar, a figure). A screenshot of each notebook goes to
``tests/ui/screenshots/<name>.png``.

A new chapter or lab is covered by adding one line to ``NOTEBOOKS``.
Run with ``make test-ui``; ``WORKBOOK_UI_ONLY=lab06 make test-ui`` opens only the
notebooks whose path contains ``lab06`` (and the self-test).
"""

from __future__ import annotations

import os

import pytest

from tests.ui import fixtures
from tests.ui.lab import ROOT, Notebook, check_notebooks

NOTEBOOKS = [
    Notebook("notebooks/01_sequences_and_rnns.ipynb", expects_widget=True, expects_progress=True),
    Notebook("notebooks/02_bptt_and_gradients.ipynb", expects_widget=True),
    Notebook("notebooks/03_lstm.ipynb"),
    Notebook("notebooks/04_gru.ipynb", expects_progress=True),
    Notebook("notebooks/05_rnn_modules_in_practice.ipynb"),
    Notebook("notebooks/06_seq2seq.ipynb"),
    Notebook("notebooks/07_attention.ipynb"),
    Notebook("notebooks/08_applications.ipynb"),  # its bars close after training
    Notebook("notebooks/09_rnns_today.ipynb"),
    Notebook("solutions/lab01_rnn_from_scratch.ipynb"),
    Notebook("solutions/lab02_lstm_gru_from_scratch.ipynb"),
    Notebook("solutions/lab03_imdb_sentiment.ipynb"),  # its bars close after training
    Notebook("solutions/lab04_char_generation.ipynb"),  # its bar closes after training
    Notebook("solutions/lab05_neural_machine_translation.ipynb"),  # a text box, not a slider
    Notebook("solutions/lab06_ecg_anomalies.ipynb", expects_progress=True),
    Notebook("solutions/lab07_ner_and_forecasting.ipynb"),  # its bars close after training
    Notebook("solutions/lab08_chatbot_project.ipynb"),  # its bar closes after training
]

CHECKS = Notebook("ui_checks/ui_check.ipynb", expects_widget=True, expects_progress=True)
"""A small notebook (tests/ui/fixtures.py) on which the checks must find exactly one error."""


@pytest.fixture(scope="module")
def reports(browser, lab):
    """Run every notebook at once (one page each); a report per notebook path."""
    fixtures.write(fixtures.ui_check_notebook(), lab.root / CHECKS.path)
    present = [nb for nb in NOTEBOOKS if (ROOT / nb.path).is_file() and _selected(nb)]
    return check_notebooks(browser, lab, [*present, CHECKS])


def _selected(notebook: Notebook) -> bool:
    return os.environ.get("WORKBOOK_UI_ONLY", "") in notebook.path


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda nb: nb.name)
def test_notebook_in_jupyterlab(notebook, reports):
    if not _selected(notebook):
        pytest.skip("not selected by WORKBOOK_UI_ONLY")
    if notebook.path not in reports:
        pytest.fail(
            f"{notebook.path} does not exist, but NOTEBOOKS in tests/ui/test_ui.py lists it",
            pytrace=False,
        )
    report = reports[notebook.path]
    print(report.message)
    if report.problems:
        pytest.fail(report.message, pytrace=False)


def test_checks_see_widgets_and_errors(reports):
    """The checks themselves: the widgets render, the error and the unrun cell are reported,
    and an error in a cell tagged ``raises-exception`` (shown on purpose) is not."""
    report = reports[CHECKS.path]
    print(report.message)
    assert len(report.problems) == 2, report.message
    error, not_run = report.problems
    assert error.startswith("cell 5 `h_t = np.zeros(3)`: error output:"), report.message
    assert fixtures.BROKEN_ERROR in error, report.message
    assert not_run.startswith("1 code cell(s) did not run: 6"), report.message
    assert any("its figure changed" in note for note in report.notes), report.message
