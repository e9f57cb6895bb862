"""A Jupyter kernel with resource limits, and the worker that runs it, for grading.

The grader (:mod:`utils.instructor.grade`) runs one worker per submission::

    python utils/instructor/sandbox.py --worker SPEC.json RESULT.json

which starts this file again as the kernel, instead of the plain IPython kernel::

    python utils/instructor/sandbox.py -f {connection_file}

Both run as scripts and import nothing from ``utils`` (so they start quickly).
Before the kernel starts it reads its limits from the environment variable
``WORKBOOK_SANDBOX`` (JSON, removed from the environment afterwards) and

- caps the address space (``RLIMIT_AS``): an allocation beyond the cap raises
  ``MemoryError`` instead of exhausting the machine; also caps the size of a
  written file and disables core dumps;
- installs an audit hook (:func:`sys.addaudithook`) that refuses, with
  ``PermissionError``:

  * reading or listing anything in the workbook folder except ``utils/``,
    the data cache and the Python environment (so ``solutions/``, ``tests/``
    and ``.git`` are out of reach), and any of the extra ``deny`` folders
    (the submissions, the grades, the grader's own scratch folder);
  * writing anywhere in the workbook folder except the data cache;
  * reading another process's ``/proc/<pid>`` entries (the grader's memory);
  * connecting to, or resolving, any address that is not the loopback
    interface (the kernel's own messages go through ZMQ, which is not affected);
  * starting programs (``subprocess``, ``os.system``, ``os.exec*``, ``spawn``)
    and loading the C library through ``ctypes``;
- drops what a cell prints beyond ``MAX_STREAM_CHARS`` (except the grader's
  token line) and turns off IPython's in-memory copy of every output, so a cell
  printing in an endless loop costs neither the kernel's nor the grader's memory
  (the worker also keeps at most ``MAX_CELL_OUTPUT`` characters of a cell's outputs).

This keeps honest mistakes and casual tricks from affecting the grade. It is
not a security boundary like a container or a virtual machine: code that
rewrites the interpreter's memory (through ``ctypes`` on an already loaded
library, for example) can get around it. Grade untrusted code from strangers
inside a container or a throw-away virtual machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "WORKBOOK_SANDBOX"
KERNEL_NAME = "workbook-sandbox"
MiB = 2**20

# Events that start another program: a child would run without these limits.
_PROGRAM_EVENTS = {
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.startfile",
    "pty.spawn",
}
_READ_PATH_EVENTS = {"os.listdir", "os.scandir", "glob.glob", "os.chdir"}
_WRITE_PATH_EVENTS = {
    "os.remove",
    "os.rmdir",
    "os.mkdir",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.utime",
    "shutil.rmtree",
    "os.chflags",
    "os.setxattr",
    "os.removexattr",
}
_TWO_PATH_EVENTS = {"os.rename", "os.link", "os.symlink", "shutil.copyfile", "shutil.move"}
_RESOLVE_EVENTS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"}
_PROC_PID = re.compile(r"^/proc/(\d+)(/|$)")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _is_loopback(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None or host in ("localhost", "localhost.localdomain", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _within(path: str, roots) -> bool:
    return any(path == r or path.startswith(r + os.sep) for r in roots)


class Policy:
    """What the kernel may read, write and connect to (see the module docstring)."""

    def __init__(
        self,
        root: str,
        allow_read: list[str],
        allow_write: list[str],
        deny: list[str],
        home: str | None = None,
        own: list[str] = (),
    ):
        real = os.path.realpath
        self.root = real(root)
        self.home = real(home) if home else None
        # the kernel's own folders besides home (the student's lab exports): always allowed
        self.own = [real(p) for p in own]
        self.allow_read = [real(p) for p in allow_read]
        self.allow_write = [real(p) for p in allow_write]
        self.deny = [real(p) for p in deny]
        self.pid = os.getpid()

    def check_path(self, path, *, write: bool) -> None:
        if path is None or isinstance(path, int):
            return  # an already open file descriptor
        try:
            p = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return
        if self.home and _within(p, [self.home]):
            return  # the kernel's own scratch folder
        if _within(p, self.own):
            return  # this student's exports from earlier labs
        if _within(p, self.deny):
            raise PermissionError(f"the grader's sandbox does not allow access to {p}")
        m = _PROC_PID.match(p)
        if m and int(m.group(1)) not in (self.pid, os.getpid()):
            raise PermissionError(f"the grader's sandbox does not allow access to {p}")
        if _within(p, [self.root]):
            allowed = self.allow_write if write else self.allow_read + self.allow_write
            if not _within(p, allowed):
                what = "writing to" if write else "reading"
                raise PermissionError(f"the grader's sandbox does not allow {what} {p}")

    def check_address(self, address) -> None:
        if isinstance(address, tuple) and address and not _is_loopback(address[0]):
            raise PermissionError(
                f"the grader's sandbox blocks network access (connection to {address[0]!r})"
            )

    def audit(self, event: str, args: tuple) -> None:
        if event in _PROGRAM_EVENTS:
            raise PermissionError(
                f"the grader's sandbox does not allow starting programs ({event})"
            )
        if event == "open":
            path, mode, flags = args
            write = bool(mode and any(c in mode for c in "wax+")) or bool(
                mode is None and flags & _WRITE_FLAGS
            )
            self.check_path(path, write=write)
        elif event in _READ_PATH_EVENTS:
            self.check_path(args[0] if args else None, write=False)
        elif event in _WRITE_PATH_EVENTS:
            self.check_path(args[0] if args else None, write=True)
        elif event in _TWO_PATH_EVENTS:
            self.check_path(args[0], write=event in ("os.rename", "shutil.move"))
            self.check_path(args[1], write=True)
        elif event in ("socket.connect", "socket.sendto"):
            self.check_address(args[1])
        elif event in _RESOLVE_EVENTS:
            if not _is_loopback(args[0]):
                raise PermissionError(
                    f"the grader's sandbox blocks network access (name lookup of {args[0]!r})"
                )
        elif event == "ctypes.dlopen":
            name = args[0]
            if name is None or re.search(r"(^|/)libc[.-]", os.fsdecode(name)):
                raise PermissionError("the grader's sandbox does not allow loading the C library")


def install(policy: Policy) -> None:
    """Install ``policy`` as an audit hook (it cannot be removed afterwards)."""
    busy = threading.local()

    def hook(event: str, args: tuple) -> None:
        if getattr(busy, "on", False):
            return
        busy.on = True
        try:
            policy.audit(event, args)
        finally:
            busy.on = False

    sys.addaudithook(hook)


def set_limits(memory_mb: int | None, file_mb: int | None = 512) -> None:
    """Cap the address space at ``memory_mb`` MiB and written files at ``file_mb`` MiB."""
    import resource

    if memory_mb:
        cap = int(memory_mb * MiB)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    if file_mb:
        cap = int(file_mb * MiB)
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


TOKEN_PREFIX = "WORKBOOK-GRADER-OK-"
"""what the grader appends to a test cell's output (a line with it is never cut)"""
MAX_STREAM_CHARS = 1_000_000
"""characters a cell may print to stdout or stderr before the kernel drops the rest"""


