"""Run grading units: on this machine (a process pool) or on a Dask cluster.

A unit is one student's labs (:func:`.sandbox.worker.grade_unit`: a dict in, a
JSON-ready dict out), so the same units run anywhere the workbook is installed:

- locally (default): a pool of ``jobs`` worker processes, each grading one unit at
  a time (each process imports the checks once and keeps them);
- ``scheduler="tcp://host:8786"``: on an existing Dask distributed cluster. Every
  worker machine needs the workbook at the same version (and, for isolation,
  bubblewrap); nothing is read from the instructor's disk but the units themselves.

Before the students, the solution itself is graded as a unit (:func:`calibrate`):
it must earn every point (else grading stops: the lab or the machine is broken),
and its time per cell sets each cell's limit for the students, ``cell_factor``
times the solution's, never less than ``cell_timeout``.
"""

from __future__ import annotations

import multiprocessing
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from utils.instructor.assemble import GradedNotebook, Lab
from utils.instructor.sandbox.remote import function_sources
from utils.instructor.sandbox.worker import Limits, datasets_in, grade_unit, limits_dict


def lab_spec(lab: Lab, graded: GradedNotebook, cell_limits: dict[int, float]) -> dict:
    """What the worker needs to run one graded notebook (JSON-ready)."""
    tests = {str(i): g.grade_id for i, g in graded.grade_cells.items()}
    forbid = {"*": lab.forbid()}
    for g in graded.grade_cells.values():
        forbid[g.grade_id] = lab.forbid(lab.exercise_for_test(g.index))
    sources = function_sources(
        graded.nb.cells, set(graded.exercise_of), set(graded.origin), set(graded.grade_cells)
    )
    return {
        "name": lab.name,
        "notebook": graded.nb,
        "sources": sources,
        "tests": tests,
        "setup": lab.setup_source,
        "functions": sorted(lab.exercises),
        "kernel_functions": lab.kernel_functions,
        "datasets": datasets_in(lab.template.cells),
        "forbid": forbid,
        "cell_limits": {str(i): s for i, s in cell_limits.items()},
    }


def make_unit(student: str, specs: list[dict], limits: Limits, isolate: bool, salt: int) -> dict:
    return {
        "student": student,
        "labs": specs,
        "limits": limits_dict(limits),
        "isolate": isolate,
        "salt": salt,
    }


def new_salt() -> int:
    """The number that makes this grading run's test inputs its own."""
    return secrets.randbits(63)


def run_units(
    units: list[dict], *, jobs: int, scheduler: str | None = None
) -> Iterator[tuple[dict, dict]]:
    """Yield ``(unit, result)`` as units finish; a unit that could not run gets
    ``{"error": why}`` instead of a result."""
    if not units:
        return
    if scheduler:
        yield from _run_dask(units, scheduler)
        return
    if jobs == 1 and len(units) == 1:
        yield units[0], _safe(grade_unit, units[0])
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(units)), mp_context=ctx) as pool:
        futures = {pool.submit(grade_unit, u): u for u in units}
        for fut in as_completed(futures):
            unit = futures[fut]
            try:
                yield unit, fut.result()
            except BrokenProcessPool as e:
                yield unit, {"error": f"the grading process stopped ({e})"}
            except Exception as e:  # noqa: BLE001
                yield unit, {"error": f"{type(e).__name__}: {e}"}


def _safe(fn: Callable, unit: dict) -> dict:
    try:
        return fn(unit)
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}


def _run_dask(units: list[dict], scheduler: str) -> Iterator[tuple[dict, dict]]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as e:  # pragma: no cover - distributed is in requirements.txt
        raise RuntimeError(
            "--scheduler needs the `distributed` package (pip install distributed)"
        ) from e
    client = Client(scheduler, timeout="30s") if isinstance(scheduler, str) else scheduler
    try:
        futures = client.map(grade_unit, units, pure=False)
        by_key = {f.key: u for f, u in zip(futures, units)}
        for fut in dask_completed(futures):
            unit = by_key[fut.key]
            try:
                yield unit, fut.result()
            except Exception as e:  # noqa: BLE001
                yield unit, {"error": f"a Dask worker failed: {type(e).__name__}: {e}"}
    finally:
        if isinstance(scheduler, str):
            client.close()
