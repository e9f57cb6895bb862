"""What a sandboxed process may do: limits, file and network policy.

Runs inside the sandbox, before any student code (:mod:`.kernel`, :mod:`.functions`);
standard library only.

- :func:`set_limits`: address space (``RLIMIT_AS``: an allocation beyond the cap raises
  ``MemoryError``), written file size, processes, no core dumps;
- :class:`Policy` + :func:`install`: an audit hook (:func:`sys.addaudithook`, which
  cannot be removed) refusing, with ``PermissionError``, reads and writes in the
  workbook outside what a student has, other processes' ``/proc`` entries, network
  connections and name lookups off the loopback interface, starting programs and
  loading the C library through ``ctypes``. Under bubblewrap (:mod:`.isolation`)
  the file system and the network are cut off by the operating system already; the
  hook is the second line, and the only one where bubblewrap is missing;
- :func:`cap_streams`: what a cell prints beyond ``MAX_STREAM_CHARS`` is dropped.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import threading

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
    "os.fork",
    "os.forkpty",
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


def set_limits(
    memory_mb: int | None, file_mb: int | None = 512, processes: int | None = None
) -> None:
    """Cap the address space at ``memory_mb`` MiB, written files at ``file_mb`` MiB and
    the number of processes (and threads) of the user at ``processes``."""
    import resource

    if memory_mb:
        cap = int(memory_mb * MiB)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    if file_mb:
        cap = int(file_mb * MiB)
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
    if processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


MAX_STREAM_CHARS = 1_000_000
"""characters a cell may print to stdout or stderr before the kernel drops the rest"""


def cap_streams(limit: int = MAX_STREAM_CHARS) -> None:
    """Make the kernel drop what a cell prints beyond ``limit`` characters per stream.

    A cell that prints in an endless loop would otherwise send gigabytes to the
    grader before its time limit.
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
        if n + len(string) <= limit:
            return write(self, string)
        if n <= limit:  # the first write over the limit
            write(self, f"\n... [output beyond {limit:,} characters cut by the grader] ...\n")
        return len(string)

    OutStream.write = capped_write


def apply(config: dict) -> str | None:
    """Apply the limits and the policy of ``config`` (the ``$WORKBOOK_SANDBOX`` JSON) to this
    process; returns why the resource limits could not be set (e.g. macOS refuses
    ``RLIMIT_AS``), else None. Used by the kernel and the function server alike."""
    why = None
    if os.name == "posix":
        try:
            set_limits(config.get("memory_mb"), config.get("file_mb", 512), config.get("processes"))
        except (ValueError, OSError) as e:
            why = str(e)
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
    return why
