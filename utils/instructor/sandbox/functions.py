"""The function server: where the grader calls a student's functions.

A plain Python process, started by the worker in its own sandbox (a second one,
next to the notebook's kernel), that talks to the grader over its standard input
and output (length-prefixed messages of :mod:`.protocol`; nothing else is read).
It builds the student's functions from source, the way the export of a lab is
built: the setup cell's imports (statement by statement, so an import the lab
forbids just fails), the lab's definition-only cells, and the student's exercise
cells and added cells, in notebook order. Then it answers ``describe`` and
``call`` requests.

The modules a lab forbids are not there at all: bubblewrap lays an empty folder
over their packages (``torch`` in a NumPy-only lab; the checks' code, ``utils/checks``,
in every lab), and an import of them fails with a sentence saying so. No watching,
nothing to switch off: code written to dodge a watcher finds nothing to import.
"""

from __future__ import annotations

import ast
import builtins
import importlib.abc
import json
import os
import struct
import sys
import time
import traceback

from . import policy, protocol

ENV_VAR = "WORKBOOK_SANDBOX"
HEADER = struct.Struct("<Q")


class _Forbidden(importlib.abc.MetaPathFinder):
    """Says which rule an import breaks (the package is not there anyway)."""

    def __init__(self, forbid: list[str]):
        self.forbid = forbid

    def find_spec(self, name, path=None, target=None):
        for p in self.forbid:
            if name == p or name.startswith(p + "."):
                raise ModuleNotFoundError(
                    f"No module named {name!r}: the functions this lab grades may not use {p}",
                    name=name,
                )
        return None


def _no_sockets(event: str, args: tuple) -> None:
    """The functions a lab grades compute; they talk to nobody (not even the notebook's
    kernel over a Unix socket)."""
    if event in ("socket.__new__", "socket.socketpair", "socket.fromfd"):
        raise PermissionError("the grader's function server allows no sockets")


def read_message(stream, limit: int = protocol.MAX_BYTES):
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (n,) = HEADER.unpack(head)
    if n > limit:
        raise protocol.ChannelError(f"a message of {n} bytes")
    data = stream.read(n)
    if len(data) < n:
        return None
    return data


def write_message(stream, data: bytes) -> None:
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def _error(e: BaseException, fn=None) -> dict:
    tb = e.__traceback__
    frames = traceback.extract_tb(tb) if tb is not None else []
    frames = [f for f in frames if not f.filename.endswith(("functions.py",))]
    stub = None
    if frames and fn is not None:
        last = frames[-1]
        if last.name != getattr(fn, "__name__", None) and not last.name.startswith("<"):
            stub = last.name
    return {
        "type": type(e).__name__,
        "builtin": type(e).__module__ == "builtins",
        "message": str(e)[:4000],
        "stub": stub,
        "trace": "".join(traceback.format_list(frames[-6:]))[-4000:],
    }


CELL_MAGICS_RUN = ("%%time", "%%timeit", "%%capture")
"""cell magics whose body is Python: the body is loaded without the magic"""


def python_of(source: str) -> str | None:
    """A notebook cell as plain Python: IPython's line magics (``%timeit ...``), shell
    lines (``!ls``) and help lines (``x?``) dropped; a ``%%time``-like first line dropped;
    None for a cell in another language (``%%bash``, ``%%writefile``, ...)."""
    lines = source.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first.startswith("%%"):
        if not first.startswith(CELL_MAGICS_RUN):
            return None
        lines = lines[[ln.strip() for ln in lines].index(first) + 1 :]
    keep = []
    for ln in lines:
        stripped = ln.strip()
        if stripped.startswith(("%", "!")) or (stripped.endswith("?") and "#" not in stripped):
            keep.append("")  # keep the line numbers
        else:
            keep.append(ln)
    return "\n".join(keep)


