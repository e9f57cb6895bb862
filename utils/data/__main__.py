"""Command line: ``python -m utils.data {fetch,status,verify} [NAME ...]``.

- ``fetch``  fetch datasets into the cache (all by default), with progress bars;
  honours ``WORKBOOK_MIRROR``; exits 1 when a dataset could not be fetched.
- ``status`` one line per dataset: present or missing, size, license.
- ``verify`` re-check every cached file (sha256, size, schema, rows); exits 1
  naming every dataset that fails.
"""

from __future__ import annotations

import argparse
import sys

from utils.data.errors import DataError, SourceError
from utils.data.download import cache_dir, fetch, mirror_location
from utils.data.registry import REGISTRY, get_spec
from utils.data.report import status_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m utils.data",
        description="Fetch, list and verify the datasets of the workbook.",
    )
    parser.add_argument("command", choices=["fetch", "status", "verify"])
    parser.add_argument("names", nargs="*", help=f"datasets (default: all): {', '.join(REGISTRY)}")
    parser.add_argument(
        "--no-upstream", action="store_true", help="use only the cache and the mirror"
    )
    args = parser.parse_args(argv)
    try:
        names = [get_spec(n).name for n in args.names] or list(REGISTRY)
    except DataError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"cache: {cache_dir()} | mirror: {mirror_location() or '(WORKBOOK_MIRROR not set)'}")
    errors: dict[str, str] = {}
    if args.command == "fetch":
        for name in names:
            try:
                fetch(name, use_upstream=not args.no_upstream)
                print(f"[ok] {name}")
            except DataError as err:
                package_only = get_spec(name).packaged and isinstance(err.__cause__, SourceError)
                errors[name] = str(err)
                print(f"[{'skip' if package_only else 'FAILED'}] {err}", file=sys.stderr)
                if package_only:
                    errors.pop(name)
    text, failed = status_table(deep=args.command == "verify")
    print()
    print(text)
    failed = [n for n in failed if n in names] + [n for n in errors if n not in failed]
    if failed:
        what = "failed verification" if args.command == "verify" else "could not be fetched"
        print(f"\n{len(failed)} dataset(s) {what}: {', '.join(failed)}", file=sys.stderr)
        return 1
    if args.command == "verify":
        print("\nEvery cached file verified.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
