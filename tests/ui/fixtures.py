"""Small notebooks that exercise what the browser test looks for.

``ui_check_notebook`` has what a chapter shows (a slider driving a figure, a
tqdm.auto progress bar, a plain figure) followed by a cell that fails. The test
of the checks runs it, so a check that can no longer fail, or a selector that no
longer matches JupyterLab's page, is noticed.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SLIDER_CELL = """\
import ipywidgets
import matplotlib.pyplot as plt
import numpy as np


def plot_decay(w_hh=0.5):
    t = np.arange(20)
    plt.figure(figsize=(4, 2.5))
    plt.plot(t, w_hh**t, marker=".")
    plt.title(f"w_hh = {w_hh:g}")
    plt.show()


ipywidgets.interact(plot_decay, w_hh=(0.0, 1.0, 0.1));"""

PROGRESS_CELL = """\
import time

from tqdm.auto import tqdm

for _ in tqdm(range(5), desc="training"):
    time.sleep(0.05)"""

FIGURE_CELL = """\
plt.figure(figsize=(4, 2.5))
plt.plot(np.sin(np.linspace(0, 6, 50)))
plt.show()"""

BROKEN_CELL = """\
h_t = np.zeros(3)
W_hh = np.zeros((4, 4))
h_t @ W_hh  # shapes do not match"""

SHOWN_ERROR_CELL = """\
raise RuntimeError("an error the chapter shows on purpose")"""

BROKEN_ERROR = "matmul"
"""A word of the error message that ``BROKEN_CELL`` shows."""


def _notebook(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def ui_check_notebook() -> nbformat.NotebookNode:
    """A slider driving a figure, a progress bar, a figure, an error shown on purpose
    (cell 4, tagged ``raises-exception``: not a problem), then an error (cell 5)."""
    shown = new_code_cell(SHOWN_ERROR_CELL)
    shown.metadata["tags"] = ["raises-exception"]
    return _notebook(
        [
            new_markdown_cell("# Widgets, progress bars, figures and an error"),
            new_code_cell(SLIDER_CELL),
            new_code_cell(PROGRESS_CELL),
            new_code_cell(FIGURE_CELL),
            shown,
            new_code_cell(BROKEN_CELL),
            new_code_cell("print('not reached')"),
        ]
    )


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
