"""The grader's side of the function server: tests run here, students' functions there.

A test cell of the lab runs in the grader's own process (the worker), in a
namespace made of the setup cell's imports and one :class:`RemoteFunction` per
exercise function the test uses. Calling it sends the arguments to the student's
function server (:mod:`.functions`, a sandboxed process without the modules the
lab forbids) through the data channel of :mod:`.protocol` (over a pipe), runs the
function there and returns what came back: a value, or the exception it raised.
The arguments are changed in place as the function changed its copies, so a check
sees exactly what a local call shows.

Check functions therefore work unchanged: in the student's notebook they call the
function itself, here they call its stand-in.

A lab that grades what the notebook trained names the functions that need the
kernel's state (``workbook.kernel_functions``): their stand-ins call into the
notebook's kernel instead (:class:`KernelCalls`, :mod:`.kcall`), with the same data
channel and the same verdict rules.
"""

from __future__ import annotations

import ast
import base64
import builtins
import inspect
import os
import select
import struct
import subprocess
import time
from pathlib import Path

from . import functions, kcall, protocol

MAX_REPLY = protocol.MAX_BYTES
HEADER = struct.Struct("<Q")  # the length of each message, as functions.py writes it


class CallTimeout(BaseException):  # noqa: N818 - not an Exception: checks must not catch it
    """The student's function ran past the time limit of the test (it was interrupted)."""


class KernelDied(BaseException):  # noqa: N818
    """The process running the student's functions stopped while one ran."""


class ServerError(BaseException):  # noqa: N818
    """The function server's reply could not be read (the student's code wrote into it)."""


RULE_WORDS = {
    "torch": "uses torch ({what}), which this lab does not allow (NumPy only)",
    "utils.checks": "calls the checks' own code ({what}), which graded functions may not use",
}
"""how the feedback says that an exercise uses a module its lab forbids"""


class FunctionServer:
    """The student's functions in their own sandboxed process (:mod:`.functions`).

    ``sources``: ``(index, code)`` of the cells that define them, in notebook order;
    before the test at ``index``, :meth:`advance` loads the cells above it (as the
    notebook would have run them). Started on the first request; restarted, and
    loaded again, on the next request after a call that ran past its time (killed)
    or crashed the process. ``deadline`` (``time.monotonic()``) bounds every request
    until it is changed: the test cell's time limit.
    """

    def __init__(
        self,
        argv: list[str],
        env: dict | None,
        cwd: Path,
        setup: str,
        sources: list,
        log: Path,
        load_budget=None,
    ):
        self.argv, self.env, self.cwd, self.log = argv, env, cwd, log
        # seconds loading cells [start, stop) may take (default: no limit but ``deadline``)
        self.load_budget = load_budget
        self.setup, self.sources = setup, [(int(i), str(code)) for i, code in sources]
        self.proc: subprocess.Popen | None = None
        self.deadline = float("inf")
        self.position = 0  # cells above this index are (to be) loaded
        self.failed: list[str] = []
        self.starts = 0

    def _codes(self, start: int, stop: int) -> list[str]:
        return [code for i, code in self.sources if start <= i < stop]

    def _start(self) -> None:
        self.starts += 1
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                env=self.env, cwd=self.cwd,
            )  # fmt: skip
        load = {"load": self._codes(0, self.position), "setup": self.setup}
        self.failed = self._loading(0, self.position, load)

    def advance(self, position: int) -> None:
        """Load the cells above ``position`` (a test's index) that are not loaded yet."""
        before, self.position = self.position, max(self.position, position)
        if self.proc is not None and self.proc.poll() is None and self.position > before:
            message = {"load": self._codes(before, self.position)}
            self.failed += self._loading(before, self.position, message)

    def _loading(self, start: int, stop: int, message: dict) -> list[str]:
        """Send a load message under its own time budget (the cells' run time in the
        kernel, times the factor), not the test's: a slow cell of the student's costs
        loading it, not the test that follows."""
        test_deadline = self.deadline
        if self.load_budget is not None:
            self.deadline = time.monotonic() + self.load_budget(start, stop)
        try:
            return self._exchange(message).get("failed") or []
        finally:
            self.deadline = test_deadline

    def close(self) -> None:
        if self.proc is not None:
            protocol.kill_tree(self.proc.pid)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self.proc = None

    def ensure_started(self) -> None:
        """Start (and load) the server if it is not running."""
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()

    def request(self, message: dict) -> dict:
        self.ensure_started()
        return self._exchange(message)

    def _read(self, n: int) -> bytes:
        fd, chunks, got = self.proc.stdout.fileno(), [], 0
        while got < n:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise CallTimeout()
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                self.close()
                raise KernelDied("the Python process running your functions stopped")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _exchange(self, message: dict) -> dict:
        data = protocol.encode(message)
        try:
            self.proc.stdin.write(HEADER.pack(len(data)) + data)
            self.proc.stdin.flush()
        except OSError:
            self.close()
            raise KernelDied("the Python process running your functions stopped") from None
        (n,) = HEADER.unpack(self._read(HEADER.size))
        if n > MAX_REPLY:
            self.close()
            raise ServerError("the reply was larger than the grader reads")
        try:
            return protocol.decode(self._read(n))
        except protocol.ChannelError as e:
            self.close()
            raise ServerError(f"the reply was not valid data ({e})") from None


