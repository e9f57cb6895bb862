"""The solutions' lab exports, rebuilt without running the labs (for later labs' runs)."""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell

from tests.factories import ROOT, grade_cell, solution_cell, write_notebook
from utils.checks.lab01 import check_rnn_backward, check_rnn_forward
from utils.export import load_module
from utils.instructor import labgen
from utils.instructor.exports import ExportSourceError, export_calls, write_reference_exports


def test_lab1s_reference_export_is_the_solution(tmp_path, capsys):
    (path,) = [p for p in write_reference_exports(tmp_path) if p.name == "rnn_scratch.py"]
    module = load_module(path)
    check_rnn_forward(module.rnn_forward)
    check_rnn_backward(module.rnn_backward)
    assert "BEGIN SOLUTION" not in path.read_text()
    assert "[PASS] rnn_forward" in capsys.readouterr().out


def test_export_calls_are_read_from_the_notebook():
    (call,) = export_calls(ROOT / "solutions" / "lab01_rnn_from_scratch.ipynb")
    assert call["name"] == "rnn_scratch" and call["header"] == "import numpy as np"
    assert call["functions"][:2] == ["rnn_step_forward", "rnn_forward"]


def two_labs(folder, export_line='export_functions("toy_mod", [double])'):
    first = [
        new_code_cell("from utils.export import export_functions"),
        solution_cell(
            "def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION", "double"
        ),
        new_code_cell(export_line),
        grade_cell("assert double(2) == 4", "test_double", 1),
    ]
    second = [
        new_code_cell("from utils.export import load_export\ntoy_mod = load_export('toy_mod')"),
        solution_cell("def quad(x):\n    # BEGIN SOLUTION\n    return toy_mod.double(toy_mod.double(x))\n    # END SOLUTION", "quad"),
        grade_cell("assert quad(1) == 4", "test_quad", 1),
    ]  # fmt: skip
    write_notebook(folder / "lab01_a.ipynb", first)
    return write_notebook(folder / "lab02_b.ipynb", second)


def test_a_later_starter_lab_runs_with_the_earlier_solution_export(tmp_path):
    """make labs: the later lab loads the export; only its own stub raises."""
    second = two_labs(tmp_path / "solutions")
    lab = labgen.generate(second)
    tags = [c.metadata.get("tags", []) for c in lab.cells]
    assert "raises-exception" not in tags[0]  # load_export found toy_mod
    assert "raises-exception" in tags[2]  # quad is a stub


def test_an_export_of_an_undefined_function_is_an_error(tmp_path):
    two_labs(tmp_path / "solutions", 'export_functions("toy_mod", [double, triple])')
    with pytest.raises(
        ExportSourceError, match=r"lab01_a.ipynb, cell 2: no `def` for \['triple'\]"
    ):
        write_reference_exports(tmp_path / "out", tmp_path / "solutions")
