"""Write functions from a notebook into an importable module.

A lab ends with its functions in a plain ``.py`` file, so they can be imported
and reused outside the notebook, by later labs too::

    from utils.export import export_functions, load_export

    export_functions("rnn_scratch", [rnn_step_forward, rnn_forward], header="import numpy as np")
    rnn_scratch = load_export("rnn_scratch")          # import it back (any later lab can)

A bare module name is written to the one exports folder, ``exports/`` in the
workbook (or ``$WORKBOOK_EXPORTS``, see :mod:`utils.env`; the grader points it at
each student's own exports), so a notebook in ``labs/`` and a graded copy of it
write to, and read from, the same place. A path (``"out/rnn_scratch.py"``) is
used as given.

The source of each function is read with :func:`inspect.getsource`, so the file
holds exactly what the notebook defined. A function that is still a stub
(it raises ``NotImplementedError``) is refused with a message naming it.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import sys
import textwrap
import types
from collections.abc import Callable, Sequence
from pathlib import Path

from utils import env


class ExportError(ValueError):
    """A function cannot be exported; the message says which one and why."""


def _label(fn) -> str:
    return getattr(fn, "__name__", None) or repr(fn)


def _raises_not_implemented(tree: ast.AST) -> bool:
    """True when the code has a ``raise NotImplementedError`` statement anywhere."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                return True
    return False


def function_source(fn: Callable) -> str:
    """The dedented source code of the plain function ``fn``.

    Raises :class:`ExportError` when ``fn`` is not a ``def`` function or its
    source cannot be found, and ``NotImplementedError`` when it is still a stub
    (its body raises ``NotImplementedError``: an unfinished exercise).
    """
    name = _label(fn)
    if not isinstance(fn, types.FunctionType):
        raise ExportError(
            f"cannot export {name!r}: it is a {type(fn).__name__}, not a function defined with `def`."
        )
    if fn.__name__ == "<lambda>":
        raise ExportError("cannot export a lambda: define the function with `def name(...):`.")
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as e:
        raise ExportError(
            f"cannot find the source code of {name!r} ({e}). Define it in a notebook cell or a "
            "file, and run that cell again."
        ) from e
    try:
        tree = ast.parse(source)
    except SyntaxError as e:  # e.g. a function defined inside another statement
        raise ExportError(f"the source of {name!r} does not parse on its own: {e}") from e
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if len(tree.body) != 1 or not defs or defs[0].name != fn.__name__:
        raise ExportError(
            f"the source found for {name!r} is not one `def {fn.__name__}(...)` block; "
            "define it at the top level of a cell."
        )
    if _raises_not_implemented(tree):
        raise NotImplementedError(
            f"{name} is still a stub (it raises NotImplementedError): finish the exercise, "
            "run its cell, then export again."
        )
    return source


def export_path(name: str | Path) -> Path:
    """Where the export ``name`` lives: ``exports/<name>.py`` for a bare module name
    (``"rnn_scratch"``), else ``name`` itself as a path."""
    text = str(name)
    if text.isidentifier():
        return env.exports_dir() / f"{text}.py"
    if text.endswith(".py") and text[:-3].isidentifier() and Path(text).name == text:
        return env.exports_dir() / text
    return Path(name)


def export_functions(
    path: str | Path,
    functions: Sequence[Callable],
    *,
    header: str = "",
    docstring: str | None = None,
) -> Path:
    """Write ``functions`` (in order) into the module ``path``; return the file's path.

    ``path``: a module name (``"rnn_scratch"``, written to the exports folder) or a
    file path.

    ``header`` goes after the module docstring (the imports the functions need,
    e.g. ``"import numpy as np"``). The file is only written when every function
    exports, and the result is checked to compile.
    """
    if callable(functions) or isinstance(functions, str):
        raise TypeError(
            "export_functions needs a list of functions, e.g. [rnn_step_forward, rnn_forward]"
        )
    functions = list(functions)
    if not functions:
        raise ValueError("export_functions needs at least one function")
    names = [_label(fn) for fn in functions]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ExportError(f"each function may be exported once; repeated: {', '.join(dupes)}")
    blocks = [function_source(fn) for fn in functions]
    path = export_path(path)
    write_module(path, names, blocks, header=header, docstring=docstring)
    try:
        where = path.resolve().relative_to(env.ROOT)
    except ValueError:
        where = path
    print(f"wrote {where}: {', '.join(names)}")
    return path


def write_module(
    path: Path,
    names: list[str],
    blocks: list[str],
    *,
    header: str = "",
    docstring: str | None = None,
) -> Path:
    """Write the function sources ``blocks`` (named ``names``) as one module at ``path``.

    Checked to compile first; written to a temporary file and renamed, so a
    reader (a later lab, a parallel test) never sees half a module.
    """
    doc = docstring or f"Functions exported from a notebook: {', '.join(names)}."
    parts = ['"""' + doc.replace('"""', "'''") + '"""']
    if header.strip():
        parts.append(textwrap.dedent(header).strip())
    text = "\n\n\n".join(parts + [b.rstrip() for b in blocks]) + "\n"
    compile(text, str(path), "exec")  # fails here, not at import time, if something is off
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_export(name: str) -> types.ModuleType:
    """Import the module a lab exported under ``name`` (e.g. ``"rnn_scratch"``).

    Later labs use this to build on your earlier functions; the error says which
    lab's export cell to run when the file is not there yet.
    """
    path = export_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"no exported module {name!r} at {path}: run the export cell of the lab that "
            f"writes it (for rnn_scratch: Lab 1, Part 7) first"
        )
    return load_module(path, Path(path).stem)


def load_module(path: str | Path, name: str | None = None) -> types.ModuleType:
    """Import the module file ``path`` afresh (re-reading it even if imported before)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the export cell first")
    name = name or path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}: is it a .py file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