def _exception(error: dict) -> BaseException:
    """A local exception standing for ``error`` (raised in the kernel)."""
    name, message = str(error.get("type", "Exception")), str(error.get("message", ""))
    if name == "KeyboardInterrupt":
        return CallTimeout()
    cls = getattr(builtins, name, None) if error.get("builtin") else None
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            e = cls(message)
        except Exception:  # noqa: BLE001 - exception types with other signatures
            e = RuntimeError(f"{name}: {message}")
    else:
        e = RuntimeError(f"{name}: {message}")
    e.remote_stub = error.get("stub")  # the unfinished helper a NotImplementedError came from
    e.remote_trace = error.get("trace", "")
    return e


class RemoteFunction:
    """Stands for the student's function ``name``, which lives in the sandboxed kernel."""

    carries_autograd = False
    """what it returns is data: a tensor comes back without the graph that made it
    (a check reads this through :func:`utils.checks.engine.keeps_graph`)"""

    def __init__(self, server: FunctionServer | KernelCalls, name: str, params: list[str]):
        self._server, self.__name__, self.__qualname__ = server, name, name
        self.__signature__ = inspect.Signature(
            [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in params]
        )
        self.calls = 0

    def __repr__(self) -> str:
        return f"<your function {self.__name__}>"

    def __call__(self, *args, **kwargs):
        self.calls += 1
        message = {"call": self.__name__, "args": list(args), "kwargs": kwargs}
        try:
            reply = self._server.request(message)
        except protocol.ChannelError as e:
            raise TypeError(
                f"the grader cannot send these arguments to {self.__name__}: {e}"
            ) from None
        if "error" in reply:
            raise _exception(reply["error"])
        pairs: dict = {}
        for orig, new in zip(args, reply.get("args", [])):
            protocol.sync_back(orig, new, pairs)
        for k, new in (reply.get("kwargs") or {}).items():
            if k in kwargs:
                protocol.sync_back(kwargs[k], new, pairs)
        return protocol.rebind(reply.get("value"), pairs)


