"""The grading worker: runs one unit of work and returns its result as JSON-ready data.

A unit is one student's labs, in course order (a later lab imports what the
student's earlier lab exported). For each lab the worker

1. starts a kernel (:mod:`.kernel`) in the sandbox (:mod:`.isolation`; the audit-hook
   policy only, when the instructor accepted an unisolated run), in fresh private
   folders, under a watchdog (time per cell, total time, memory);
2. runs the graded notebook's cells in order: every cell but the tests in the kernel;
   each test cell **here**, in the worker's own interpreter, with the student's
   functions called through :mod:`.remote`, and the inputs of the checks drawn
   from a seed fresh for this grading run (:func:`utils.checks.fresh_inputs`);
3. reports each cell's outputs and errors, each test's verdict, and how the run ended.

:func:`grade_unit` is the unit: a plain function from a dict to a dict, so the local
process pool and a Dask cluster run it alike (:mod:`utils.instructor.run`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from . import isolation, kcall, protocol, remote
from .commands import MOUNT, PACKAGE_DIR, _kernel_setup, _sandbox_command, forbidden_dirs  # noqa: F401
from .limits import Limits
from .watch import MAX_CELL_OUTPUT, MAX_ERROR_TEXT, OUTPUT_TAIL, _OutputCap, _shorten, _Watchdog  # noqa: F401

KERNEL_NAME = "workbook-sandbox"
KERNEL_CALL = -1
"""the cell index of the grader's calls into the kernel (``kernel_functions``)"""