def run_statements(ns: dict, source: str, label: str, *, independent: bool = False) -> str | None:
    """Run ``source`` statement by statement. A statement that fails only because the
    function server is not the notebook (an import the lab forbids here, a name from a cell
    it does not load) is skipped; any other error stops the cell, as in the notebook, unless
    the statements are ``independent`` (the setup's imports: one that cannot run here, for
    whatever reason, leaves the others to run). Returns what failed first, or None."""
    first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")[:60]
    code = python_of(source)
    if code is None:
        return None
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        return f"the cell `{first}` has a syntax error: {e.msg} (line {e.lineno})"
    failed = None
    for node in tree.body:
        try:
            exec(compile(ast.Module(body=[node], type_ignores=[]), label, "exec"), ns)  # noqa: S102
        except BaseException as e:  # noqa: BLE001 - the student's statement failed
            if isinstance(e, KeyboardInterrupt):
                raise
            failed = failed or f"the cell `{first}` raised {type(e).__name__}: {e}"
            if not (independent or isinstance(e, ImportError | NameError)):
                break  # as in the notebook: the rest of the cell never ran
            # An import of a module the lab forbids, or a name from a cell the server
            # does not load: it worked in the notebook, so the definitions after it count.
    return failed


def load(ns: dict, setup: str, sources: list[str]) -> list[str]:
    """Run the setup imports (one the lab forbids fails, as it should), then ``sources``,
    each statement on its own; returns which of the sources failed, and why."""
    run_statements(ns, "\n".join(
        ast.unparse(n) for n in setup_imports(setup)
    ), "<setup>", independent=True)  # fmt: skip
    failed = []
    for i, source in enumerate(sources):
        why = run_statements(ns, source, f"<cell {i}>")
        if why:
            failed.append(why)
    return failed


def setup_imports(setup: str) -> list:
    """The import statements of a setup cell, as AST nodes (its magics and other code left out)."""
    code = python_of(setup) or ""
    try:
        return [n for n in ast.parse(code).body if isinstance(n, ast.Import | ast.ImportFrom)]
    except SyntaxError:
        return []


def answer(ns: dict, message: dict) -> dict:
    if "describe" in message:
        kinds = {}
        for name in message["describe"]:
            if not isinstance(name, str) or name not in ns:
                kinds[name] = None
            elif callable(ns[name]):
                import inspect

                try:
                    params = list(inspect.signature(ns[name]).parameters)
                except (TypeError, ValueError):
                    params = []
                kinds[name] = {"kind": "function", "params": params}
            else:
                kinds[name] = {"kind": "value"}
        return {"kinds": kinds}
    name, args, kwargs = message["call"], message.get("args", []), message.get("kwargs", {})
    fn = ns.get(name)
    start = time.perf_counter()
    try:
        if not callable(fn):
            raise NameError(f"name {name!r} is not defined")
        value = fn(*args, **kwargs)
        reply = {"args": list(args), "kwargs": kwargs, "value": value}
    except BaseException as e:  # noqa: BLE001 - everything is reported to the grader
        if isinstance(e, SystemExit):
            e = RuntimeError(f"the function called exit({e.code})")
        reply = {"error": _error(e, fn)}
    reply["seconds"] = time.perf_counter() - start
    return reply


def main() -> None:
    config = json.loads(os.environ.pop(ENV_VAR, "{}") or "{}")
    # The protocol owns the real stdin/stdout; what the student prints goes nowhere.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    sys.path.insert(0, os.getcwd())
    policy.apply(config)  # the watchdog covers memory where rlimits are refused
    forbid = config.get("forbid", [])
    sys.meta_path.insert(0, _Forbidden(forbid))
    sys.addaudithook(_no_sockets)
    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in forbid):
            del sys.modules[name]
    ns: dict = {"__name__": "__main__", "__builtins__": builtins}
    while True:
        data = read_message(proto_in)
        if data is None:
            return
        try:
            message = protocol.decode(data)
            if "load" in message:
                reply = {"failed": load(ns, message.get("setup", ""), message["load"])}
                reply["failed"] = reply["failed"][:20]
            else:
                reply = answer(ns, message)
        except KeyboardInterrupt:
            reply = {"error": {"type": "KeyboardInterrupt", "builtin": True, "message": "",
                               "stub": None, "trace": ""}}  # fmt: skip
        try:
            out = protocol.encode(reply)
        except protocol.ChannelError as e:
            what = "it returned" if "value" in reply else "its arguments hold"
            out = protocol.encode(
                {
                    "error": {
                        "type": "ChannelError",
                        "builtin": False,
                        "message": f"{what} {e}",
                        "stub": None,
                        "trace": "",
                    }
                }  # fmt: skip
            )
        write_message(proto_out, out)


if __name__ == "__main__":
    main()
