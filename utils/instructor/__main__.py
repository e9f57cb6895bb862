"""Command line for instructors and maintainers.

python -m utils.instructor labs            # regenerate labs/ from solutions/
python -m utils.instructor labs --check    # exit 1 if labs/ is out of date
python -m utils.instructor modules         # regenerate utils/models/ from the chapters
python -m utils.instructor modules --check # exit 1 if utils/models/ is out of date
python -m utils.instructor exports --out D # the solutions' lab exports, into D
python -m utils.instructor execute NB...   # run notebooks, store outputs (full mode)
python -m utils.instructor grade DIR       # grade DIR/<student>/<lab>.ipynb into grades/
python -m utils.instructor release         # the student bundle, no solutions, in release/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _labs(args) -> int:
    from utils.instructor import labgen

    try:
        if args.check:
            problems = labgen.diff_labs()
            for p in problems:
                print(p, file=sys.stderr)
            if problems:
                return 1
            print(f"labs/ is in sync with solutions/ ({len(labgen.solution_paths())} lab(s))")
            return 0
        for path in labgen.write_labs():
            print(f"wrote {path.relative_to(labgen.ROOT)}")
        return 0
    except labgen.LabSourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _modules(args) -> int:
    from utils.instructor import modules

    try:
        if args.check:
            problems = modules.diff_modules()
            for p in problems:
                print(p, file=sys.stderr)
            return 1 if problems else 0
        for path in modules.write_modules():
            print(f"wrote {path.relative_to(modules.ROOT)}")
        return 0
    except modules.ModuleSourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _exports(args) -> int:
    from utils.instructor.exports import ExportSourceError, write_reference_exports

    try:
        for path in write_reference_exports(Path(args.out)):
            print(f"wrote {path}")
    except ExportSourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _execute(args) -> int:
    from utils.instructor.execute import execute_in_place

    for name in args.notebooks:
        path = Path(name)
        if not path.exists():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
        seconds = execute_in_place(path, fast=args.fast)
        mode = "FAST" if args.fast else "full"
        print(f"executed {path} in {seconds:.1f} s ({mode} mode)")
    return 0


def _grade(args) -> int:
    from utils.instructor import grade

    limits = grade.Limits(
        cell_timeout=args.cell_timeout,
        cell_factor=args.cell_factor,
        total_timeout=args.total_timeout,
        memory_mb=args.memory_mb,
        fast=args.fast or _env_fast(),
    )
    try:
        results = grade.grade(
            args.submissions,
            args.out,
            labs=args.lab or None,
            jobs=args.jobs,
            limits=limits,
            solutions_dir=args.solutions or grade.labgen.SOLUTIONS_DIR,
            scheduler=args.scheduler,
            allow_unisolated=args.allow_unisolated,
        )
    except grade.GradingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    graded = [r for r in results if r.status not in (grade.MISSING, grade.UNREADABLE, grade.OTHER)]
    print(f"wrote {Path(args.out) / 'gradebook.csv'} ({len(results)} row(s)) and feedback/")
    if graded and all(r.status == grade.ERROR for r in graded):
        print(
            "error: the grader failed on every submission (see the feedback files)", file=sys.stderr
        )
        return 1
    return 0


def _env_fast() -> bool:
    from utils import env

    return env.fast()


def _release(args) -> int:
    from utils.instructor import release

    try:
        path = release.build_release(Path(args.out))
    except release.ReleaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote the student bundle to {path} (no solutions, no hidden tests)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m utils.instructor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("labs", help="generate labs/ from solutions/")
    p.add_argument("--check", action="store_true", help="only report labs that are out of date")
    p.set_defaults(func=_labs)
    p = sub.add_parser("modules", help="generate utils/models/ from cells tagged export:NAME")
    p.add_argument("--check", action="store_true", help="only report modules out of date")
    p.set_defaults(func=_modules)
    p = sub.add_parser("exports", help="write the solutions' lab exports into a folder")
    p.add_argument("--out", required=True, help="the folder (then WORKBOOK_EXPORTS=folder)")
    p.set_defaults(func=_exports)
    p = sub.add_parser("execute", help="execute notebooks in place in a fresh kernel")
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--fast", action="store_true", help="FAST mode (not for committed outputs)")
    p.set_defaults(func=_execute)
    p = sub.add_parser("grade", help="grade DIR/<student>/<lab>.ipynb into a gradebook")
    p.add_argument("submissions", help="folder with one sub-folder per student")
    p.add_argument("--out", default="grades", help="where gradebook.csv and feedback/ go")
    p.add_argument("--lab", action="append", help="grade only this lab (repeatable)")
    p.add_argument("--solutions", default=None, help="solution notebooks (solutions/)")
    p.add_argument("--jobs", type=int, default=None, help="parallel kernels (default: cores)")
    p.add_argument("--cell-timeout", type=float, default=60, help="seconds any cell may run (60)")
    p.add_argument(
        "--cell-factor",
        type=float,
        default=10,
        help="a lab cell may run this many times the solution's time for it, if longer (10)",
    )
    p.add_argument("--total-timeout", type=float, default=1800, help="seconds per notebook")
    p.add_argument("--memory-mb", type=int, default=8192, help="memory cap per kernel (MiB)")
    p.add_argument("--fast", action="store_true", help="run submissions in FAST mode")
    p.add_argument(
        "--scheduler", default=None, help="grade on a Dask cluster: tcp://host:8786 (default: here)"
    )
    p.add_argument(
        "--allow-unisolated",
        action="store_true",
        help="grade without an OS sandbox (no bubblewrap here); the gradebook says so",
    )
    p.set_defaults(func=_grade)
    p = sub.add_parser("release", help="build the student bundle (no solutions)")
    p.add_argument("--out", default="release", help="folder to write (replaced if a release)")
    p.set_defaults(func=_release)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
