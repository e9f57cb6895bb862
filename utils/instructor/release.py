"""Build the student bundle: ``make release [OUT=release]``.

The bundle is the workbook as a student needs it (``notebooks/``, ``labs/``,
``utils/``, ``data/README.md``, the environment files, the Makefile and the
README) and nothing an instructor keeps to themselves:

- left out: ``solutions/``, ``tests/``, ``bench/``, ``.ci/``, ``CONTRIBUTING.md``
  and ``utils/instructor/`` (the generator and grader hold no answers, but a
  student has no use for them, and ``make labs`` without ``solutions/`` would
  remove the labs), except ``make check`` and its sandbox (``STUDENT_TOOLS``);
- the bundle's README drops the blocks fenced by ``<!-- instructor-only -->`` and
  ``<!-- /instructor-only -->`` (tests, grading, maintenance);
- the bundle's Makefile keeps the student targets (``env``, ``lab``, ``lint``,
  ``format``, ``data``, ``clean``) and drops the ones that need what was left out.

The files are those git tracks or would track (``git ls-files --cached --others
--exclude-standard``), so ignored caches, data and checkpoints stay out. After
copying, every text file and every notebook cell and output of the bundle is
scanned for the solution code (between ``# BEGIN SOLUTION`` and ``# END
SOLUTION``), hidden tests (between the hidden-test fences) and written answers
of ``solutions/``: any line of 30 characters or more (20 for hidden tests), and
any two consecutive lines, whitespace ignored. One match stops the release and
names the file, the line and where it comes from. Shorter lone lines (a generic
``for t in range(T):``) are not searched for: they also appear in honest teaching
code.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat

from utils.env import ROOT
from utils.instructor import labgen
from utils.instructor.notebook import HIDDEN, SOLUTION, fenced_lines, is_exercise
from utils.instructor.student import is_instructor_only

MARKER = ".workbook-release"
EXCLUDED_DIRS = (
    "solutions",
    "tests",
    "bench",
    ".ci",
    ".github",
    "grades",
    "exports",
)
EXCLUDED_FILES = ("CONTRIBUTING.md",)
INSTRUCTOR_TARGETS = {"test", "test-ui", "labs", "modules", "execute", "grade", "release", "bench"}
MIN_SECRET_CHARS = {"solution": 30, "hidden test": 20, "written answer": 30}
_SPACE = re.compile(r"\s+")
_IMPORT = re.compile(r"^(import|from)\s+[\w.]+(\s+import\s+.*)?(\s+as\s+\w+)?$")


class ReleaseError(RuntimeError):
    """The bundle could not be built, or it would contain a solution."""


def normalize(line: str) -> str:
    return _SPACE.sub(" ", line.strip())


def secret_lines(solutions_dir: Path = labgen.SOLUTIONS_DIR) -> dict:
    """What must not leave the instructor: normalized solution code, hidden tests and
    written answers of every notebook in ``solutions_dir``, mapped to their origin.

    Keys are single lines of at least ``MIN_SECRET_CHARS[kind]`` characters and pairs
    ``(line, next line)`` of consecutive lines (so a generic ``for t in range(T):``
    alone is not a leak, but followed by the solution's next line it is). Lines
    the starter lab shows anyway and imports are not secrets.
    """
    secrets: dict = {}
    for path in labgen.solution_paths(solutions_dir):
        nb = nbformat.read(path, as_version=4)
        starter = labgen.strip_solutions(nb, path)
        public = {normalize(ln) for c in starter.cells for ln in c.source.splitlines()}
        for i, cell in enumerate(nb.cells):
            blocks: list[tuple[list[str], str]] = []
            if cell.cell_type == "code":
                blocks.append((fenced_lines(cell.source, SOLUTION), "solution"))
                blocks.append((fenced_lines(cell.source, HIDDEN), "hidden test"))
            elif is_exercise(cell):
                blocks.append((cell.source.splitlines(), "written answer"))
            for block, kind in blocks:
                origin = f"{path.name}, cell {i} ({kind})"
                lines = [normalize(ln) for ln in block if normalize(ln)]
                lines = [ln for ln in lines if ln not in public and not _IMPORT.match(ln)]
                for ln in lines:
                    if len(ln) >= MIN_SECRET_CHARS[kind]:
                        secrets.setdefault(ln, origin)
                for pair in zip(lines, lines[1:]):
                    secrets.setdefault(pair, origin)
    return secrets


def _text_lines(path: Path) -> list[str] | None:
    """The lines a person could read in ``path`` (cells and outputs of a notebook)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if path.suffix == ".ipynb":
        try:
            nb = json.loads(text)
        except json.JSONDecodeError:
            return text.splitlines()
        lines = []
        for cell in nb.get("cells", []):
            src = cell.get("source", "")
            lines += ("".join(src) if isinstance(src, list) else src).splitlines()
            for out in cell.get("outputs", []):
                texts = [out.get("text", "")]
                texts += [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
                texts += out.get("traceback", [])
                for t in texts:
                    lines += ("".join(t) if isinstance(t, list) else str(t)).splitlines()
        return lines
    return text.splitlines()


def scan(bundle: Path, secrets: dict) -> list[str]:
    """Every place in ``bundle`` where a secret appears (empty when clean)."""
    problems = []
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle)
        if rel.parts[0] == "solutions":
            problems.append(f"{rel}: the bundle contains solutions/")
        numbered = [(n, normalize(ln)) for n, ln in enumerate(_text_lines(path) or [], start=1)]
        numbered = [(n, ln) for n, ln in numbered if ln]
        for k, (n, line) in enumerate(numbered):
            origin = secrets.get(line)
            if origin is None and k + 1 < len(numbered):
                origin = secrets.get((line, numbered[k + 1][1]))
            if origin:
                problems.append(f"{rel}:{n}: {line!r} comes from {origin}")
    return problems


def tracked_files(root: Path = ROOT) -> list[Path]:
    """Files git tracks or would track (not ignored), relative to ``root``."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise ReleaseError(f"cannot list the workbook's files with git in {root}: {e}") from e
    return sorted(Path(p) for p in out.decode().split("\0") if p and (root / p).is_file())


def is_included(rel: Path) -> bool:
    s = rel.as_posix()
    if rel.name in EXCLUDED_FILES and len(rel.parts) == 1:
        return False
    return not any(s == d or s.startswith(d + "/") for d in EXCLUDED_DIRS) and not (
        is_instructor_only(rel)
    )


STUDENT_HEADER = (
    "# RNN workbook, student bundle. `make lab` opens the workbook (it creates the\n"
    "# environment, .venv pinned by requirements.txt, when missing); `make help` lists the rest."
)


def student_makefile(text: str) -> str:
    """The Makefile without the targets that need instructor material.

    Also gone: the opening comment when it names an instructor target (replaced by
    :data:`STUDENT_HEADER`), and the variables only those targets used, with the
    comment lines just above them.
    """
    lines = text.splitlines()
    head = 0
    while head < len(lines) and lines[head].startswith("#"):
        head += 1
    if any(f"make {t}" in line for line in lines[:head] for t in INSTRUCTOR_TARGETS):
        lines = STUDENT_HEADER.splitlines() + lines[head:]
    kept = _without_targets(lines)
    return "\n".join(_without_unused_variables(kept, used_before=lines)) + "\n"


_VARIABLE = re.compile(r"^([A-Z][A-Z0-9_]*)\s*(:=|\?=|=|\+=)")


def _uses(lines: list[str], name: str, skip: range = range(0)) -> bool:
    rest = "\n".join(ln for k, ln in enumerate(lines) if k not in skip)
    return f"$({name})" in rest or f"${{{name}}}" in rest


def _without_unused_variables(lines: list[str], used_before: list[str]) -> list[str]:
    """Drop ``NAME := ...`` definitions (and continuation and comment lines above)
    that ``used_before`` (the whole Makefile) refers to but ``lines`` no longer does;
    variables make itself reads (``SHELL``, ...) are never referred to and stay."""
    blocks: list[tuple[int, int, str]] = []  # (first line, end, name)
    i = 0
    while i < len(lines):
        m = _VARIABLE.match(lines[i])
        if not m:
            i += 1
            continue
        end = i + 1
        while lines[end - 1].endswith("\\") and end < len(lines):
            end += 1
        start = i
        while (
            start > 0 and lines[start - 1].startswith("#") and not _VARIABLE.match(lines[start - 1])
        ):
            start -= 1
        blocks.append((start, end, m.group(1)))
        i = end
    drop: set[int] = set()
    for start, end, name in blocks:
        if _uses(used_before, name) and not _uses(lines, name, skip=range(start, end)):
            drop.update(range(start, end))
    return [ln for k, ln in enumerate(lines) if k not in drop]


def _without_targets(lines: list[str]) -> list[str]:
    out, skipping = [], False
    for line in lines:
        m = re.match(r"^([A-Za-z][\w-]*)\s*:(?!=)", line)
        if m:
            skipping = m.group(1) in INSTRUCTOR_TARGETS
        elif skipping and not (line.startswith("\t") or line.strip() == ""):
            skipping = False
        if line.startswith(".PHONY:"):
            names = [n for n in line.split()[1:] if n not in INSTRUCTOR_TARGETS]
            line = ".PHONY: " + " ".join(names)
        if not skipping:
            out.append(line)
    return out


INSTRUCTOR_BEGIN = "<!-- instructor-only -->"
INSTRUCTOR_END = "<!-- /instructor-only -->"


def student_readme(text: str) -> str:
    """README.md without the blocks fenced by ``<!-- instructor-only -->`` comments
    (the test, grading and maintenance commands a student's bundle does not have)."""
    out, inside = [], False
    for n, line in enumerate(text.splitlines(keepends=True), start=1):
        if line.strip() == INSTRUCTOR_BEGIN:
            if inside:
                raise ReleaseError(f"README.md line {n}: {INSTRUCTOR_BEGIN} inside another")
            inside = True
        elif line.strip() == INSTRUCTOR_END:
            if not inside:
                raise ReleaseError(f"README.md line {n}: {INSTRUCTOR_END} without a start")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ReleaseError(f"README.md: {INSTRUCTOR_BEGIN} is never closed")
    return re.sub(r"\n{3,}", "\n\n", "".join(out))


def build_release(
    out: Path | str = "release",
    *,
    root: Path = ROOT,
    solutions_dir: Path | None = None,
) -> Path:
    """Write the student bundle to ``out`` and prove it holds no solution; return ``out``."""
    out = Path(out)
    if not out.is_absolute():
        out = root / out
    solutions_dir = solutions_dir or root / "solutions"
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ReleaseError(f"{out} exists and is not a previous release; choose another --out")
    if out.resolve() == root.resolve() or root.resolve().is_relative_to(out.resolve()):
        raise ReleaseError(f"{out} would replace the workbook itself")
    try:
        secrets = secret_lines(solutions_dir)
    except labgen.LabSourceError as e:
        raise ReleaseError(str(e)) from e
    out_rel = (
        out.resolve().relative_to(root.resolve())
        if out.resolve().is_relative_to(root.resolve())
        else None
    )
    files = [
        f
        for f in tracked_files(root)
        if is_included(f) and not (out_rel and f.is_relative_to(out_rel))
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        for rel in files:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if rel.as_posix() == "Makefile":
                target.write_text(student_makefile((root / rel).read_text()), encoding="utf-8")
            elif rel.as_posix() == "README.md":
                target.write_text(student_readme((root / rel).read_text()), encoding="utf-8")
            else:
                shutil.copy2(root / rel, target)
        (staging / MARKER).write_text(
            "Student bundle of the RNN workbook, written by `make release`.\n", encoding="utf-8"
        )
        problems = scan(staging, secrets)
        if problems:
            shown = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise ReleaseError(
                f"the bundle would contain solution or hidden-test text:\n  {shown}{more}\n"
                "Fix: remove those files or that text (a file git does not track, such as "
                "a module a solution notebook exported, can also be listed in .gitignore)."
            )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out
