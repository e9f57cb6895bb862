"""Measure what the README promises, on this machine, and write bench/RESULTS.md.

    make bench                      # everything (about 10-15 min on 2 cores)
    python -m bench --only notebooks/01_sequences_and_rnns.ipynb
    python -m bench --skip-grading
    python -m bench --only solutions/lab06_ecg_anomalies.ipynb --merge   # a new notebook
    python -m bench --only solutions/lab05_neural_machine_translation.ipynb --merge --store
    python -m bench --only solutions/lab05_neural_machine_translation.ipynb --merge --fast-only --skip-grading

For every chapter and solution notebook: wall time of a fresh top-to-bottom run
in full mode and in FAST mode, against its budget, and every line the notebook
printed in the form ``[metric] name: value`` (accuracies, losses; nothing else
is read from the outputs). Budgets live in bench/budgets.py. Grading
throughput comes from bench/grading.py when present. Targets are measured here,
never asserted as timed tests. Writes bench/RESULTS.md (for people) and
bench/RESULTS.json (for tests/test_bench.py, which holds the notebooks' Time
lines and the README's course map to it).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch

from bench.budgets import budget
from utils.config import cpu_has_amx
from utils.instructor.execute import run_notebook
from utils.instructor.exports import write_reference_exports
from utils.instructor.notebook import clean_metadata

ROOT = Path(__file__).resolve().parent.parent
METRIC = re.compile(r"^\[metric\] (?P<name>[^:\n]+): (?P<value>\S.*?)\s*$", re.M)
"""A headline result, as every notebook prints it: ``[metric] ch03 lstm val mse: 0.0006``."""


def metrics_in(text: str) -> dict[str, str]:
    """Every ``[metric] name: value`` line of ``text`` (the last value of a name wins)."""
    return {m["name"].strip(): m["value"] for m in METRIC.finditer(text)}


def notebook_text(nb) -> str:
    """What the code cells of ``nb`` printed (stdout and plain-text results)."""
    return "\n".join(
        o.get("text", "") or o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    amx = cpu_has_amx()  # the hardware, whatever WORKBOOK_BF16 says
    return (
        f"{cpu}, {os.cpu_count()} cores (torch on 1 thread, or on 2 where a notebook's "
        "utils.config.setup(threads=...) asks), "
        f"{'with' if amx else 'without'} AMX bfloat16 units (see utils.config.cpu_bf16), "
        f"Python {platform.python_version()}, torch {torch.__version__}, {platform.system()}"
    )


def merged_dates(old: str, stamp: str, measured: set[str]) -> str:
    """The record's date line, ``old``, with this run's ``stamp`` added last. An earlier
    stamp no longer names the notebooks in ``measured`` (they were run again, so their
    figures are this run's), and goes once it names none."""
    kept = []
    for entry in old.split("; "):
        day, sep, names = entry.partition(" for ")
        left = [n for n in names.split(", ") if n not in measured] if sep else None
        if entry == stamp or left == []:
            continue
        kept.append(f"{day} for {', '.join(left)}" if left else entry)
    return "; ".join([*kept, stamp])


def time_notebook(
    path: Path, fast: bool, *, store: bool = False
) -> tuple[float, dict[str, str], str | None]:
    """Seconds of a fresh run, its ``[metric]`` lines, and its error (or None). ``store``:
    write the run's outputs back to ``path`` when it succeeded (what ``make execute``
    stores; a notebook that trains for many minutes need not run twice)."""
    nb = nbformat.read(path, as_version=4)
    run = copy.deepcopy(nb)
    for cell in run.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    error = None
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # run in a scratch folder so files a notebook writes stay out of the repo
        exports = Path(tmp) / "exports"  # earlier labs' exports, from their solutions
        write_reference_exports(exports)
        try:
            run_notebook(run, Path(tmp), fast=fast, timeout=900, exports=exports)
        except Exception as e:  # noqa: BLE001 - report, keep measuring the rest
            error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        if not fast and error is None and (exports / "chatbot").is_dir():
            keep_chatbot(exports)
    seconds = time.perf_counter() - start
    if store and error is None:
        nbformat.write(clean_metadata(run), path)
    return seconds, metrics_in(notebook_text(run)), error


def keep_chatbot(exports: Path) -> None:
    """Keep what the chatbot project's full run exported (the student's functions, the
    trained model and the index) in the workbook's ``exports/``, where
    ``python -m chatbot serve`` and the service's load test find them."""
    import shutil

    from utils import env

    dest = env.exports_dir()
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(exports / "chatbot_parts.py", dest / "chatbot_parts.py")
    shutil.rmtree(dest / "chatbot", ignore_errors=True)
    shutil.copytree(exports / "chatbot", dest / "chatbot")


def render(record: dict) -> str:
    """RESULTS.md from the record RESULTS.json holds."""
    lines = [
        "# Benchmark results",
        "",
        f"Measured by `make bench` on {record['date']}.",
        "",
        f"Machine: {record['machine']}.",
        "",
        "## Notebook run times (fresh kernel, top to bottom)",
        "",
        "| notebook | full mode | budget | FAST mode | budget | |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for rel, t in sorted(record["notebooks"].items()):
        b_full, b_fast = budget(rel)
        full, fast = t["full_s"], t["fast_s"]
        status = record.get("errors", {}).get(rel) or (
            "ok" if full <= b_full and (fast is None or fast <= b_fast) else "over budget"
        )
        fast_s = "-" if fast is None else f"{fast:.1f} s"
        lines.append(f"| {rel} | {full:.1f} s | {b_full} s | {fast_s} | {b_fast} s | {status} |")
    if record["metrics"]:
        lines += [
            "",
            "## Targets printed by the notebooks (full mode)",
            "",
            "| notebook: metric | value |",
            "| --- | ---: |",
        ]
        lines += [f"| {k} | {v} |" for k, v in sorted(record["metrics"].items())]
    if record.get("grading"):
        lines += ["", "## Grading throughput", ""]
        lines += [f"- {k}: {v}" for k, v in record["grading"].items()]
    service = record.get("chatbot")
    if service:
        lines += ["", "## The chatbot service (HTTP on loopback, `bench/chatbot_service.py`)", ""]
        if "skipped" in service:
            lines.append(f"Not measured: {service['skipped']}.")
        else:
            lines.append(
                f"{service['candidates']:,} candidates; the server answered "
                f"/health {service['start_seconds']} s after it was started."
            )
            lines += ["", "| load | requests | errors | req/s | p50 ms | p99 ms | max ms |",
                      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
            for name, r in service.items():
                if isinstance(r, dict):
                    lines.append(
                        f"| {name.replace('_', ' ')} | {r['requests']:,} | {r['errors']} | "
                        f"{r['throughput_rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                        f"{r['max_ms']:.2f} |"
                    )
            for name, r in service.items():
                if isinstance(r, dict) and r.get("server_ms"):
                    stages = ", ".join(f"{k} {v:.2f}" for k, v in r["server_ms"].items())
                    lines.append(f"\nWhere the time goes ({name.replace('_', ' ')}, mean ms): "
                                 f"{stages}; HTTP and queueing {r['overhead_ms']:.2f}.")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", nargs="*", help="notebooks to measure (default: all)")
    parser.add_argument("--skip-grading", action="store_true")
    parser.add_argument("--skip-fast", action="store_true")
    parser.add_argument(
        "--chatbot",
        action="store_true",
        help="with --only: also load-test the chatbot service (make bench always does; it "
        "needs the model and index that `python -m chatbot train` and `index` write)",
    )
    parser.add_argument(
        "--fast-only",
        action="store_true",
        help="with --only and --merge: measure FAST mode only and keep the notebooks' full-mode "
        "times and metrics from RESULTS.json (after a change that touches FAST mode only)",
    )
    parser.add_argument(
        "--chatbot-only",
        action="store_true",
        help="measure the chatbot service only and merge it into RESULTS.md/.json",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: replace those notebooks' rows in RESULTS.md/.json, keep the rest",
    )
    parser.add_argument(
        "--store",
        action="store_true",
        help="with --only: also store the full-mode run's outputs in the notebook (as make "
        "execute does)",
    )
    args = parser.parse_args(argv)
    if args.store and not args.only:
        parser.error("--store needs --only (the notebooks whose outputs to replace)")
    if args.fast_only and not (args.only and args.merge) or args.fast_only and args.store:
        parser.error("--fast-only needs --only and --merge, and stores nothing")

    if args.chatbot_only:
        args.only, args.merge, args.chatbot, args.skip_grading = [], True, True, True
    paths = (
        [Path(p).resolve() for p in args.only]
        if args.only is not None
        else sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("solutions/*.ipynb")])
    )
    for path in paths:  # fail before hours of measuring, not after
        budget(path.relative_to(ROOT).as_posix())
    out = Path(args.out)
    old = json.loads(out.with_suffix(".json").read_text()) if args.merge else None
    rows, metrics, timings, failed = [], {}, {}, False
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        if args.fast_only:  # the full-mode run on record stands
            if rel not in old["notebooks"]:
                parser.error(
                    f"--fast-only: {rel} has no full-mode time on record; measure it whole"
                )
            full, error, stem = old["notebooks"][rel]["full_s"], None, Path(rel).stem
            found = {
                k.split(": ", 1)[1]: v
                for k, v in old["metrics"].items()
                if k.startswith(stem + ": ")
            }
        else:
            full, found, error = time_notebook(path, fast=False, store=args.store)
        fast = None if args.skip_fast else time_notebook(path, fast=True)[0]
        b_full, b_fast = budget(rel)
        ok = error is None and full <= b_full and (fast is None or fast <= b_fast)
        failed |= error is not None
        rows.append((rel, full, b_full, fast, b_fast, "ok" if ok else (error or "over budget")))
        metrics.update({f"{Path(rel).stem}: {k}": v for k, v in found.items()})
        timings[rel] = {
            "full_s": round(full, 1),
            "fast_s": None if fast is None else round(fast, 1),
        }
        print(
            f"{rel}: full {full:.1f} s (budget {b_full} s), FAST "
            f"{'-' if fast is None else f'{fast:.1f} s'} (budget {b_fast} s) {rows[-1][-1]}",
            flush=True,
        )

    grading = None
    if not args.skip_grading and (ROOT / "bench" / "grading.py").exists():
        from bench import grading

        grading = grading.measure()
        print(f"grading: {json.dumps(grading)}", flush=True)

    chatbot = None
    if args.chatbot or args.only is None:
        from bench import chatbot_service

        chatbot = chatbot_service.measure()
        print(f"chatbot service: {json.dumps(chatbot)}", flush=True)

    record = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "notebooks": timings,
        "metrics": metrics,
        "grading": grading,
        "chatbot": chatbot,
        "errors": {rel: status for rel, *_, status in rows if status not in ("ok", "over budget")},
    }
    if args.only is not None and args.merge:  # some measured alone, merged in
        measured = {Path(rel).stem for rel in timings}
        what = sorted(timings) or ["the chatbot service"]
        stamp = f"{record['date']} for {', '.join(what)}"
        record = {
            **record,
            "date": merged_dates(old["date"], stamp, set() if args.fast_only else set(timings)),
            "notebooks": {**old["notebooks"], **timings},
            "metrics": {
                **{k: v for k, v in old["metrics"].items() if k.split(": ")[0] not in measured},
                **metrics,
            },
            "grading": grading or old.get("grading"),
            "chatbot": chatbot or old.get("chatbot"),
            "errors": {
                **{k: v for k, v in old.get("errors", {}).items() if k not in timings},
                **record["errors"],
            },
        }
    elif args.only is not None:  # a partial run does not overwrite the full table
        out = out.with_name("RESULTS-partial.md")
    out.write_text(render(record))
    out.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
