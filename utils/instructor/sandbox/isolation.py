"""Operating-system isolation of a grading kernel: bubblewrap on Linux.

:func:`bwrap_command` wraps the kernel's command line so that it runs

- in new PID, network, IPC and UTS namespaces (no network at all, not even to the
  machine: the kernel talks to the grader over Unix sockets in its private folder);
- with a file system that holds only what a student has, read-only: the system's
  ``/usr`` (and the Python installation, wherever it lives), the workbook's
  student packages (:data:`utils.instructor.student.STUDENT_PACKAGES`, without
  ``utils/instructor``), the data cache, and the grader's kernel code; plus the
  submission's private writable folders (its working folder, its lab exports, the
  exchange folder). ``solutions/``, ``tests/``, ``.git``, other submissions, the
  grades and every other file of the machine do not exist in there;
- as an unprivileged user (a uid of its own per grading process when the grader runs as
  root; the grader's own user otherwise, inside a user namespace);
- and dies with its parent.

Where bubblewrap is missing (macOS, or Linux without the ``bubblewrap`` package)
:func:`available` says why, and the grader refuses to run unless told explicitly
that an unisolated run is acceptable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path


def sandbox_uid() -> int:
    """The user a sandbox runs as when the grader is root: one per grading process, so
    that one student's processes never count against another's process limit."""
    return 200_000 + os.getpid() % 100_000


ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "mime.types",
             "nsswitch.conf", "passwd", "group")  # fmt: skip
"""what a Python process reads of /etc (no secrets: /etc/shadow and friends stay out)"""


@lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """(True, "bubblewrap") when kernels can be isolated here, else (False, why not)."""
    if not sys.platform.startswith("linux"):
        return False, f"bubblewrap needs Linux (this is {sys.platform})"
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = bwrap_command(["/bin/true"], read_only=[], writable=[], cwd=Path("/"))
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"bubblewrap did not start ({e})"
    if done.returncode != 0:
        return False, f"bubblewrap cannot create a sandbox here: {done.stderr.strip()[:300]}"
    return True, "bubblewrap"


def _python_roots() -> list[Path]:
    """Folders of the running Python: the environment and the installation it comes from."""
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    exe = Path(sys.executable)
    roots.add(exe.resolve().parent.parent)  # e.g. /usr/local or ~/.pyenv/versions/3.11.7
    if str(exe.parent.parent) != str(exe.resolve().parent.parent):
        roots.add(exe.parent.parent.absolute())  # the venv whose bin/python links elsewhere
    return sorted(r for r in roots if r != Path("/") and not str(r).startswith("/usr/"))


def bwrap_command(
    argv: list[str],
    *,
    read_only: list[Path],
    writable: list[Path],
    cwd: Path,
    hidden: list[Path] = (),
    mounts: list[tuple[Path, str]] = (),
    env: dict[str, str] | None = None,
) -> list[str]:
    """``argv`` wrapped in bubblewrap (see the module docstring).

    ``read_only`` and ``writable`` folders appear at their own paths; ``hidden``
    folders (inside a read-only one) appear empty; ``mounts`` are read-only folders
    shown at another path (``(source, path inside)``). The environment is only ``env``.
    """
    cmd = [
        "bwrap",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--clearenv",
        "--hostname", "grader",
        "--ro-bind", "/usr", "/usr",
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
    ]  # fmt: skip
    for link in ("bin", "sbin", "lib", "lib64", "lib32"):
        target = Path("/") / link
        if target.is_symlink():
            cmd += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            cmd += ["--ro-bind", str(target), str(target)]
    cmd += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC_FILES:
        p = Path("/etc") / name
        if p.exists():
            cmd += ["--ro-bind", str(p), str(p)]
    made: set[str] = {"/", "/usr", "/tmp", "/etc", "/proc", "/dev"}

    def parents(p: Path) -> list[str]:
        out = []
        for parent in reversed(p.parents):
            s = str(parent)
            if s not in made:
                made.add(s)
                out += ["--perms", "0755", "--dir", s]
        return out

    for p in [*_python_roots(), *read_only]:
        p = Path(p)
        if p.exists() and not str(p).startswith("/usr/"):
            cmd += parents(p) + ["--ro-bind", str(p), str(p)]
            made.add(str(p))
    for p in hidden:
        cmd += ["--tmpfs", str(p)]
    for src, dest in mounts:
        cmd += parents(Path(dest)) + ["--ro-bind", str(src), str(dest)]
        made.add(str(dest))
    for p in writable:
        cmd += parents(Path(p)) + ["--bind", str(p), str(p)]
        made.add(str(p))
    cmd += ["--chdir", str(cwd)]
    for k, v in (env or {}).items():
        cmd += ["--setenv", k, v]
    if os.geteuid() == 0:
        # bubblewrap runs as root here: drop to nobody for the kernel itself.
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        cmd += [
            "--",
            setpriv, f"--reuid={sandbox_uid()}", f"--regid={sandbox_uid()}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
        ]  # fmt: skip
    else:
        cmd += ["--unshare-user", "--"]
    return cmd + list(argv)


def own_by_sandbox_user(*folders: Path) -> None:
    """Let the sandbox's user write ``folders`` (:func:`sandbox_uid` when the grader is root)."""
    if os.geteuid() != 0:
        return
    uid = sandbox_uid()
    for folder in folders:
        # never follow a link: a link planted by an earlier lab's kernel would hand any
        # file of the machine to nobody
        os.chown(folder, uid, uid, follow_symlinks=False)
        for dirpath, dirs, filenames in os.walk(folder):  # does not descend into links
            for name in dirs + filenames:
                os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)
