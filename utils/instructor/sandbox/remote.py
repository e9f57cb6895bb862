"""The grader's side of the function server: tests run here, students' functions there.

A test cell of the lab runs in the grader's own process (the worker), in a
namespace made of the setup cell's imports and one :class:`RemoteFunction` per
name of the student's that the test uses. Calling it sends the arguments to the
sandboxed kernel through the data channel (:mod:`.protocol`), runs the student's
function there, and returns what came back: a value, or the exception the function
raised, or a violation of the lab's rules. The arguments are changed in place as
the function changed its copies, so a check sees exactly what a local call shows.

Check functions therefore work unchanged: in the student's notebook they call the
function itself, here they call its stand-in.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import itertools
import os
from collections.abc import Callable
from pathlib import Path

from utils.checks.core import CheckError

from . import protocol

MAX_REPLY = protocol.MAX_BYTES


class CallTimeout(BaseException):  # noqa: N818 - not an Exception: checks must not catch it
    """The student's function ran past the time limit of the test (it was interrupted)."""


class KernelDied(BaseException):  # noqa: N818
    """The kernel stopped while the student's function ran."""


class ServerError(BaseException):  # noqa: N818
    """The kernel did not answer the grader's request (its function server was changed or broken)."""


class RuleViolation(CheckError):  # noqa: N818
    """The student's function called into a module the lab forbids."""


RULE_WORDS = {
    "torch": "uses torch ({what}), which this lab does not allow (NumPy only)",
    "utils.checks": "calls the checks' own code ({what}), which graded functions may not use",
    "tracer": "changes the profiler ({what}), which graded functions may not do",
    "threads": "starts {what}, which graded functions may not do",
}


def rule_message(name: str, violations: list[dict]) -> str:
    """One sentence per forbidden module a function ``name`` used."""
    seen, parts = set(), []
    for v in violations:
        module = v.get("module", "?")
        if module in seen:
            continue
        seen.add(module)
        words = RULE_WORDS.get(module, "uses {module} ({what}), which this lab does not allow")
        parts.append(f"{name} " + words.format(module=module, what=v.get("what", "?")))
    return "; ".join(parts) + "."


class Channel:
    """Sends requests to one kernel: ``run(code)`` executes code there (the worker's
    function), ``exchange`` is the folder both sides see."""

    def __init__(self, run: Callable[[str], dict], exchange: Path):
        self._run = run
        self.exchange = Path(exchange)
        self._ids = itertools.count()

    def request(self, message: dict) -> dict:
        n = f"{os.getpid()}-{next(self._ids)}"
        req = self.exchange / f"request-{n}.bin"
        rep = self.exchange / f"reply-{n}.bin"
        req.write_bytes(protocol.encode(message))
        os.chmod(req, 0o644)
        try:
            status = self._run(f"__workbook_call__({n!r})")
            if status.get("interrupted"):
                raise CallTimeout()
            if status.get("dead"):
                raise KernelDied(status.get("why", "the kernel died"))
            if not rep.is_file():
                why = status.get("error") or "no reply"
                raise ServerError(f"the kernel did not answer the grader's call ({why})")
            if rep.stat().st_size > MAX_REPLY:
                raise ServerError("the kernel's reply was larger than the grader reads")
            data = rep.read_bytes()
        finally:
            for p in (req, rep):
                try:
                    p.unlink()
                except OSError:
                    pass
        try:
            return protocol.decode(data)
        except protocol.ChannelError as e:
            raise ServerError(f"the kernel's reply was not valid data ({e})") from None


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

    def __init__(self, channel: Channel, name: str, params: list[str], forbid: list[str]):
        self._channel, self.__name__, self.__qualname__ = channel, name, name
        self._forbid = list(forbid)
        self.__signature__ = inspect.Signature(
            [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in params]
        )
        self.calls = 0

    def __repr__(self) -> str:
        return f"<your function {self.__name__}>"

    def __call__(self, *args, **kwargs):
        self.calls += 1
        try:
            reply = self._channel.request(
                {
                    "call": self.__name__,
                    "args": list(args),
                    "kwargs": kwargs,
                    "forbid": self._forbid,
                }
            )
        except protocol.ChannelError as e:
            raise TypeError(
                f"the grader cannot send these arguments to {self.__name__}: {e}"
            ) from None
        if reply.get("violations"):
            raise RuleViolation("[FAIL] " + rule_message(self.__name__, reply["violations"]))
        if "error" in reply:
            raise _exception(reply["error"])
        pairs: dict = {}
        for orig, new in zip(args, reply.get("args", [])):
            protocol.sync_back(orig, new, pairs)
        for k, new in (reply.get("kwargs") or {}).items():
            if k in kwargs:
                protocol.sync_back(kwargs[k], new, pairs)
        return protocol.rebind(reply.get("value"), pairs)


def setup_imports(source: str) -> str:
    """The import statements of a setup cell (its magics and other code left out)."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    tree = ast.parse("\n".join(lines))
    keep = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    return ast.unparse(ast.Module(body=keep, type_ignores=[]))


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
    base: dict, source: str, channel: Channel, functions: set[str], forbid: list[str]
) -> dict:
    """``base`` (the setup imports) plus a stand-in for each of the student's
    ``functions`` (the exercises) that ``source`` uses. Nothing else of the student's
    kernel is reachable from a test: a test reading another name fails with NameError."""
    ns = dict(base)
    wanted = sorted(n for n in free_names(source) if n in functions and n not in ns)
    if not wanted:
        return ns
    kinds = channel.request({"describe": wanted}).get("kinds") or {}
    for name in wanted:
        kind = kinds.get(name)
        if isinstance(kind, dict) and kind.get("kind") == "function":
            params = [
                p for p in kind.get("params") or [] if isinstance(p, str) and p.isidentifier()
            ]
            ns[name] = RemoteFunction(channel, name, params, forbid)
        elif isinstance(kind, dict):
            ns[name] = f"<{name}: not a function in your notebook>"
    return ns
