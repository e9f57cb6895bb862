"""The sandboxed kernel: an IPython kernel under the grader's limits, with a function server.

Started by the worker as ``python -m <package>.kernel -f {connection_file}`` (inside
bubblewrap the package is mounted read-only on its own, away from the workbook).
Before IPython starts it reads its configuration from ``$WORKBOOK_SANDBOX`` (JSON,
then removed from the environment), applies the limits and the policy of
:mod:`.policy`, and puts :func:`serve` in ``builtins`` as ``__workbook_call__``.

The grader never runs a test in here. To test a student's function it writes a
request (the function's name and the arguments, through the data channel of
:mod:`.protocol`) to a file, asks the kernel to run ``__workbook_call__(ID)``, and
reads the reply file: the value returned, the arguments as the function left them,
the error if one was raised, and the calls into modules the lab forbids. References,
expected values and labels never enter the kernel.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import time
import traceback

from . import policy, protocol

ENV_VAR = "WORKBOOK_SANDBOX"
_CONFIG: dict = {}


def _user_ns() -> dict:
    from IPython import get_ipython

    ip = get_ipython()
    return ip.user_ns if ip is not None else {}


def _error(e: BaseException, fn=None) -> dict:
    """What the grader learns of an exception: its type, message and where it came from."""
    tb = e.__traceback__
    frames = traceback.extract_tb(tb) if tb is not None else []
    stub = None
    if frames and fn is not None:
        last = frames[-1]
        if last.name != getattr(fn, "__name__", None) and not last.name.startswith("<"):
            stub = last.name
    cause = e.__cause__ or e.__context__
    return {
        "type": type(e).__name__,
        "builtin": type(e).__module__ == "builtins",
        "message": str(e)[:4000],
        "stub": stub,
        "cause": type(cause).__name__ if cause is not None else None,
        "trace": "".join(traceback.format_list(frames[-6:]))[-4000:],
    }


def serve(request_id: str) -> None:
    """Answer the grader's request ``request_id`` (see the module docstring)."""
    folder = _CONFIG.get("exchange") or os.getcwd()
    request = os.path.join(folder, f"request-{request_id}.bin")
    reply_path = os.path.join(folder, f"reply-{request_id}.bin")
    with open(request, "rb") as f:
        message = protocol.decode(f.read())
    reply: dict = {}
    ns = _user_ns()
    if "describe" in message:
        kinds = {}
        for name in message["describe"]:
            if not isinstance(name, str) or name not in ns:
                kinds[name] = None
                continue
            obj = ns[name]
            if callable(obj):
                import inspect

                try:
                    params = list(inspect.signature(obj).parameters)
                except (TypeError, ValueError):
                    params = []
                kinds[name] = {"kind": "function", "params": params}
            else:
                kinds[name] = {"kind": "value"}
        reply = {"kinds": kinds}
    else:
        name, args, kwargs = message["call"], message.get("args", []), message.get("kwargs", {})
        fn = ns.get(name)
        tracer = policy.RuleTracer(message.get("forbid", []))
        start = time.perf_counter()
        try:
            if not callable(fn):
                raise NameError(f"name {name!r} is not defined")
            value = tracer.run(fn, *args, **kwargs)
            reply = {"args": list(args), "kwargs": kwargs, "value": value}
        except BaseException as e:  # noqa: BLE001 - everything is reported to the grader
            reply = {"error": _error(e, fn)}
        reply["seconds"] = time.perf_counter() - start
        reply["violations"] = tracer.violations
    try:
        data = protocol.encode(reply)
    except protocol.ChannelError as e:
        what = (
            "its arguments hold"
            if "value" not in reply or _encodes(reply["value"])
            else "it returned"
        )
        data = protocol.encode(
            {
                "error": {
                    "type": "ChannelError",
                    "builtin": False,
                    "message": f"{what} {e}",
                    "stub": None,
                    "cause": None,
                    "trace": "",
                },
                "violations": reply.get("violations", []),
            }
        )
    tmp = reply_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, reply_path)


def _encodes(value) -> bool:
    try:
        protocol.encode({"v": value})
        return True
    except protocol.ChannelError:
        return False


def main() -> None:
    """Start an IPython kernel under the limits in ``$WORKBOOK_SANDBOX``."""
    config = json.loads(os.environ.pop(ENV_VAR, "{}") or "{}")
    _CONFIG.update(config)
    # A kernel imports from its working folder first, as Jupyter's own does.
    sys.path.insert(0, os.getcwd())
    from ipykernel.kernelapp import launch_new_instance

    policy.cap_streams(config.get("max_stream_chars", policy.MAX_STREAM_CHARS))
    if os.name == "posix":
        try:
            policy.set_limits(
                config.get("memory_mb"), config.get("file_mb", 512), config.get("processes")
            )
        except (ValueError, OSError) as e:  # e.g. macOS refuses RLIMIT_AS
            print(
                f"grader sandbox: no rlimit ({e}); the memory watchdog still applies",
                file=sys.stderr,
            )
    if config.get("root"):
        policy.install(
            policy.Policy(
                config["root"],
                allow_read=config.get("allow_read", []),
                allow_write=config.get("allow_write", []),
                deny=config.get("deny", []),
                home=config.get("home"),
                own=config.get("own", []),
            )
        )
    builtins.__workbook_call__ = serve
    launch_new_instance()


if __name__ == "__main__":
    main()
