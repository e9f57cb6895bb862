"""utils.export writes a notebook's functions into an importable module, and refuses stubs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.factories import ROOT
from utils.export import (
    ExportError,
    export_functions,
    export_path,
    function_source,
    load_export,
    load_module,
)


def scale_rows(X, w):
    """X: (N, D), w: (D,); returns (N, D)."""
    return X * np.asarray(w)[None, :]


def total(X, w):
    return float(scale_rows(X, w).sum())


def unfinished(X):
    # YOUR CODE HERE
    raise NotImplementedError()


def unfinished_in_a_branch(X):
    if X is None:
        return 0
    raise NotImplementedError


def make_inner():
    def inner(x):
        return x + 1

    return inner


def test_exported_module_imports_and_computes_the_same(tmp_path):
    path = export_functions(tmp_path / "mod_a.py", [scale_rows, total], header="import numpy as np")
    assert path == tmp_path / "mod_a.py"
    module = load_module(path)
    X = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(module.scale_rows(X, [1, 2, 3]), scale_rows(X, [1, 2, 3]))
    assert module.total(X, [1, 2, 3]) == total(X, [1, 2, 3])  # total calls scale_rows in the module
    text = path.read_text()
    assert text.startswith('"""Functions exported from a notebook: scale_rows, total."""')
    assert text.index("import numpy as np") < text.index("def scale_rows") < text.index("def total")
    assert '"""X: (N, D), w: (D,); returns (N, D)."""' in text  # docstrings are kept


def test_docstring_and_message(tmp_path, capsys):
    path = export_functions(
        tmp_path / "mod_b.py", [scale_rows], header="import numpy as np", docstring="My RNN."
    )
    assert path.read_text().startswith('"""My RNN."""')
    assert capsys.readouterr().out.strip() == f"wrote {path}: scale_rows"


def test_a_stub_is_refused_by_name_and_nothing_is_written(tmp_path):
    target = tmp_path / "mod_c.py"
    with pytest.raises(NotImplementedError, match="unfinished is still a stub"):
        export_functions(target, [scale_rows, unfinished])
    with pytest.raises(NotImplementedError, match="unfinished_in_a_branch is still a stub"):
        export_functions(target, [unfinished_in_a_branch])
    assert not target.exists()


@pytest.mark.parametrize(
    "thing, words",
    [
        (lambda x: x, "cannot export a lambda"),
        (len, "not a function defined with `def`"),
        (np.tanh, "not a function defined with `def`"),
        ("scale_rows", "needs a list of functions"),
    ],
    ids=["lambda", "builtin", "ufunc", "a name"],
)
def test_what_cannot_be_exported_gets_a_clear_error(tmp_path, thing, words):
    with pytest.raises((ExportError, TypeError), match=words):
        export_functions(tmp_path / "mod_d.py", [thing] if thing != "scale_rows" else thing)


def test_a_function_without_source_cannot_be_found(tmp_path):
    ns: dict = {}
    exec("def made_by_exec(x):\n    return x\n", ns)
    with pytest.raises(ExportError, match="cannot find the source code of 'made_by_exec'"):
        export_functions(tmp_path / "mod_e.py", [ns["made_by_exec"]])


def test_a_single_function_instead_of_a_list_is_refused(tmp_path):
    with pytest.raises(TypeError, match="needs a list of functions"):
        export_functions(tmp_path / "mod_f.py", scale_rows)
    with pytest.raises(ValueError, match="at least one function"):
        export_functions(tmp_path / "mod_f.py", [])


def test_a_function_exported_twice_is_refused(tmp_path):
    with pytest.raises(ExportError, match="repeated: scale_rows"):
        export_functions(tmp_path / "mod_g.py", [scale_rows, scale_rows])


def test_a_nested_function_is_dedented(tmp_path):
    source = function_source(make_inner())
    assert source.startswith("def inner(x):")
    module = load_module(export_functions(tmp_path / "mod_h.py", [make_inner()]))
    assert module.inner(1) == 2


def test_load_module_reads_the_file_again(tmp_path):
    path = tmp_path / "mod_i.py"
    path.write_text("VALUE = 1\n")
    assert load_module(path).VALUE == 1
    path.write_text("VALUE = 2\n")
    assert load_module(path).VALUE == 2
    assert sys.modules["mod_i"].VALUE == 2  # `import mod_i` elsewhere sees the new version


def test_load_module_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the export cell first"):
        load_module(tmp_path / "missing.py")
    bad = tmp_path / "mod_j.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(RuntimeError, match="boom"):
        load_module(bad)
    assert "mod_j" not in sys.modules


def test_a_module_name_goes_to_the_one_exports_folder(tmp_path, monkeypatch, capsys):
    """Labs export by name into $WORKBOOK_EXPORTS (default exports/); later labs load by name."""
    monkeypatch.setenv("WORKBOOK_EXPORTS", str(tmp_path / "ex"))
    path = export_functions("mod_c", [scale_rows], header="import numpy as np")
    assert path == tmp_path / "ex" / "mod_c.py" and path.is_file()
    assert export_path("mod_c.py") == path
    assert export_path("sub/mod_c.py") == Path("sub/mod_c.py")
    module = load_export("mod_c")
    assert module.scale_rows(np.ones((2, 2)), np.array([1.0, 2.0])).sum() == 6.0
    with pytest.raises(FileNotFoundError, match="run the export cell"):
        load_export("not_exported_yet")


def test_the_default_exports_folder_is_in_the_workbook(monkeypatch):
    monkeypatch.delenv("WORKBOOK_EXPORTS", raising=False)
    assert export_path("rnn_scratch") == ROOT / "exports" / "rnn_scratch.py"
    monkeypatch.setenv("WORKBOOK_EXPORTS", "")
    assert export_path("rnn_scratch") == ROOT / "exports" / "rnn_scratch.py"
