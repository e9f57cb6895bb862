"""Validate a lab before submitting it: ``make check LAB=labs/lab01_rnn_from_scratch.ipynb``.

Runs the notebook top to bottom in a fresh kernel with the grader's isolation and
limits (:mod:`.sandbox`), runs each visible test the way the grader does (in this
process, calling your functions in the kernel, with fresh inputs), and prints each
test's result and the points at stake. What nbgrader's Validate button does; the
hidden tests are the grader's, so passing here is necessary, not sufficient.

Exit status: 0 when every visible test passes, 1 otherwise, 2 when the notebook
cannot be checked (missing, not a notebook, no tests).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from utils.instructor.sandbox import isolation
from utils.instructor.sandbox.remote import function_sources
from utils.instructor.sandbox.worker import Limits, datasets_in, grade_unit, limits_dict


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def lab_spec(nb) -> dict:
    """The worker's description of the student's own notebook, tests as they are in it."""
    cells = nb.cells
    tests = {
        str(i): _meta(c)["grade_id"]
        for i, c in enumerate(cells)
        if c.cell_type == "code" and _meta(c).get("grade") and _meta(c).get("grade_id")
    }
    functions = sorted(
        _meta(c)["grade_id"]
        for c in cells
        if c.cell_type == "code" and _meta(c).get("solution") and _meta(c).get("grade_id")
    )
    rules = nb.metadata.get("workbook", {})
    forbid = sorted({*rules.get("forbid", []), "utils.checks"})
    kernel_functions = sorted(n for n in rules.get("kernel_functions", []) if isinstance(n, str))
    setup = next((c.source for c in cells if c.cell_type == "code"), "")
    exercises = {
        i for i, c in enumerate(cells) if c.cell_type == "code" and _meta(c).get("solution")
    }
    sources = function_sources(cells, exercises, set(range(len(cells))), {int(i) for i in tests})
    return {
        "name": "check",
        "notebook": nb,
        "sources": sources,
        "tests": tests,
        "setup": setup,
        "functions": functions,
        "kernel_functions": kernel_functions,
        "datasets": datasets_in(cells),
        "forbid": {"*": forbid},
        "cell_limits": {},
    }


def check(path: Path, limits: Limits, *, allow_unisolated: bool = False, out=print) -> int:
    import nbformat

    if not path.is_file():
        out(f"error: {path} does not exist")
        return 2
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - any reason a file is not a notebook
        out(f"error: {path} is not a readable notebook ({type(e).__name__}: {e})")
        return 2
    spec = lab_spec(nb)
    if not spec["tests"]:
        out(f"error: {path} has no test cells (nbgrader grade cells) to run")
        return 2
    from utils import env

    isolate, why = isolation.available()
    allow_unisolated = allow_unisolated or env.flag("WORKBOOK_ALLOW_UNISOLATED")
    if not isolate and not allow_unisolated:
        out(f"error: no sandbox here ({why}); pass --allow-unisolated to check anyway")
        return 2
    out(f"checking {path} in a fresh kernel ({'bubblewrap' if isolate else 'not isolated'}) ...")
    unit = {"student": "you", "labs": [spec], "limits": limits_dict(limits),
            "isolate": isolate, "salt": None}  # fmt: skip
    [result] = grade_unit(unit)["labs"]
    if "error" in result:
        out(f"error: the check could not run: {result['error']}")
        return 2
    got = total = 0.0
    for i, gid in spec["tests"].items():
        points = float(_meta(nb.cells[int(i)]).get("points", 0))
        total += points
        v = result["tests"].get(i)
        if v and v.get("passed"):
            got += points
            out(f"  PASS  {gid:<32} {points:g} / {points:g}")
            continue
        if v is None:
            why = "not run (the kernel stopped before it)"
        elif v.get("timed_out"):
            why = f"timed out after {limits.cell_timeout:g} s"
        else:
            why = f"{v.get('ename')}: {v.get('evalue')}"
        out(f"  FAIL  {gid:<32} 0 / {points:g}  {why.splitlines()[0][:300]}")
    errors = [
        (i, o) for i, c in enumerate(result["cells"]) if c
        for o in c["outputs"] if o.get("output_type") == "error"
    ]  # fmt: skip
    for i, o in errors[:5]:
        out(f"  cell {i} raised {o.get('ename')}: {str(o.get('evalue'))[:200]}")
    if result.get("stopped"):
        out(f"  the run stopped: {result['stopped'].get('reason')}")
    out(f"[metric] visible tests: {got:g} / {total:g} points")
    return 0 if got == total else 1


def main(argv: list[str] | None = None) -> int:
    from utils import env

    p = argparse.ArgumentParser(prog="make check LAB=...", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "lab", type=Path, help="your lab notebook, e.g. labs/lab01_rnn_from_scratch.ipynb"
    )
    p.add_argument("--cell-timeout", type=float, default=600, help="seconds per cell (600)")
    p.add_argument("--memory-mb", type=int, default=8192, help="memory cap of the kernel (MiB)")
    p.add_argument("--allow-unisolated", action="store_true", help="run without a sandbox")
    args = p.parse_args(argv)
    limits = Limits(cell_timeout=args.cell_timeout, memory_mb=args.memory_mb, fast=env.fast())
    return check(args.lab, limits, allow_unisolated=args.allow_unisolated)


if __name__ == "__main__":
    sys.exit(main())
