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
) -> nbformat.NotebookNode:
    """Run ``nb`` top to bottom in a fresh kernel whose working directory is ``cwd``.

    ``exports``: the folder the kernel's labs export to and load from
    (``WORKBOOK_EXPORTS``); default: as the environment says (``exports/``).
    """
    where = str(exports) if exports is not None else os.environ.get("WORKBOOK_EXPORTS")
    with environment(
        WORKBOOK_FAST="1" if fast else "0",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        WORKBOOK_EXPORTS=where,
    ):
        client = NotebookClient(
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