def cap_streams(limit: int = MAX_STREAM_CHARS) -> None:
    """Make the kernel drop what a cell prints beyond ``limit`` characters per stream.

    A cell that prints in an endless loop would otherwise send gigabytes to the
    grader before its time limit. The grader's token line always goes through.
    IPython (9 and later) also keeps everything printed in its output history,
    in memory, for ``%history -y``: that copy is turned off.
    """
    import contextlib

    from ipykernel.iostream import OutStream
    from IPython.core.interactiveshell import InteractiveShell

    if hasattr(InteractiveShell, "_tee"):

        @contextlib.contextmanager
        def no_tee(self, channel):
            yield

        InteractiveShell._tee = no_tee

    write = OutStream.write
    used: dict[tuple, int] = {}

    def capped_write(self, string):
        if not isinstance(string, str):
            return write(self, string)
        key = (self.name, (self.parent_header or {}).get("msg_id"))
        n = used.get(key, 0)
        used[key] = n + len(string)
        if n + len(string) <= limit or TOKEN_PREFIX in string:
            return write(self, string)
        if n <= limit:  # the first write over the limit
            write(self, f"\n... [output beyond {limit:,} characters cut by the grader] ...\n")
        return len(string)

    OutStream.write = capped_write


def kernel_main() -> None:
    """Start an IPython kernel under the limits in ``$WORKBOOK_SANDBOX``."""
    config = json.loads(os.environ.pop(ENV_VAR, "{}") or "{}")
    # Run as a script, sys.path[0] is this folder; a kernel imports from its working folder.
    sys.path[0] = os.getcwd()
    from ipykernel.kernelapp import launch_new_instance

    cap_streams(config.get("max_stream_chars", MAX_STREAM_CHARS))

    if os.name == "posix":
        try:
            set_limits(config.get("memory_mb"), config.get("file_mb", 512))
        except (ValueError, OSError) as e:  # e.g. macOS refuses RLIMIT_AS
            print(
                f"grader sandbox: no rlimit ({e}); the memory watchdog still applies",
                file=sys.stderr,
            )
    if config.get("root"):
        install(
            Policy(
                config["root"],
                allow_read=config.get("allow_read", []),
                allow_write=config.get("allow_write", []),
                deny=config.get("deny", []),
                home=config.get("home"),
                own=config.get("own", []),
            )
        )
    launch_new_instance()


# ---------------------------------------------------------------- the grading worker
# The grader runs one worker process per submission: ``python sandbox.py --worker
# SPEC RESULT``. It starts the kernel above, runs the graded notebook cell by cell
# under a watchdog, and writes what happened to RESULT (JSON). It imports no
# ``utils`` module, so it starts quickly.


@dataclass
class Limits:
    """Limits for one submission's kernel."""

    cell_timeout: float = 600.0
    """seconds one cell may run before it is interrupted"""
    total_timeout: float = 1800.0
    """seconds the whole notebook may run"""
    memory_mb: int = 4096
    """address-space cap of the kernel (RLIMIT_AS) and resident-memory cap (MiB)"""
    fast: bool = False
    """run the kernel in FAST mode (``WORKBOOK_FAST=1``)"""