@contextlib.contextmanager
def _alarm(seconds: float):
    """Raise :class:`remote.CallTimeout` in this thread after ``seconds`` (main thread of a
    process only; elsewhere, e.g. a Dask worker thread, the function server's deadline
    still bounds every call)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum, frame):
        raise remote.CallTimeout()

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


DATASET = re.compile(r"""load_dataset\(\s*["']([A-Za-z0-9_.-]+)["']""")


def datasets_in(cells: list) -> list[str]:
    """The datasets a notebook's code cells load by name (``load_dataset("ecg5000")``)."""
    return sorted({m for c in cells if c.cell_type == "code" for m in DATASET.findall(c.source)})


def prefetch(names: list[str]) -> None:
    """Bring the datasets ``names`` into the data cache, here, before the sandbox starts:
    in there the cache is read-only. Raises ``DataError`` for one that cannot be had."""
    from utils.data.download import fetch
    from utils.data.registry import REGISTRY

    for name in names:
        if name in REGISTRY:  # a name the registry does not know fails in the notebook itself
            fetch(name, fetch_optional=False, progress=False)


@contextlib.contextmanager
def _fast_mode(fast: bool):
    """``WORKBOOK_FAST`` of this process set as the kernel's, for the tests run here."""
    old = os.environ.get("WORKBOOK_FAST")
    os.environ["WORKBOOK_FAST"] = "1" if fast else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WORKBOOK_FAST", None)
        else:
            os.environ["WORKBOOK_FAST"] = old


def _first_error(outputs: list) -> dict | None:
    for o in outputs:
        if o.get("output_type") == "error":
            return o
    return None


def _test_trace(e: BaseException, filename: str, source: str) -> str:
    """Where in the test cell it failed: the failing line only (not the hidden tests around it)."""
    rows = source.splitlines()
    lines = [
        f"test line {f.lineno}: {rows[f.lineno - 1].strip() if 0 < f.lineno <= len(rows) else ''}"
        for f in traceback.extract_tb(e.__traceback__)
        if f.filename == filename
    ]
    trace = getattr(e, "remote_trace", "")
    return "\n".join(lines[-1:] + ([f"in your code:\n{trace}"] if trace else []))


def load_budget(limits: Limits, seconds: dict[int, float], stopped: set[int], cells) -> float:
    """Seconds the function server may take to load ``cells``: their run time in the
    kernel (``seconds``) times the factor; a cell the kernel interrupted at its limit
    (in ``stopped``) gets that time once more, not ten times it: it loops or is too
    slow, and the test that needs it fails either way."""
    ran = sum(seconds.get(i, 0.0) for i in cells if i not in stopped)
    return limits.for_cell(ran) + sum(seconds.get(i, 0.0) for i in cells if i in stopped)


def run_lab(lab: dict, limits: Limits, folder: Path, exports: Path, isolate: bool, salt) -> dict:
    """Run one graded notebook (see the module docstring); returns its result."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient.exceptions import DeadKernelError

    from utils.checks.core import fresh_inputs
    from utils.instructor.execute import HeadlessClient

    nb = nbformat.from_dict(lab["notebook"])
    n_cells = len(nb.cells)
    tests = {int(k): v for k, v in lab["tests"].items()}
    cell_limits = {int(k): float(v) for k, v in lab.get("cell_limits", {}).items()}
    forbid = lab.get("forbid", {})
    functions = set(lab.get("functions", []))
    kernel_functions = set(lab.get("kernel_functions", []))
    prefetch(lab.get("datasets", []))
    private, home, fhome = folder / "private", folder / "work", folder / "functions"
    for p in (private / "kernels" / KERNEL_NAME, private / "rt", home, fhome):
        p.mkdir(parents=True, exist_ok=True)
    if isolate:
        isolation.own_by_sandbox_user(home, fhome, exports, private / "rt")
    argv, kernel_env = _kernel_setup(private, home, exports, limits, isolate)
    spec = {"argv": argv, "display_name": "grader sandbox", "language": "python", "env": kernel_env}
    (private / "kernels" / KERNEL_NAME / "kernel.json").write_text(
        json.dumps(spec), encoding="utf-8"
    )

    class SandboxKernelManager(AsyncKernelManager):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.transport, self.ip = "ipc", str(private / "rt" / "k")
            self.connection_file = str(private / "rt" / "connection.json")

        def _kernel_spec_manager_default(self):
            return KernelSpecManager(kernel_dirs=[str(private / "kernels")])

        def write_connection_file(self, **kw):
            super().write_connection_file(**kw)
            os.chmod(self.connection_file, 0o644)  # the kernel's user reads it

    replies: dict[int, dict] = {}
    cap = _OutputCap()

    class CappedClient(HeadlessClient):  # headless: no frontend mimicked for widgets
        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if (
                cell_index == KERNEL_CALL
                and not any(kcall.MIME in (o.get("data") or {}) for o in outs[:-1])
                and kcall.MIME in ((out or {}).get("data") or {})
            ):
                return out  # the reply to a kernel call (the first): its size is checked when read
            cap.add(outs, out, cell_index, display_id)
            return out

    def on_executed(cell, cell_index, execute_reply):
        content = (execute_reply or {}).get("content", {})
        reply = {k: content.get(k) for k in ("status", "ename", "evalue", "traceback")}
        if reply["evalue"]:
            reply["evalue"] = _shorten(str(reply["evalue"]))
        if reply["traceback"]:
            reply["traceback"] = [_shorten(str(t)) for t in reply["traceback"]][-200:]
        replies[cell_index] = reply

    km = SandboxKernelManager(kernel_name=KERNEL_NAME)
    client = CappedClient(
        nb,
        km=km,
        timeout=None,
        allow_errors=True,
        record_timing=False,
        startup_timeout=120,
        iopub_timeout=10,
        # no history file; figures are not drawn (nobody looks at them while grading)
        extra_arguments=[
            "--HistoryManager.hist_file=:memory:",
            "--InlineBackend.figure_formats=set()",
        ],
        resources={"metadata": {"path": str(home)}},
        on_cell_executed=on_executed,
    )
    stopped: dict | None = None
    watchdog: _Watchdog | None = None
    verdicts: dict[int, dict] = {}
    test_timeouts: set[int] = set()
    seconds: dict[int, float] = {}
    start = time.monotonic()
    current = None

    lab_forbid = sorted({*forbid.get("*", []), "utils.checks"})
    # the function server reads a copy of the earlier labs' exports (regular files only):
    # nothing the kernel can write is shared with it, so no channel runs between them
    snapshot = folder / "exports-snapshot"
    snapshot.mkdir()
    for f in exports.iterdir():
        if f.is_file() and not f.is_symlink():
            shutil.copyfile(f, snapshot / f.name, follow_symlinks=False)
    fargv, fenv = _sandbox_command(
        "functions", [], home=fhome, exports=snapshot, limits=limits, isolate=isolate,
        forbid=lab_forbid,
    )  # fmt: skip

    def budget(start: int, stop: int) -> float:
        stopped = watchdog.timed_out if watchdog is not None else set()
        return load_budget(limits, seconds, stopped, range(start, stop))

    server = remote.FunctionServer(
        fargv, fenv or None, fhome, lab["setup"], lab.get("sources", []),
        private / "functions.log", budget,
    )  # fmt: skip

    def kernel_execute(code: str) -> list:
        """Run ``code`` in the kernel (resumed for it) within the test's deadline."""
        left = server.deadline - time.monotonic()
        if left <= 0:
            raise remote.CallTimeout()
        cell = nbformat.v4.new_code_cell(code)
        watchdog.pause(False)
        watchdog.begin(KERNEL_CALL, left)
        try:
            client.execute_cell(cell, KERNEL_CALL, store_history=False)
        except DeadKernelError:
            raise remote.KernelDied("the notebook's kernel stopped") from None
        finally:
            watchdog.end()
            watchdog.pause(True)
            cap.size.pop(KERNEL_CALL, None)
            cap.cut.pop(KERNEL_CALL, None)
            replies.pop(KERNEL_CALL, None)
        if KERNEL_CALL in watchdog.timed_out:
            watchdog.timed_out.discard(KERNEL_CALL)
            raise remote.CallTimeout()
        return cell.outputs

    kernel = remote.KernelCalls(kernel_execute, "wbsandbox" if isolate else __package__)
    base: dict = {"__name__": "__grader_tests__"}
    exec(compile(remote.setup_imports(lab["setup"]), "<setup imports>", "exec"), base)  # noqa: S102

    def run_test(i: int, gid: str, source: str, limit: float) -> dict:
        out = io.StringIO()
        filename = f"<test {gid}>"
        verdict = {"passed": False}
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                # loading the student's cells has its own budget; the test's clock starts after
                server.deadline = watchdog.deadline
                server.advance(i)
                server.ensure_started()
                server.deadline = min(time.monotonic() + limit, watchdog.deadline)
                with _alarm(limit + 60):  # the grader's own side of the test too
                    ns = remote.test_namespace(
                        base, source, server, functions, kernel, kernel_functions
                    )
                    exec(compile(source, filename, "exec"), ns)  # noqa: S102
            verdict["passed"] = True
        except remote.CallTimeout:
            verdict["timed_out"] = True
            server.close()  # whatever it was doing: start it afresh for the next test
        except remote.KernelDied as e:
            verdict["ename"], verdict["evalue"] = "KernelDied", f"{e} (the function crashed it)"
        except BaseException as e:  # noqa: BLE001 - a failing test, whatever it raised
            verdict["ename"] = type(e).__name__
            verdict["evalue"] = _shorten(str(e))
            verdict["traceback"] = _test_trace(e, filename, source)
        verdict["printed"] = out.getvalue()[-4000:]
        return verdict

    try:
        with (
            (private / "kernel.log").open("w") as log,  # what the kernel process itself prints
            client.setup_kernel(stdout=log, stderr=log),
            fresh_inputs(salt),
            _fast_mode(limits.fast),  # a test's pick(full=..., fast=...) agrees with the kernel
        ):
            watchdog = _Watchdog(client.km.provisioner.pid, limits)
            watchdog.also = lambda: [server.proc.pid] if server.proc is not None else []
            watchdog.start()
            for i, cell in enumerate(nb.cells[:n_cells]):
                if cell.cell_type != "code":
                    continue
                if watchdog.killed:
                    stopped = {"reason": watchdog.killed, "cell": i}
                    break
                current = i
                t0 = time.monotonic()
                try:
                    if i in tests:  # here, against the function server, under its own deadline
                        limit = cell_limits.get(i, limits.cell_timeout)
                        watchdog.pause(True)
                        try:
                            verdicts[i] = run_test(i, tests[i], cell.source, limit)
                        finally:
                            watchdog.pause(False)
                        if verdicts[i].get("timed_out"):
                            test_timeouts.add(i)
                    else:
                        watchdog.begin(i, cell_limits.get(i))
                        client.execute_cell(cell, i)
                except DeadKernelError:
                    stopped = {"reason": watchdog.killed or protocol.DIED, "cell": i}
                    break
                finally:
                    seconds[i] = time.monotonic() - t0
                    watchdog.end()
                    cap.finish(cell, i)
    except Exception as e:  # noqa: BLE001 - report, never crash the whole run
        if stopped is None:
            message = f"{type(e).__name__}: {e}"
            if watchdog is None:  # the kernel never started: a problem of the grader
                stopped = {"reason": protocol.ERROR, "cell": None, "message": message}
            else:
                reason = watchdog.killed or protocol.DIED
                stopped = {"reason": reason, "cell": current, "message": message}
    finally:
        server.close()
        if watchdog is not None:
            watchdog.stop.set()
            if watchdog.proc.is_running():
                watchdog.kill(protocol.CLEANUP)
            try:
                watchdog.proc.wait(timeout=10)  # reap it: no zombie per graded lab
            except Exception:  # noqa: BLE001, S110 - not our child, or already gone
                pass
    return {
        "cells": [
            {"outputs": c.get("outputs", []), "reply": replies.get(i)}
            if c.cell_type == "code" and i not in tests
            else None
            for i, c in enumerate(nb.cells[:n_cells])
        ],
        "tests": {str(i): v for i, v in verdicts.items()},
        "timed_out": sorted((watchdog.timed_out if watchdog else set()) | test_timeouts),
        "stopped": stopped,
        "cell_seconds": {str(i): round(s, 4) for i, s in seconds.items()},
        "functions_failed": server.failed[:20],
        "seconds": time.monotonic() - start,
        "peak_mb": watchdog.peak_mb if watchdog else 0.0,
    }


def grade_unit(unit: dict) -> dict:
    """Grade one unit: ``unit["labs"]`` in order, sharing one exports folder.

    ``unit``: ``{"student", "labs": [lab spec, ...], "limits": {...}, "isolate": bool,
    "salt": int}``. Returns ``{"student", "labs": [result, ...]}`` (JSON-ready).
    """
    limits = Limits(**unit["limits"])
    with tempfile.TemporaryDirectory(prefix="workbook-unit-") as tmp:
        session = Path(tmp)
        exports = session / "exports"
        exports.mkdir()
        results = []
        for n, lab in enumerate(unit["labs"]):
            try:
                results.append(
                    run_lab(
                        lab, limits, session / f"lab{n}", exports, unit["isolate"], unit["salt"]
                    )
                )
            except Exception as e:  # noqa: BLE001 - one broken lab must not lose the others
                results.append({"error": f"{type(e).__name__}: {e}"})
            finally:
                shutil.rmtree(session / f"lab{n}", ignore_errors=True)
    return {"student": unit["student"], "labs": results}


def limits_dict(limits: Limits) -> dict:
    return asdict(limits)
