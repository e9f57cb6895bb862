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
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from . import isolation, protocol, remote

KERNEL_NAME = "workbook-sandbox"
PACKAGE_DIR = Path(__file__).resolve().parent
MOUNT = "/opt/workbook-grader"
"""where the kernel's code appears inside bubblewrap (as the package ``wbsandbox``)"""


@dataclass
class Limits:
    """Limits for one submission's kernel."""

    cell_timeout: float = 60.0
    """seconds any cell may run; a cell of the lab gets ``cell_factor`` times the
    solution's time for it when that is longer"""
    cell_factor: float = 10.0
    total_timeout: float = 1800.0
    """seconds the whole notebook may run"""
    memory_mb: int = 4096
    """address-space cap of the kernel (RLIMIT_AS) and resident-memory cap (MiB)"""
    fast: bool = False
    """run the kernel in FAST mode (``WORKBOOK_FAST=1``)"""
    processes: int = 4096
    """processes and threads the kernel's user may have (RLIMIT_NPROC)"""

    def for_cell(self, solution_seconds: float | None) -> float:
        if solution_seconds is None:
            return self.cell_timeout
        return max(self.cell_timeout, self.cell_factor * solution_seconds)


class _Watchdog(threading.Thread):
    """Interrupts a cell past its limit; kills the kernel past the total time or memory."""

    def __init__(self, pid: int, limits: Limits, grace: float = 5.0):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.limits, self.grace = limits, grace
        self.deadline = time.monotonic() + limits.total_timeout
        self.cell: int | None = None
        self.cell_start = 0.0
        self.cell_limit = limits.cell_timeout
        self.interrupted = False
        self.timed_out: set[int] = set()
        self.killed: str | None = None
        self.peak_mb = 0.0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self._kernel_pid: int | None = None
        self.also = lambda: []  # more processes of the same submission (the function server)

    def begin(self, index: int, limit: float | None = None) -> None:
        with self.lock:
            self.cell, self.cell_start, self.interrupted = index, time.monotonic(), False
            self.cell_limit = limit if limit is not None else self.limits.cell_timeout

    def end(self) -> None:
        with self.lock:
            self.cell = None

    def _tree(self) -> list:
        import psutil

        procs = [self.proc]
        for pid in self.also():
            try:
                procs.append(psutil.Process(pid))
            except psutil.Error:
                pass
        out = []
        for p in procs:
            try:
                out += [p, *p.children(recursive=True)]
            except psutil.Error:
                out.append(p)
        return out

    def pause(self, on: bool) -> None:
        """Stop (``on``) or resume the kernel's processes: while a test runs, nothing
        in the notebook's kernel runs (no thread of it can answer the function server)."""
        import psutil

        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return
        for p in procs:
            try:
                p.suspend() if on else p.resume()
            except psutil.Error:
                pass

    def kernel_pid(self) -> int:
        """The Python process of the kernel (under bubblewrap, a grandchild of ``proc``)."""
        if self._kernel_pid is None:
            import psutil

            for p in self._tree():
                try:
                    if "kernel" in " ".join(p.cmdline()) and "python" in p.name():
                        self._kernel_pid = p.pid
                except psutil.Error:
                    continue
        return self._kernel_pid or self.proc.pid

    def _rss_mb(self) -> float:
        import psutil

        total = 0
        for p in self._tree():
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def kill(self, reason: str) -> None:
        if self.killed is None:
            self.killed = reason
        protocol.kill_tree(self.proc.pid)
        for pid in self.also():
            protocol.kill_tree(pid)

    def run(self) -> None:
        while not self.stop.wait(0.1):
            rss = self._rss_mb()
            self.peak_mb = max(self.peak_mb, rss)
            now = time.monotonic()
            with self.lock:
                cell, start, limit, interrupted = (
                    self.cell,
                    self.cell_start,
                    self.cell_limit,
                    self.interrupted,
                )
            if self.killed:
                continue
            if rss > self.limits.memory_mb:
                self.kill(protocol.MEMORY)
            elif now > self.deadline:
                self.kill(protocol.TOTAL_TIMEOUT)
            elif cell is not None and now > start + limit:
                if not interrupted:
                    self.timed_out.add(cell)
                    with self.lock:
                        self.interrupted = True
                    try:
                        os.kill(self.kernel_pid(), signal.SIGINT)
                    except OSError:
                        pass
                elif now > start + limit + self.grace:
                    self.kill(protocol.TIMEOUT)  # the interrupt did not stop it