class _Watchdog(threading.Thread):
    """Interrupts a cell past its timeout; kills the kernel past the total time or memory."""

    def __init__(self, pid: int, limits: Limits, grace: float = 5.0):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.limits, self.grace = limits, grace
        self.deadline = time.monotonic() + limits.total_timeout
        self.cell: int | None = None
        self.cell_start = 0.0
        self.interrupted = False
        self.timed_out: set[int] = set()
        self.killed: str | None = None
        self.peak_mb = 0.0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def begin(self, index: int) -> None:
        with self.lock:
            self.cell, self.cell_start, self.interrupted = index, time.monotonic(), False

    def end(self) -> None:
        with self.lock:
            self.cell = None

    def _rss_mb(self) -> float:
        import psutil

        total = 0
        try:
            for p in [self.proc, *self.proc.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            return 0.0
        return total / 2**20

    def kill(self, reason: str) -> None:
        import psutil

        if self.killed is None:
            self.killed = reason
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            procs = [self.proc]
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass

    def run(self) -> None:
        while not self.stop.wait(0.1):
            rss = self._rss_mb()
            self.peak_mb = max(self.peak_mb, rss)
            now = time.monotonic()
            with self.lock:
                cell, start, interrupted = self.cell, self.cell_start, self.interrupted
            if self.killed:
                continue
            if rss > self.limits.memory_mb:
                self.kill("memory")
            elif now > self.deadline:
                self.kill("total timeout")
            elif cell is not None and now > start + self.limits.cell_timeout:
                if not interrupted:
                    self.timed_out.add(cell)
                    with self.lock:
                        self.interrupted = True
                    try:
                        os.kill(self.proc.pid, signal.SIGINT)
                    except OSError:
                        pass
                elif now > start + self.limits.cell_timeout + self.grace:
                    self.kill("timeout")  # the interrupt did not stop it


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
        if (used + n <= MAX_CELL_OUTPUT and cell_index not in self.cut) or display_id:
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


def run_worker(spec_path: Path) -> dict:
    """Run the graded notebook described by ``spec_path`` (JSON); return the result."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    nb = nbformat.from_dict(spec["notebook"])
    limits = Limits(**spec["limits"])
    private, home = Path(spec["private"]), Path(spec["home"])
    kdir = private / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, os.path.abspath(__file__), "-f", "{connection_file}"]
    env = spec["env"]
    kernel_json = {"argv": argv, "display_name": "grader sandbox", "language": "python", "env": env}
    (kdir / "kernel.json").write_text(json.dumps(kernel_json), encoding="utf-8")

    class SandboxKernelManager(AsyncKernelManager):
        def _kernel_spec_manager_default(self):
            return KernelSpecManager(kernel_dirs=[str(private / "kernels")])

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

    client = CappedClient(
        nb,
        kernel_manager_class=SandboxKernelManager,
        kernel_name=KERNEL_NAME,
        timeout=None,
        allow_errors=True,
        record_timing=False,
        startup_timeout=120,
        iopub_timeout=10,
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
        resources={"metadata": {"path": str(home)}},
        on_cell_executed=on_executed,
    )
    stopped: dict | None = None
    watchdog: _Watchdog | None = None
    start = time.monotonic()
    current = None
    try:
        with client.setup_kernel():
            watchdog = _Watchdog(client.km.provisioner.pid, limits)
            watchdog.start()
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                if watchdog.killed:
                    stopped = {"reason": watchdog.killed, "cell": i}
                    break
                watchdog.begin(i)
                current = i
                try:
                    client.execute_cell(cell, i)
                except DeadKernelError:
                    stopped = {"reason": watchdog.killed or "kernel died", "cell": i}
                    break
                finally:
                    watchdog.end()
                    cap.finish(cell, i)
    except Exception as e:  # noqa: BLE001 - report, never crash the whole run
        if stopped is None:
            message = f"{type(e).__name__}: {e}"
            if watchdog is None:  # the kernel never started: a problem of the grader
                stopped = {"reason": "error", "cell": None, "message": message}
            else:
                reason = watchdog.killed or "kernel died"
                stopped = {"reason": reason, "cell": current, "message": message}
    finally:
        if watchdog is not None:
            watchdog.stop.set()
            if client.km is not None and watchdog.proc.is_running():
                watchdog.kill("cleanup")
    return {
        "cells": [
            {"outputs": c.get("outputs", []), "reply": replies.get(i)}
            if c.cell_type == "code"
            else None
            for i, c in enumerate(nb.cells)
        ],
        "timed_out": sorted(watchdog.timed_out) if watchdog else [],
        "stopped": stopped,
        "seconds": time.monotonic() - start,
        "peak_mb": watchdog.peak_mb if watchdog else 0.0,
    }


def worker_main(spec: str, result: str) -> int:
    data = run_worker(Path(spec))
    tmp = Path(result).with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(result)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2], sys.argv[3]))
    kernel_main()
