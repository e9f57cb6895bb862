"""The class at a glance: ``OUT/summary.md`` after ``make grade``.

For each lab: how many students ran to the end, the score distribution (a
histogram, ``OUT/scores_<lab>.png``, and its quartiles), the pass rate of every
test (the tests nobody passes are where the course or the lab needs work), and
the students whose run did not end normally, with the first note of their
feedback. Results are read as the grader produced them; nothing is re-run.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from utils.instructor.assemble import WRITTEN
from utils.instructor.report import num as _num


def _histogram(totals: list[float], max_total: float, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    bins = min(20, max(5, int(max_total) + 1))
    ax.hist(totals, bins=bins, range=(0, max_total), color="tab:blue", edgecolor="white")
    ax.set(xlabel=f"score (out of {_num(max_total)})", ylabel="students", title=title)
    ax.yaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summary_markdown(results, lab_list, out: Path) -> str:
    """The text of ``summary.md``; writes one histogram per lab into ``out``."""
    lines = ["# Grading summary", ""]
    isolation = sorted({r.isolation for r in results if r.isolation})
    if isolation == ["none"]:
        lines += ["**The kernels were not isolated** (no bubblewrap on this machine; graded with "
                  "--allow-unisolated): students' code ran with the grader's rights.", ""]  # fmt: skip
    elif isolation:
        lines += [f"Kernels isolated by {', '.join(isolation)}.", ""]
    for lab in lab_list:
        mine = [r for r in results if r.lab == lab.name]
        stem = Path(lab.name).stem
        statuses = Counter(r.status for r in mine)
        totals = [r.total for r in mine]
        lines += [f"## {stem}", ""]
        lines.append(
            f"{len(mine)} student(s); run status: "
            + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
            + "."
        )
        if totals:
            q = (  # inclusive: quartiles between the lowest and the highest score
                statistics.quantiles(totals, n=4, method="inclusive")
                if len(totals) > 1
                else [totals[0]] * 3
            )
            lines.append(
                f"Score out of {_num(lab.max_total)}: median {_num(statistics.median(totals))}, "
                f"quartiles {_num(q[0])} and {_num(q[2])}, "
                f"full marks {sum(t == lab.max_total for t in totals)}."
            )
            title = f"{stem}: scores of {len(totals)} student(s)"
            png = _histogram(totals, lab.max_total, out / f"scores_{stem}.png", title)
            lines += ["", f"![score distribution]({png.name})"]
        lines += ["", "| test | points | passed |", "| --- | ---: | ---: |"]
        ran = [r for r in mine if r.feedback]
        for g in lab.grade_cells:
            passed = sum(
                1 for r in ran for f in r.feedback if f["grade_id"] == g.grade_id and f["passed"]
            )
            rate = f"{passed}/{len(mine)} ({passed / len(mine):.0%})" if mine else "-"
            lines.append(f"| `{g.grade_id}` | {_num(g.points)} | {rate} |")
        for w in lab.written:
            lines.append(f"| `{w.grade_id}` (written, by hand) | {_num(w.points)} | - |")
        trouble = [r for r in mine if r.status != "ok"]
        lines += ["", "Runs that did not end normally:" if trouble else "Every run ended normally."]
        for r in trouble:
            # the first note about the run (a written answer says nothing about it)
            about_run = [n for n in r.notes if not n.startswith(WRITTEN)]
            note = about_run[0].splitlines()[0] if about_run else ""
            lines.append(f"- {r.student}: {r.status}" + (f" ({note})" if note else ""))
        lines.append("")
    return "\n".join(lines)


def write_summary(results, lab_list, out: Path) -> Path:
    """Write ``out/summary.md`` (and the histograms beside it); returns its path."""
    path = out / "summary.md"
    path.write_text(summary_markdown(results, lab_list, out), encoding="utf-8")
    return path
