"""`make bench`'s inputs and the promises built on its results.

- every notebook has a run-time budget (bench/budgets.py);
- every notebook prints its headline results as ``[metric] name: value`` lines,
  the only thing bench reads from the outputs;
- the **Time** line of each notebook and the README's course map state the full-mode
  run time that `make bench` measured last (bench/RESULTS.json).
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from bench.__main__ import metrics_in, notebook_text
from bench.budgets import BUDGETS, budget
from tests.factories import ROOT

NOTEBOOKS = sorted(
    p.relative_to(ROOT).as_posix()
    for p in [*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("solutions/*.ipynb")]
)
RESULTS = ROOT / "bench" / "RESULTS.json"
TIME_LINE = re.compile(
    r"\*\*Time\*\*:.*?about (?P<full>\d+(?:\.\d+)?) (?P<unit>s|min) on a laptop CPU "
    r"\(full mode\), (?P<fast>\d+(?:\.\d+)?) s in FAST mode"
)


def stated_seconds(rel: str) -> tuple[float, float]:
    """(full, FAST) seconds stated by the notebook's **Time** line."""
    nb = nbformat.read(ROOT / rel, as_version=4)
    text = "\n".join(c.source for c in nb.cells[:3] if c.cell_type == "markdown")
    m = TIME_LINE.search(text)
    assert m, (
        f"{rel}: no Time line like '**Time**: ... the code runs in about 8 s on a laptop CPU "
        "(full mode), 6 s in FAST mode.' in its first cells"
    )
    full = float(m["full"]) * (60 if m["unit"] == "min" else 1)
    return full, float(m["fast"])


def agrees(stated: float, measured: float) -> bool:
    """An "about" figure: within 5 s or 35 % of the measurement."""
    return abs(stated - measured) <= max(5.0, 0.35 * measured)


def test_metric_lines_are_read_and_nothing_else():
    text = "epoch 3 loss 0.2\n[metric] ch03 lstm val mse: 0.0006\nLSTM val MSE 0.5\n[metric] a b: 93.0%"
    assert metrics_in(text) == {"ch03 lstm val mse": "0.0006", "a b": "93.0%"}
    assert metrics_in("no metric here: 3") == {}


def test_every_notebook_has_a_budget_and_no_budget_is_stale():
    assert sorted(BUDGETS) == NOTEBOOKS
    with pytest.raises(KeyError, match="add a row to bench/budgets.py"):
        budget("notebooks/99_missing.ipynb")


@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_every_notebook_prints_its_headline_results_as_metric_lines(rel):
    nb = nbformat.read(ROOT / rel, as_version=4)
    assert metrics_in(notebook_text(nb)), f"{rel}: no '[metric] name: value' line in its outputs"


@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_time_line_states_what_bench_measured(rel):
    measured = json.loads(RESULTS.read_text())["notebooks"][rel]
    full, fast = stated_seconds(rel)
    assert agrees(full, measured["full_s"]), (
        f"{rel}: the Time line says {full:g} s (full mode), make bench measured "
        f"{measured['full_s']} s"
    )
    if measured.get("fast_s") is not None:
        assert agrees(fast, measured["fast_s"]), (
            f"{rel}: the Time line says {fast:g} s (FAST), make bench measured {measured['fast_s']} s"
        )


def test_bench_metrics_are_the_ones_the_stored_notebooks_print():
    """RESULTS.json comes from the notebooks as stored: same metric names."""
    recorded = json.loads(RESULTS.read_text())["metrics"]
    for rel in NOTEBOOKS:
        stem = rel.split("/")[-1].removesuffix(".ipynb")
        stored = metrics_in(notebook_text(nbformat.read(ROOT / rel, as_version=4)))
        names = {k.split(": ", 1)[1] for k in recorded if k.startswith(stem + ": ")}
        assert names == set(stored), f"{rel}: bench has {sorted(names)}, notebook {sorted(stored)}"


def test_readme_course_map_states_the_time_lines():
    readme = (ROOT / "README.md").read_text()
    for rel in NOTEBOOKS:
        name = rel.split("/")[-1]
        link = rel.replace("solutions/", "labs/")
        row = next((ln for ln in readme.splitlines() if f"]({link})" in ln), None)
        assert row, f"README's course map has no row linking {link}"
        full, _ = stated_seconds(rel)
        said = re.search(r"\| (\d+(?:\.\d+)?) (s|min)\b[^|]*\|\s*$", row)
        assert said, f"README row of {name} has no run time in its last column: {row}"
        seconds = float(said[1]) * (60 if said[2] == "min" else 1)
        assert seconds == full, f"README says {seconds:g} s for {name}, its Time line {full:g} s"


def test_fast_only_keeps_the_full_mode_record_and_measures_fast_mode(tmp_path, monkeypatch):
    """``--fast-only`` (after a FAST-mode change) re-times FAST mode and keeps the full-mode
    time and metrics on record; it refuses without --merge, and a date is stamped once."""
    import bench.__main__ as bench

    rel = "solutions/lab05_neural_machine_translation.ipynb"
    other = "notebooks/01_sequences_and_rnns.ipynb"
    out = tmp_path / "RESULTS.md"
    stamp = f"{bench.dt.date.today().isoformat()} for {rel}"  # what this run stamps
    out.with_suffix(".json").write_text(json.dumps({
        "date": f"2026-01-01; {stamp}", "machine": "m",
        "notebooks": {rel: {"full_s": 800.0, "fast_s": 80.0}, other: {"full_s": 9.0, "fast_s": 4.0}},
        "metrics": {"lab05_neural_machine_translation: bleu": "36.2", "01_sequences_and_rnns: x": "1"},
        "grading": None, "errors": {},
    }))  # fmt: skip
    calls = []

    def fake(path, fast, store=False):
        calls.append(fast)
        return 61.0, {}, None

    monkeypatch.setattr(bench, "time_notebook", fake)
    argv = [
        "--only",
        str(ROOT / rel),
        "--merge",
        "--fast-only",
        "--skip-grading",
        "--out",
        str(out),
    ]
    assert bench.main(argv) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert calls == [True]  # FAST mode only
    assert record["notebooks"][rel] == {"full_s": 800.0, "fast_s": 61.0}
    assert record["notebooks"][other] == {"full_s": 9.0, "fast_s": 4.0}
    assert record["metrics"]["lab05_neural_machine_translation: bleu"] == "36.2"
    assert record["date"] == f"2026-01-01; {stamp}"  # not stamped twice
    with pytest.raises(SystemExit):
        bench.main(["--only", str(ROOT / rel), "--fast-only", "--out", str(out)])


def test_merged_dates_drop_the_notebooks_measured_again():
    """A notebook measured again loses its earlier date; --fast-only keeps it (the full-mode
    figures on record are still from then)."""
    from bench.__main__ import merged_dates

    old = "2026-01-01; 2026-01-02 for a.ipynb, b.ipynb; 2026-01-03 for c.ipynb"
    assert merged_dates(old, "2026-01-05 for b.ipynb", {"b.ipynb"}) == (
        "2026-01-01; 2026-01-02 for a.ipynb; 2026-01-03 for c.ipynb; 2026-01-05 for b.ipynb"
    )
    assert merged_dates(old, "2026-01-05 for c.ipynb", {"c.ipynb"}) == (
        "2026-01-01; 2026-01-02 for a.ipynb, b.ipynb; 2026-01-05 for c.ipynb"
    )
    assert merged_dates(old, "2026-01-05 for c.ipynb", set()) == f"{old}; 2026-01-05 for c.ipynb"
    assert merged_dates(old, "2026-01-03 for c.ipynb", set()) == old  # stamped once
