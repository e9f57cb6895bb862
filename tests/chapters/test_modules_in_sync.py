"""utils/models/ is exactly what the chapters' cells tagged export:NAME generate."""

from __future__ import annotations

import shutil

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell

from tests.factories import ROOT, write_notebook
from utils.instructor import modules


def test_every_module_is_what_its_chapter_generates():
    assert modules.sources(), "no chapter cell is tagged export:NAME"
    assert modules.diff_modules() == []


@pytest.fixture
def copy(tmp_path):
    """A copy of the chapters and of utils/models/ to break."""
    nbs, out = tmp_path / "notebooks", tmp_path / "models"
    for path in modules.sources().values():
        nbs.mkdir(exist_ok=True)
        shutil.copy(path, nbs / path.name)
    shutil.copytree(modules.MODULES_DIR, out, ignore=shutil.ignore_patterns("__pycache__"))
    assert modules.diff_modules(nbs, out) == []
    return nbs, out


def test_a_hand_edit_a_missing_and_an_orphan_module_are_caught(copy):
    nbs, out = copy
    name = next(iter(modules.sources()))
    path = out / f"{name}.py"
    path.write_text(path.read_text() + "\nx = 1\n")
    (out / "orphan.py").write_text('"""Generated from nowhere."""\n')
    problems = modules.diff_modules(nbs, out)
    assert any("differs from" in p for p in problems) and any("orphan" in p for p in problems)
    path.unlink()
    assert any("missing" in p for p in modules.diff_modules(nbs, out))
    modules.write_modules(nbs, out)
    assert modules.diff_modules(nbs, out) == []  # the orphan, marked generated, is removed


def test_a_changed_notebook_is_caught_until_make_modules(copy):
    nbs, out = copy
    name, source = next(iter(modules.sources().items()))
    nb = nbformat.read(nbs / source.name, as_version=4)
    cell = next(c for c in nb.cells if f"export:{name}" in c.metadata.get("tags", []))
    cell.source += "\n\n\nANSWER = 42"
    nbformat.write(nb, nbs / source.name)
    assert modules.diff_modules(nbs, out)
    modules.write_modules(nbs, out)
    assert "ANSWER = 42" in (out / f"{name}.py").read_text()


def test_exported_cells_hold_definitions_only(tmp_path):
    nb = write_notebook(
        tmp_path / "nbs" / "99_x.ipynb",
        [
            new_code_cell("import torch"),
            new_code_cell("def f(x):\n    return torch.relu(x)", metadata={"tags": ["export:x"]}),
            new_code_cell("print(f(torch.ones(1)))", metadata={"tags": ["export:x"]}),
        ],
    )
    with pytest.raises(modules.ModuleSourceError, match="cell 2 .*definitions only"):
        modules.module_text(nb, "x")


def test_the_module_imports_what_the_cells_use_from_the_notebook(tmp_path):
    nb = write_notebook(
        tmp_path / "nbs" / "99_y.ipynb",
        [
            new_code_cell("%matplotlib inline\nimport math\nimport numpy as np\nimport torch"),
            new_code_cell('def g(x):\n    """Doc."""\n    return torch.tensor(math.pi) * x', metadata={"tags": ["export:y"]}),
        ],
    )  # fmt: skip
    text = modules.module_text(nb, "y")
    assert "import math\n\nimport torch\n" in text and "numpy" not in text
    namespace: dict = {}
    exec(compile(text, "y.py", "exec"), namespace)
    assert float(namespace["g"](2.0)) == pytest.approx(6.2831853)


def test_masking_module_works_on_a_padded_batch():
    from utils.models.masking import last_states, last_valid, length_mask, masked_mean

    assert (ROOT / "utils" / "models" / "masking.py").is_file()
    mask = length_mask([2, 3])
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    outputs = torch.arange(12.0).view(2, 3, 2)
    assert last_valid(outputs, [2, 3]).tolist() == [[2.0, 3.0], [10.0, 11.0]]
    assert masked_mean(outputs, mask).tolist() == [[1.0, 2.0], [8.0, 9.0]]
    h_n = torch.arange(8.0).view(4, 1, 2)  # 2 layers x 2 directions, N = 1, H = 2
    assert last_states(h_n, num_layers=2, bidirectional=True).tolist() == [[4.0, 5.0, 6.0, 7.0]]