MAX_CELL_OUTPUT = 200_000
"""characters of output a cell keeps; beyond it only the last ``OUTPUT_TAIL`` are kept"""
OUTPUT_TAIL = 10_000
MAX_ERROR_TEXT = 20_000
"""characters kept of an error's message and of each traceback entry"""


class _OutputCap:
    """Bounds what the worker keeps of a cell's outputs, so that a cell printing in a
    loop cannot fill the grader's memory: the first ``MAX_CELL_OUTPUT`` characters
    are kept, then only the last ``OUTPUT_TAIL`` characters of the text streams (the
    grader's token, printed last, survives); errors are kept, shortened."""

    def __init__(self):
        self.size: dict[int, int] = {}
        self.cut: dict[int, dict] = {}  # cell -> {"chars": n, "tail": {stream name: text}}

    def add(self, outs: list, out, cell_index: int, display_id) -> None:
        if out is None or not outs or outs[-1] is not out:
            return
        kind = out.get("output_type")
        if kind == "error":
            out["evalue"] = _shorten(str(out.get("evalue", "")))
            out["traceback"] = [_shorten(str(t)) for t in out.get("traceback", [])][-200:]
            return
        n = len(json.dumps(out.get("text", "") if kind == "stream" else out.get("data", {})))
        used = self.size.get(cell_index, 0)
        if used + n <= MAX_CELL_OUTPUT and cell_index not in self.cut:
            self.size[cell_index] = used + n
            return
        outs.pop()
        cut = self.cut.setdefault(cell_index, {"chars": 0, "tail": {}})
        cut["chars"] += n
        if kind == "stream":
            tail = cut["tail"].get(out["name"], "") + out["text"]
            cut["tail"][out["name"]] = tail[-OUTPUT_TAIL:]

    def finish(self, cell, cell_index: int) -> None:
        """Append what was cut from ``cell``'s outputs: a note and the streams' tails."""
        import nbformat

        cut = self.cut.pop(cell_index, None)
        if not cut:
            return
        note = f"\n... [{cut['chars']:,} characters of output cut by the grader] ...\n"
        cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text=note))
        for name, tail in cut["tail"].items():
            cell.outputs.append(nbformat.v4.new_output("stream", name=name, text=tail))


def _shorten(text: str) -> str:
    if len(text) <= MAX_ERROR_TEXT:
        return text
    half = MAX_ERROR_TEXT // 2
    return f"{text[:half]}\n... [{len(text) - 2 * half:,} characters cut] ...\n{text[-half:]}"


# ---------------------------------------------------------------------- one lab


RELATED = {"torch": ("functorch", "torchgen")}
"""packages that come with a forbidden one and are hidden with it"""


def forbidden_dirs(forbid: list[str]) -> list[Path]:
    """The folders to hide so that the modules ``forbid`` names are not there at all."""
    import importlib.util

    from utils.env import ROOT

    dirs = []
    for name in forbid:
        if name == "utils.checks":
            dirs.append(ROOT / "utils" / "checks")
            continue
        for top in (name.split(".")[0], *RELATED.get(name.split(".")[0], ())):
            try:
                spec = importlib.util.find_spec(top)
            except (ImportError, ValueError):
                spec = None
            if spec is not None and spec.submodule_search_locations:
                dirs.extend(Path(p) for p in spec.submodule_search_locations)
    return sorted(set(dirs))


