"""The student bundle: everything a student needs, no solution and no hidden test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.factories import ROOT
from utils.instructor import labgen, release
from utils.instructor.notebook import HIDDEN, SOLUTION, fenced_lines
from utils.instructor.student import (
    NOTEBOOK_FOLDERS,
    STUDENT_PACKAGES,
    is_instructor_only,
    package_dirs,
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "bundle"
    run = subprocess.run(
        [sys.executable, "-m", "utils.instructor", "release", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def test_bundle_ships_every_student_package_without_its_instructor_parts(bundle):
    """STUDENT_PACKAGES is the one list: the release ships each, tracked file by file."""
    tracked = release.tracked_files()
    for package in STUDENT_PACKAGES:
        files = [p for p in tracked if p.parts[0] == package]
        assert files, package
        for rel in files:
            assert (bundle / rel).is_file() != is_instructor_only(rel), rel
    for name in NOTEBOOK_FOLDERS:
        assert (bundle / name).is_dir(), name


def test_the_grader_and_the_browser_test_use_the_same_list():
    from tests.ui import lab
    from utils.instructor.sandbox import worker

    here = Path("/nonexistent")
    _, env = worker._kernel_setup(here, here, here, worker.Limits(), isolate=False)
    policy = json.loads(env["WORKBOOK_SANDBOX"])
    argv, _ = worker._kernel_setup(here, here, here, worker.Limits(), isolate=True)
    for folder in package_dirs():
        assert str(folder) in policy["allow_read"]
        assert ["--ro-bind", str(folder), str(folder)] == argv[argv.index(str(folder)) - 1 :][:3]
        assert folder.name in lab.COPIED


def test_bundle_has_what_a_student_needs(bundle):
    for rel in ["README.md", "Makefile", "requirements.txt", "environment.yml", "pyproject.toml",
                "data/README.md", "utils/__init__.py", "utils/checks/__init__.py", "utils/checks/lab01/__init__.py", "utils/config.py"]:  # fmt: skip
        assert (bundle / rel).is_file(), rel
    for name in ("notebooks", "labs"):
        have = sorted(p.name for p in (bundle / name).glob("*.ipynb"))
        assert have == sorted(p.name for p in (ROOT / name).glob("*.ipynb")), name
    for rel in [
        "solutions",
        "tests",
        "bench",
        ".ci",
        "utils/instructor/grade.py",
        "utils/instructor/labgen.py",
        "utils/instructor/release.py",
        "CONTRIBUTING.md",
        ".git",
    ]:
        assert not (bundle / rel).exists(), rel
    # make check and its sandbox are the student's: validate a lab as the grader runs it
    for rel in ["utils/instructor/check.py", "utils/instructor/sandbox/worker.py"]:
        assert (bundle / rel).is_file(), rel
    make = (bundle / "Makefile").read_text()
    assert "\nlab: " in make and "\nenv: " in make
    for target in ("grade", "release", "labs", "test", "bench", "execute"):
        assert f"\n{target}:" not in make, target
        assert f"make {target}" not in make, target
    assert "nbval" not in make and "TEST_ENV" not in make and make.startswith("# RNN workbook")
    if shutil.which("make"):  # the student targets parse, their prerequisites are in the bundle
        run = subprocess.run(
            ["make", "-n", "help", "env", "lab", "lint", "format", "data", "clean", "check", "LAB=labs/x.ipynb"],
            cwd=bundle, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHON": "python3"},
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert "requirements.txt" in run.stdout and "notebooks/01_" in run.stdout


def test_bundle_holds_no_solution_code_or_hidden_test(bundle):
    """Every line of solution code and hidden test, searched in every file of the bundle."""
    secrets = release.secret_lines()
    n_solutions = len(labgen.solution_paths())
    if n_solutions:
        assert secrets, "solutions/ has labs but no solution lines were found"
    assert release.scan(bundle, secrets) == []
    # and independently of the scanner: no fenced line of any length, verbatim
    text = "\n".join(p.read_text(errors="replace") for p in bundle.rglob("*") if p.is_file())
    for path in labgen.solution_paths():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for fence in (SOLUTION, HIDDEN):
                block = "\n".join(fenced_lines(cell.source, fence))
                if block.strip():
                    assert json.dumps(block)[1:-1] not in text and block not in text, path


def test_scan_finds_a_planted_solution(bundle, tmp_path):
    """The scanner is not a no-op: a copied solution block or hidden test is found."""
    sol = tmp_path / "solutions"
    sol.mkdir()
    path = sol / "lab99_tiny.ipynb"
    meta = {"schema_version": 3, "locked": False}
    cells = [
        nbformat.v4.new_code_cell(
            "def rnn_step(x_t, h_prev):\n    # BEGIN SOLUTION\n"
            "    a_t = x_t @ W_xh + h_prev @ W_hh + b_h\n    return np.tanh(a_t)\n"
            "    # END SOLUTION",
            metadata={"nbgrader": {**meta, "grade": False, "solution": True, "grade_id": "s"}},
        ),
        nbformat.v4.new_code_cell(
            "check(rnn_step)\n# BEGIN HIDDEN TESTS\nassert rnn_step(1, 2) == 0.5\n"
            "# END HIDDEN TESTS",
            metadata={
                "nbgrader": {**meta, "grade": True, "solution": False, "grade_id": "t", "points": 1}
            },
        ),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    secrets = release.secret_lines(sol)
    planted = tmp_path / "bundle"
    (planted / "notes").mkdir(parents=True)
    (planted / "notes" / "ok.md").write_text("return np.tanh(a_t)\nfor t in range(T):\n")
    assert release.scan(planted, secrets) == []  # one generic line alone is no leak
    (planted / "notes" / "leak.py").write_text(
        "def f():\n    a_t = x_t @ W_xh + h_prev @ W_hh + b_h\n"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("assert rnn_step(1, 2) == 0.5")])
    nbformat.write(nb, planted / "notes" / "leak.ipynb")
    problems = release.scan(planted, secrets)
    assert len(problems) == 2
    assert any("leak.py:2" in p and "(solution)" in p for p in problems)
    assert any("leak.ipynb" in p and "(hidden test)" in p for p in problems)


def test_release_refuses_to_overwrite_a_folder_that_is_not_a_release(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(release.ReleaseError, match="not a previous release"):
        release.build_release(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_student_makefile_drops_instructor_targets():
    text = (
        "# Workbook. `make lab` opens it, `make test` tests it.\nSHELL := /bin/bash\n"
        "PORT ?= 8888\n# tests run with\nNBVAL := --nbval-lax \\\n  --nbval-current-env\n"
        ".PHONY: help lab test grade\n\nlab: $(STAMP) ## start\n\tjupyter lab $(PORT)\n\n"
        "test: $(STAMP) ## tests\n\tpytest $(NBVAL) \\\n\t  tests\n\ngrade: ## grade\n\tgrade it\n\n"
        "clean: ## clean\n\trm -rf x\n"
    )
    out = release.student_makefile(text)
    assert out.startswith(
        release.STUDENT_HEADER + "\nSHELL := /bin/bash\nPORT ?= 8888\n.PHONY: help lab\n"
    )
    assert "lab: $(STAMP) ## start\n\tjupyter lab" in out and "clean: ## clean\n\trm -rf x" in out
    assert "NBVAL" not in out and "nbval" not in out and "tests run" not in out
    assert "pytest" not in out and "grade it" not in out and "\ntest:" not in out


def test_bundle_readme_drops_instructor_blocks(bundle):
    text = (bundle / "README.md").read_text()
    assert "make lab" in text and "## Course map" in text and "## Data" in text
    for gone in ("make test", "make grade", "make release", "## For instructors", "CONTRIBUTING"):
        assert gone not in text, f"{gone!r} is still in the student README"
    assert "instructor-only" not in text


def test_student_readme_refuses_unbalanced_markers():
    from utils.instructor.release import ReleaseError, student_readme

    assert (
        student_readme("a\n<!-- instructor-only -->\nb\n<!-- /instructor-only -->\nc\n") == "a\nc\n"
    )
    with pytest.raises(ReleaseError, match="never closed"):
        student_readme("<!-- instructor-only -->\nb\n")
    with pytest.raises(ReleaseError, match="without a start"):
        student_readme("b\n<!-- /instructor-only -->\n")
