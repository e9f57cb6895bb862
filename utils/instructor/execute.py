"""Execute notebooks in a fresh kernel and store their outputs.

Chapter and solution notebooks are stored with the outputs of one fresh,
sequential run in full mode (execution counts 1..N)::

    python -m utils.instructor execute notebooks/01_sequences_and_rnns.ipynb

``--fast`` runs in FAST mode instead (for a quick look; do not commit that).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from utils.instructor.notebook import clean_metadata

KERNEL = "python3"


class HeadlessClient(NotebookClient):
    """A notebook client that does not act as a widget frontend.

    For Output widgets, nbclient mimics a frontend: each output captured by ``with out:``
    makes it send a comm message to the kernel on the shell channel, from the coroutine
    that reads the outputs, while another coroutine waits on that same socket for the
    cell's reply. Now and then the reply is never seen and the cell "runs" until its time
    limit (about 1 run in 8 of a cell like Lab 5's translation box, on a loaded machine).
    Without the mimicry, what a widget's ``with out:`` prints lands in the cell's own
    outputs, and nothing but execute requests goes to the kernel. The grader and the lab
    generator, which keep no widget state, run notebooks with this client.
    """

    def on_comm_open_jupyter_widget(self, msg):
        return None


@contextmanager
def environment(**values: str | None):
    """Temporarily set (or, with ``None``, unset) environment variables."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_notebook(
    nb: nbformat.NotebookNode,
    cwd: Path,
    *,
    fast: bool,
    allow_errors: bool = False,
    timeout: int = 600,
    exports: Path | None = None,
    widgets: bool = True,
) -> nbformat.NotebookNode:
    """Run ``nb`` top to bottom in a fresh kernel whose working directory is ``cwd``.

    ``exports``: the folder the kernel's labs export to and load from
    (``WORKBOOK_EXPORTS``); default: as the environment says (``exports/``).
    ``widgets``: keep the widgets' state and outputs, as a frontend would (stored
    notebooks show them); without, run with :class:`HeadlessClient`.
    """
    where = str(exports) if exports is not None else os.environ.get("WORKBOOK_EXPORTS")
    with environment(
        WORKBOOK_FAST="1" if fast else "0",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        WORKBOOK_EXPORTS=where,
    ):
        client = (NotebookClient if widgets else HeadlessClient)(
            nb,
            timeout=timeout,
            kernel_name=KERNEL,
            allow_errors=allow_errors,
            record_timing=False,
            resources={"metadata": {"path": str(cwd)}},
        )
        client.execute()
    return nb


def execute_in_place(path: Path, *, fast: bool = False) -> float:
    """Execute the notebook at ``path`` and write it back with outputs; return seconds."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    start = time.perf_counter()
    run_notebook(nb, path.parent, fast=fast)
    seconds = time.perf_counter() - start
    nbformat.write(clean_metadata(nb), path)
    return seconds