class KernelCalls:
    """Calls the student's functions in the notebook's kernel (``kernel_functions``).

    ``execute(code)`` runs ``code`` in the kernel (the worker resumes it for the call,
    under the test's deadline) and returns the outputs, or raises :class:`CallTimeout`
    or :class:`KernelDied`. The request travels as base64 in the code, the reply as one
    display output of type :data:`.kcall.MIME`; both are :mod:`.protocol` data, and the
    reply is decoded here as data only (the kernel is the student's: it may answer
    anything, so it is read like any reply of the function server).
    """

    def __init__(self, execute, package: str):
        self.execute, self.package = execute, package

    def request(self, message: dict) -> dict:
        request = base64.b64encode(protocol.encode(message)).decode("ascii")
        module = f"{self.package}.kcall"
        outputs = self.execute(f"__import__({module!r}, fromlist=['serve']).serve({request!r})")
        for out in outputs:
            raw = (out.get("data") or {}).get(kcall.MIME)
            if raw is None:
                continue
            if not isinstance(raw, str) or len(raw) > 4 * (MAX_REPLY // 3 + 1):
                raise ServerError("the kernel's reply was not valid data (too large)")
            try:
                return protocol.decode(base64.b64decode(raw, validate=True))
            except (ValueError, protocol.ChannelError) as e:
                raise ServerError(f"the kernel's reply was not valid data ({e})") from None
        error = next((o for o in outputs if o.get("output_type") == "error"), None)
        if error is not None and error.get("ename") == "KeyboardInterrupt":
            raise CallTimeout()
        why = f"{error.get('ename')}: {error.get('evalue')}" if error else "no reply"
        raise ServerError(f"the kernel did not answer the grader's call ({why})")


def setup_imports(source: str) -> str:
    """The import statements of a setup cell, as code (its magics and other code left out)."""
    return ast.unparse(ast.Module(body=functions.setup_imports(source), type_ignores=[]))


def free_names(source: str) -> set[str]:
    """Names a test cell reads that it does not assign itself."""
    tree = ast.parse(source)
    loaded, stored = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else stored).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            stored.add(node.name)
        elif isinstance(node, ast.arg):
            stored.add(node.arg)
    return loaded - stored


def test_namespace(
    base: dict,
    source: str,
    server: FunctionServer,
    functions: set[str],
    kernel: KernelCalls | None = None,
    kernel_functions: set[str] = frozenset(),
) -> dict:
    """``base`` (the setup imports) plus a stand-in for each of the student's
    ``functions`` (the exercises) that ``source`` uses: called in the function server,
    or in the notebook's kernel for ``kernel_functions``. Nothing else of the student's
    kernel is reachable from a test: a test reading another name fails with NameError."""
    ns = dict(base)
    names = free_names(source) - set(ns)
    for where, allowed in ((server, functions - set(kernel_functions)), (kernel, kernel_functions)):
        wanted = sorted(names & set(allowed))
        if not wanted or where is None:
            continue
        kinds = where.request({"describe": wanted}).get("kinds") or {}
        for name in wanted:
            kind = kinds.get(name) if isinstance(kinds, dict) else None
            if isinstance(kind, dict) and kind.get("kind") == "function":
                params = [
                    p for p in kind.get("params") or [] if isinstance(p, str) and p.isidentifier()
                ]
                ns[name] = RemoteFunction(where, name, params)
            elif isinstance(kind, dict):
                ns[name] = f"<{name}: not a function in your notebook>"
    return ns


def is_definitions(source: str) -> bool:
    """True for a cell that only defines things (functions, classes, imports, constants):
    the lab's helper cells the function server loads with the student's code."""
    try:
        tree = ast.parse(functions.python_of(source) or "")
    except SyntaxError:
        return False

    def constant(node) -> bool:
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return all(constant(e) for e in node.elts)
        if isinstance(node, ast.UnaryOp):
            return constant(node.operand)
        return False

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            if constant(node.value):
                continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        return False
    return bool(tree.body)


def function_sources(
    cells: list, exercises: set[int], lab_cells: set[int], tests: set[int]
) -> list:
    """``(index, source)`` of what the function server loads, in notebook order: the
    exercise cells, the cells that are not the lab's (the student added them), and the
    lab's own cells that only define things. ``cells``: the notebook's cells."""
    out = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code" or i in tests:
            continue
        if i in exercises or i not in lab_cells or is_definitions(cell.get("source", "")):
            out.append((i, cell.get("source", "")))
    return out
