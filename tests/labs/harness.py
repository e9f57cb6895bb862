"""Mutation testing of a lab's checks: every lab's test file uses this.

A lab's checks must accept the solution and reject broken code with a message
that names the mistake. A test file declares the broken code as a list of
:class:`Mutation` (name, check, how to build the wrong function from the
correct ones, the words the failure must contain) and hands it to
:func:`parametrize`; :func:`run_mutation` does the rest. :func:`garbage` adds
the standard broken variants of any function (returns None, NaN, the wrong
type or shape, raises, changes its input, is still a stub).

The correct functions come from the solution notebook itself
(:func:`load_solution` executes its exercise cells), so the mutations follow the
solution when it changes; a text mutation must match exactly once.

    from tests.labs.harness import Mutation, edit, garbage, load_solution, parametrize, run_mutation

    SOLUTION = load_solution(ROOT / "solutions" / "lab01_rnn_from_scratch.ipynb")
    MUTATIONS = [
        Mutation("missing tanh", "rnn_step_forward",
                 edit("rnn_step_forward", "np.tanh(a)", "a"), "before tanh"),
        *garbage(CHECKS),
    ]

    @parametrize(MUTATIONS)
    def test_check_rejects(mutation):
        run_mutation(mutation, CHECKS, SOLUTION)
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import pytest

from utils.checks import CheckError
from utils.instructor.notebook import is_exercise

Builder = Callable[["Solution"], Callable]


class Solution(Mapping):
    """The namespace of a solution notebook's exercise cells, and their sources.

    ``solution["rnn_forward"]`` is the correct function; :meth:`mutated` returns
    a function from the same cells with one piece of text replaced.
    """

    def __init__(self, sources: list[str], *, filename: str, preamble: str):
        self.sources, self.filename, self.preamble = list(sources), filename, preamble
        self.extras: dict = {}  # more names for the namespace, set before it is built
        self.aliases: dict[str, str] = {}  # new name -> a name the cells define
        self._namespace: dict | None = None
        self.accepted: set[str] = set()  # checks already seen to pass the solution

    @property
    def namespace(self) -> dict:
        """Built at first use, not at import: pytest imports every test module in each
        of its processes to collect them, and a preamble may load a dataset."""
        if self._namespace is None:
            ns = {**self._execute(self.sources), **self.extras}
            self._namespace = {**ns, **{new: ns[old] for new, old in self.aliases.items()}}
        return self._namespace

    def _execute(self, sources: list[str]) -> dict:
        ns: dict = {"__name__": f"solution:{Path(self.filename).stem}"}
        exec(compile(self.preamble, self.filename, "exec"), ns)
        for src in sources:
            exec(compile(src, self.filename, "exec"), ns)
        return ns

    def __getitem__(self, name: str):
        return self.namespace[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.namespace)

    def __len__(self) -> int:
        return len(self.namespace)

    def mutated(self, name: str, old: str, new: str) -> Callable:
        """The function ``name`` from the exercise cells with ``old`` replaced by ``new``.

        ``old`` must occur exactly once in all the exercise cells together;
        ``name`` may be a caller of the changed function (the cells run again,
        so a caller picks up the changed callee).
        """
        hits = [(i, src.count(old)) for i, src in enumerate(self.sources) if old in src]
        assert [n for _, n in hits] == [1], f"mutation target not found exactly once: {old!r}"
        sources = list(self.sources)
        sources[hits[0][0]] = sources[hits[0][0]].replace(old, new)
        return self._execute(sources)[name]


def solution_sources(path: Path | str) -> list[str]:
    """The sources of the exercise cells (nbgrader ``solution``) of a notebook, in order."""
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and is_exercise(c)]


def load_solution(path: Path | str, *, preamble: str = "import numpy as np") -> Solution:
    """Execute the exercise cells of the notebook ``path`` (after ``preamble``, the
    imports the lab's setup cell provides) and return them as a :class:`Solution`."""
    return Solution(solution_sources(path), filename=str(path), preamble=preamble)


@dataclass(frozen=True)
class Mutation:
    """Broken code a check must reject.

    name: the test id; check: the key of the check in the lab's checks dict;
    build: makes the wrong function from the :class:`Solution`;
    expect: words the message must contain (a tuple: any one of them);
    raises: the exception expected (``CheckError``, or ``NotImplementedError``
    for a stub, which the checks let through).
    """

    name: str
    check: str
    build: Builder
    expect: str | tuple[str, ...]
    raises: type[BaseException] = CheckError


def edit(name: str, old: str, new: str) -> Builder:
    """A builder: the function ``name`` with ``old`` replaced by ``new`` in the solution."""
    return lambda solution: solution.mutated(name, old, new)


def text(name: str, old: str, new: str, check: str, words) -> Mutation:
    """A mutation that replaces ``old`` by ``new`` in the solution and runs the check
    ``check`` on the function of that name (which may call the changed function)."""
    return Mutation(name, check, edit(check, old, new), words)


def edits(name: str, *pairs: tuple[str, str]) -> Builder:
    """A builder: the function ``name`` with several pieces of text replaced (each must
    occur exactly once in all the exercise cells together)."""

    def build(solution: Solution) -> Callable:
        sources = list(solution.sources)
        for old, new in pairs:
            hits = [i for i, src in enumerate(sources) if old in src]
            assert len(hits) == 1 and sources[hits[0]].count(old) == 1, old
            sources[hits[0]] = sources[hits[0]].replace(old, new)
        return solution._execute(sources)[name]

    return build


def returns(transform: Callable) -> Callable[[Callable], Callable]:
    """A wrapper for :func:`wrap`: the function's output passed through ``transform``."""
    return lambda fn: lambda *args: transform(fn(*args))


def wrap(name: str, wrapper: Callable[[Callable], Callable]) -> Builder:
    """A builder: ``wrapper(correct function name)``."""
    return lambda solution: wrapper(solution[name])


def assert_accepts(check: Callable, fn: Callable, name: str | None = None, **sizes) -> str:
    """Run ``check(fn, **sizes)``; it must print ``[PASS]`` lines only. Returns the output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        check(fn, **sizes)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines and all(ln.startswith("[PASS]") for ln in lines), text
    if name is not None:
        assert lines[0].startswith(f"[PASS] {name}:"), text
    return text


def run_mutation(mutation: Mutation, checks: Mapping[str, Callable], solution: Solution) -> str:
    """The check accepts the correct function and rejects the mutation with the
    expected words; returns the failure message."""
    check = checks[mutation.check]
    if mutation.check not in solution.accepted:
        assert_accepts(check, solution[mutation.check])
        solution.accepted.add(mutation.check)
    fn = mutation.build(solution)
    with pytest.raises(mutation.raises) as info:
        check(fn)
    message = str(info.value)
    if mutation.raises is CheckError:
        assert message.startswith("[FAIL]"), message
    expect = (mutation.expect,) if isinstance(mutation.expect, str) else mutation.expect
    assert any(words in message for words in expect), message
    return message


def parametrize(mutations: Iterable[Mutation]):
    """``@parametrize(MUTATIONS)``: one test per mutation, named by it."""
    mutations = list(mutations)
    names = [m.name for m in mutations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"mutation names must be unique: {duplicates}"
    return pytest.mark.parametrize("mutation", mutations, ids=names)


# ------------------------------------------------------------------ standard garbage


def _nan_like(x):
    if isinstance(x, np.ndarray):
        return np.full(x.shape, np.nan)
    if isinstance(x, dict):
        return {k: _nan_like(v) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return type(x)(_nan_like(v) for v in x)
    return float("nan") if isinstance(x, float) else x


def _wrong_shape(x):
    """A scalar becomes two numbers; an array (or a dict of them) gets one more axis."""
    if isinstance(x, dict):
        return {k: _wrong_shape(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return x[..., None]
    return np.array([x, x])


def _first_array(out) -> int:
    """The position of the first output that holds numbers (skipping ``None``)."""
    for i, x in enumerate(out):
        if isinstance(x, np.ndarray | dict | float | int):
            return i
    return 0


def _changed_in_place(args) -> None:
    """Change the first float array argument (or the arrays of the first dict) in place."""
    for a in args:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            a *= 0.5
            return
        if isinstance(a, dict) and a:
            for v in a.values():
                if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                    v *= 0.5
            return
    raise AssertionError("no float array argument to change in place")


def _returns_none(fn):
    def wrapper(*args):
        fn(*args)

    return wrapper


def _returns_nan(fn):
    def wrapper(*args):
        out = fn(*args)
        i = _first_array(out)
        return (*out[:i], _nan_like(out[i]), *out[i + 1 :])

    return wrapper


def _raises_value_error(fn):
    def wrapper(*args):
        raise ValueError("operands could not be broadcast together")

    return wrapper


def _returns_wrong_type(fn):
    def wrapper(*args):
        return "not a result"

    return wrapper


def _returns_short_tuple(fn):
    def wrapper(*args):
        return fn(*args)[:-1]

    return wrapper


def _returns_wrong_shape(fn):
    def wrapper(*args):
        out = fn(*args)
        return (_wrong_shape(out[0]), *out[1:])

    return wrapper


def _changes_its_input(fn):
    def wrapper(*args):
        out = fn(*copy.deepcopy(args))
        _changed_in_place(args)
        return out

    return wrapper


def _stub(fn):
    def wrapper(*args):
        raise NotImplementedError()

    wrapper.__name__ = fn.__name__
    return wrapper


GARBAGE = [
    # (id, wrapper, words expected in the message, exception)
    ("returns None", _returns_none, ("returned None", "Did it forget to `return`?"), CheckError),
    ("returns NaN", _returns_nan, ("non-finite",), CheckError),
    ("raises ValueError", _raises_value_error,
     ("raised ValueError: operands could not be broadcast together",), CheckError),
    ("returns a str", _returns_wrong_type, ("returned a str",), CheckError),
    ("returns too few values", _returns_short_tuple, ("values, expected",), CheckError),
    ("returns the wrong shape", _returns_wrong_shape, ("has shape", "one number"), CheckError),
    ("changes its input in place", _changes_its_input, ("in place",), CheckError),
    ("is still a stub", _stub, ("{name} is not implemented yet",), NotImplementedError),
]  # fmt: skip


def garbage(names: Iterable[str]) -> list[Mutation]:
    """The standard broken variants of each function in ``names`` (checked by the
    check of the same name): :data:`GARBAGE` (``{name}`` in the words is the name)."""
    return [
        Mutation(
            f"{name}: {gid}",
            name,
            wrap(name, wrapper),
            tuple(w.replace("{name}", name) for w in words),
            raises,
        )
        for name in names
        for gid, wrapper, words, raises in GARBAGE
    ]


STANDARD = ("returns None", "raises ValueError", "returns a str", "is still a stub")
"""The garbage that any function, whatever it returns, must be rejected for."""


def standard(names: Iterable[str]) -> list[Mutation]:
    """:data:`STANDARD` variants of each function in ``names`` (checked by the check of the
    same name), with the words any of the engine's messages for them contain."""
    words = {"returns None": ("returned None", "forget to `return`", "is None"),
             "returns a str": ("returned a str", "is a str")}  # fmt: skip
    return [
        Mutation(f"{name}: {gid}", name, wrap(name, wrapper),
                 tuple(w.replace("{name}", name) for w in words.get(gid, ws)), raises)
        for name in names
        for gid, wrapper, ws, raises in GARBAGE
        if gid in STANDARD
    ]  # fmt: skip


# ------------------------------------------------------------------ a lab's test cells


def notebook_test_cells(nb) -> dict[str, str]:
    """The sources of a solution notebook's test cells, by grade id."""
    from utils.instructor.notebook import grade_id, is_test

    return {grade_id(c): c.source for c in nb.cells if is_test(c)}


def check_calls(cells: Mapping[str, str], module) -> int:
    """Bind every ``check_*(...)`` call of the test cells to the signature of the function of
    that name in the lab's check ``module`` (so a misspelled argument fails here, not in
    the grader); every cell has hidden tests. Returns the number of calls."""
    import ast
    import inspect

    calls = 0
    for gid, source in cells.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "").startswith("check_"):
                fn = getattr(module, node.func.id)
                inspect.signature(fn).bind(*node.args, **{k.arg: k.value for k in node.keywords})
                calls += 1
        assert "# BEGIN HIDDEN TESTS" in source, gid
    return calls


def run_test_cell(source: str, solution: Solution, module, name: str = "test cell") -> list[str]:
    """Run a test cell as the grader does (hidden tests included) on the solution's
    functions and the check ``module``'s names; returns the lines it printed."""
    ns = {**solution.namespace, **{n: getattr(module, n) for n in module.__all__}}
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(source, name, "exec"), ns)  # noqa: S102
    return buffer.getvalue().splitlines()
