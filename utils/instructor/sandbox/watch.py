"""Watching a graded run: the watchdog (time per cell, total time, memory) and the cap
on what the grader keeps of a cell's outputs. Grader side."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

from . import protocol
from .limits import Limits


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
