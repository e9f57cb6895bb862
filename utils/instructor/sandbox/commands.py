"""The command lines of the sandboxed processes: the notebook's kernel and the function
server, with what each may see (:mod:`.isolation`) and its environment. Grader side."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import isolation
from .limits import Limits

PACKAGE_DIR = Path(__file__).resolve().parent
MOUNT = "/opt/workbook-grader"
"""where the kernel's code appears inside bubblewrap (as the package ``wbsandbox``)"""


RELATED = {"torch": ("functorch", "torchgen")}
"""packages that come with a forbidden one and are hidden with it"""


def forbidden_dirs(forbid: list[str]) -> list[Path]:
    """The folders (or, for a module of ``utils``, the file) to hide so that the modules
    ``forbid`` names are not there at all: bubblewrap lays an empty folder over a folder,
    the audit policy refuses to open a file."""
    import importlib.util

    from utils.env import ROOT

    dirs = []
    for name in forbid:
        if name.startswith("utils."):  # one module of the course's own package, not all of utils
            path = ROOT.joinpath(*name.split("."))
            if path.is_dir():
                dirs.append(path)
            else:  # the source and the bytecode Python caches of it
                source = path.with_suffix(".py")
                dirs += [source, Path(importlib.util.cache_from_source(str(source)))]
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
        "TMPDIR": str(home),  # tempfile (dill: torch imports it) needs a writable folder
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
        hidden=[ROOT / d for d in INSTRUCTOR_ONLY]
        + ([d for d in forbidden_dirs(forbid) if d.is_dir()] if functions else []),
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