def _sandbox_command(
    module: str,
    args: list[str],
    *,
    home: Path,
    exports: Path,
    limits: Limits,
    isolate: bool,
    writable: list[Path] = (),
    forbid: list[str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a sandboxed process running ``module`` of
    this package: the notebook's kernel, or (``forbid`` given) the function server,
    which also does without the modules the lab forbids and may not write its exports."""
    from utils import env
    from utils.env import ROOT
    from utils.instructor.student import INSTRUCTOR_ONLY, package_dirs

    data = env.data_dir()
    functions = forbid is not None
    policy = {
        "memory_mb": limits.memory_mb,
        "processes": limits.processes if isolate else None,
        "root": str(ROOT),
        "allow_read": [
            str(p) for p in [*package_dirs(), data, Path(sys.prefix), Path(sys.base_prefix)]
        ],
        "allow_write": [] if isolate or functions else [str(data)],
        "deny": [str(d) for d in forbidden_dirs(forbid)] if functions else [],
        "home": str(home),
        "own": [] if functions else [str(exports)],
        "forbid": list(forbid or []),
    }
    threads = "1"
    process_env = {
        "WORKBOOK_SANDBOX": json.dumps(policy),
        "WORKBOOK_FAST": "1" if limits.fast else "0",
        "WORKBOOK_EXPORTS": str(exports),
        "WORKBOOK_DATA": str(data),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(home / ".matplotlib"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    if not isolate:
        argv = [sys.executable, "-m", f"utils.instructor.sandbox.{module}", *args]
        process_env["PYTHONPATH"] = os.pathsep.join(
            p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p
        )
        return argv, {**os.environ, **process_env}
    process_env["PYTHONPATH"] = f"{MOUNT}:{ROOT}"
    readable = [*package_dirs(), *([data] if data.is_dir() else [])]
    argv = isolation.bwrap_command(
        [sys.executable, "-m", f"wbsandbox.{module}", *args],
        read_only=readable + ([exports] if functions else []),
        writable=[home, *([] if functions else [exports]), *writable],
        hidden=[ROOT / d for d in INSTRUCTOR_ONLY] + (forbidden_dirs(forbid) if functions else []),
        mounts=[(PACKAGE_DIR, f"{MOUNT}/wbsandbox")],
        cwd=home,
        env=process_env,
    )
    return argv, {}


def _kernel_setup(
    private: Path, home: Path, exports: Path, limits: Limits, isolate: bool
) -> tuple[list[str], dict[str, str]]:
    """The notebook kernel's command line and environment (for its kernel.json)."""
    argv, process_env = _sandbox_command(
        "kernel", ["-f", "{connection_file}"], home=home, exports=exports, limits=limits,
        isolate=isolate, writable=[private / "rt"],
    )  # fmt: skip
    if not isolate:  # kernel.json adds only what differs from the grader's environment
        process_env = {k: v for k, v in process_env.items() if os.environ.get(k) != v}
    return argv, process_env


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


def run_lab(lab: dict, limits: Limits, folder: Path, exports: Path, isolate: bool, salt) -> dict:
    """Run one graded notebook (see the module docstring); returns its result."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    from utils.checks.core import fresh_inputs

    nb = nbformat.from_dict(lab["notebook"])
    n_cells = len(nb.cells)
    tests = {int(k): v for k, v in lab["tests"].items()}
    cell_limits = {int(k): float(v) for k, v in lab.get("cell_limits", {}).items()}
    forbid = lab.get("forbid", {})
    functions = set(lab.get("functions", []))
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

    class CappedClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
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

    def load_budget(start: int, stop: int) -> float:
        ran = sum(seconds.get(i, 0.0) for i in range(start, stop))
        return limits.for_cell(ran)

    server = remote.FunctionServer(
        fargv, fenv or None, fhome, lab["setup"], lab.get("sources", []),
        private / "functions.log", load_budget,
    )  # fmt: skip
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
                    ns = remote.test_namespace(base, source, server, functions)
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
