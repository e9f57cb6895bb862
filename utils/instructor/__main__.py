"""Command line for instructors and maintainers.

    python -m utils.instructor labs            # regenerate labs/ from solutions/
    python -m utils.instructor labs --check    # exit 1 if labs/ is out of date
    python -m utils.instructor execute NB...   # run notebooks, store outputs (full mode)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.instructor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("labs", help="generate labs/ from solutions/")
    p.add_argument("--check", action="store_true", help="only report labs that are out of date")
    p.set_defaults(func=_labs)
    p = sub.add_parser("execute", help="execute notebooks in place in a fresh kernel")
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--fast", action="store_true", help="FAST mode (not for committed outputs)")
    p.set_defaults(func=_execute)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
