"""Assemble the notebook that grades one submission, from the solution notebook.

Every cell of the graded notebook comes from the solution (setup, prose, the
visible and hidden tests) except the exercise cells, whose source is the
student's: found by nbgrader ``grade_id``, or, when a cell lost its metadata, by
the names it defines. Code cells the student added run after the cell they
followed. Also here: reading a submission safely, the written answers an
instructor grades by hand, and the review flags of the gradebook.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from utils.instructor import labgen
from utils.instructor.notebook import ANSWER_STUB, nbgrader_meta
from utils.instructor.report import num as _num

# Code worth a look by the instructor (the gradebook's review column): ways to
# tamper with error reporting or the kernel, to reach the network or other files.
REVIEW = {
    name: re.compile(pattern)
    for name, pattern in {
        "get_ipython": r"\bget_ipython\b",
        "excepthook": r"\bexcepthook\b",
        "showtraceback": r"\b_?showtraceback\b",
        "set_custom_exc": r"\bset_custom_exc\b",
        "ast_transformers": r"\b(ast|input)_transformers",
        "run_cell": r"\brun_cell\b|\bdo_execute\b",
        "ctypes": r"\bctypes\b",
        "socket": r"\bsocket\b|\burllib\b|\brequests\b|\bhttp\.client\b",
        "subprocess": r"\bsubprocess\b|\bos\.(system|exec\w*|spawn\w*|fork|popen)\b",
        "os._exit": r"\bos\._exit\b",
        "sys.modules": r"\bsys\.modules\b|\bimportlib\b|\bbuiltins\b",
        "solutions": r"\bsolutions\b",
    }.items()
}

# --------------------------------------------------------------------------- labs


@dataclass
class GradeCell:
    grade_id: str
    points: float
    index: int  # in the solution notebook


@dataclass
class Lab:
    """A solution notebook, ready to grade against."""

    name: str  # file name, e.g. lab01_rnn_from_scratch.ipynb
    template: nbformat.NotebookNode  # the solution without outputs
    starter: nbformat.NotebookNode  # what students started from
    grade_cells: list[GradeCell]
    written: list[GradeCell] = field(default_factory=list)  # answers graded by hand

    @property
    def setup_source(self) -> str:
        """The setup cell (the first code cell): its imports are the tests' namespace."""
        return next((c.source for c in self.template.cells if c.cell_type == "code"), "")

    @property
    def exercises(self) -> dict[str, int]:
        """Exercise grade id -> index of its cell in the solution."""
        return {
            m["grade_id"]: i
            for i, c in enumerate(self.template.cells)
            if c.cell_type == "code" and (m := nbgrader_meta(c)).get("solution")
        }

    def forbid(self, exercise: str | None = None) -> list[str]:
        """Modules the student's functions may not use: the lab's rule (notebook metadata
        ``workbook.forbid``, e.g. ``["torch"]`` for NumPy only), or an exercise's own
        (its cell's ``workbook.forbid``); the checks' code is forbidden in every lab."""
        rule = self.template.metadata.get("workbook", {}).get("forbid", [])
        if exercise is not None and exercise in self.exercises:
            cell = self.template.cells[self.exercises[exercise]]
            rule = cell.metadata.get("workbook", {}).get("forbid", rule)
        return sorted({*rule, "utils.checks"})

    @property
    def kernel_functions(self) -> list[str]:
        """Functions the tests call in the notebook's kernel, after the cells above them
        ran (notebook metadata ``workbook.kernel_functions``): those that use what the
        notebook trained, e.g. a ``predict`` reading the trained ``model``. The others
        are rebuilt from their source in the function server."""
        names = self.template.metadata.get("workbook", {}).get("kernel_functions", [])
        return sorted({n for n in names if isinstance(n, str) and n.isidentifier()})

    def exercise_for_test(self, index: int) -> str | None:
        """The exercise a test cell (solution index) grades: the last exercise above it."""
        above = [(i, g) for g, i in self.exercises.items() if i < index]
        return max(above)[1] if above else None

    @property
    def max_total(self) -> float:
        return sum(g.points for g in self.grade_cells)

    @property
    def grade_ids(self) -> list[str]:
        return [g.grade_id for g in self.grade_cells]


def load_lab(path: Path) -> Lab:
    """Read and validate solution notebook ``path`` (raises labgen.LabSourceError)."""
    nb = nbformat.read(path, as_version=4)
    starter = labgen.strip_solutions(nb, path)  # also validates the markers and metadata
    template = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in template.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("tags", None)  # no raises-exception: the grader allows errors anyway
    grade_cells = [
        GradeCell(m["grade_id"], float(m.get("points", 0)), i)
        for i, c in enumerate(template.cells)
        if c.cell_type == "code" and (m := nbgrader_meta(c)).get("grade")
    ]
    written = [
        GradeCell(m["grade_id"], float(m.get("points", 0)), i)
        for i, c in enumerate(template.cells)
        if c.cell_type == "markdown" and (m := nbgrader_meta(c)).get("grade")
    ]
    return Lab(path.name, template, starter, grade_cells, written)


WRITTEN = "Written answer"  # how each note quoting a written answer starts


def written_answers(lab: Lab, student: nbformat.NotebookNode) -> list[str]:
    """Notes that quote the student's written answers, which an instructor grades by hand."""
    answers = {
        nbgrader_meta(c).get("grade_id"): c.source.strip()
        for c in student.cells
        if c.get("cell_type") == "markdown"
    }
    notes = []
    for w in lab.written:
        text = answers.get(w.grade_id) or ""
        if not text or text == ANSWER_STUB:
            text = "(no answer)"
        quoted = "\n".join("> " + line for line in text.splitlines())
        notes.append(
            f"{WRITTEN} `{w.grade_id}` ({_num(w.points)} points, graded by hand, "
            f"not in the score above):\n\n{quoted}\n"
        )
    return notes


# ----------------------------------------------------------------- graded notebook


def read_submission(data: bytes) -> tuple[nbformat.NotebookNode | None, str]:
    """Parse a submitted file; returns ``(notebook, "")`` or ``(None, why not)``."""
    if not data.strip():
        return None, "the file is empty"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "the file is not UTF-8 text (is it a notebook?)"
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        return None, f"the file is not valid JSON ({e.msg} at line {e.lineno})"
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", raw.get("worksheets")), list):
        return None, "the file is JSON but not a Jupyter notebook (no cells)"
    try:
        nb = nbformat.reads(text, as_version=4)
        for cell in nb.cells:
            if not isinstance(cell.get("source", ""), str) or "cell_type" not in cell:
                raise ValueError("a cell without source or type")
            cell.setdefault("metadata", nbformat.NotebookNode())
    except Exception as e:  # noqa: BLE001 - any parse failure means unreadable
        return None, f"the file is not a readable Jupyter notebook ({type(e).__name__}: {e})"
    return nb, ""


def _defined_names(source: str) -> set[str]:
    """Top-level names a cell defines (functions, classes, assignments)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        found = re.findall(r"^(?:def|class)\s+(\w+)", source, re.M)
        return set(found)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _norm(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


@dataclass
class GradedNotebook:
    nb: nbformat.NotebookNode
    grade_cells: dict[int, GradeCell]  # index in nb -> grade cell
    exercise_of: dict[int, str]  # index in nb of an exercise cell -> its grade_id
    notes: list[str] = field(default_factory=list)
    review: str = ""  # constructs in the student's code an instructor may want to look at
    foreign: bool = False  # no cell of the submission comes from the lab
    origin: dict[int, int] = field(default_factory=dict)  # index in nb -> index in the solution
    sources: dict[str, str] = field(default_factory=dict)  # exercise grade id -> student's code
    added: list[str] = field(default_factory=list)  # code cells the student added


def build_graded(lab: Lab, student: nbformat.NotebookNode) -> GradedNotebook:
    """The notebook to run: the solution's cells with the student's exercise code."""
    template, starter = lab.template, lab.starter
    s_cells = student.cells
    by_id: dict[str, int] = {}
    for j, c in enumerate(s_cells):
        gid = nbgrader_meta(c).get("grade_id")
        if gid and gid not in by_id:
            by_id[gid] = j
    starter_sources = {_norm(c.source) for c in starter.cells} | {
        _norm(c.source) for c in template.cells
    }
    used: set[int] = set()
    notes: list[str] = []
    origin: dict[int, int] = {}  # student cell -> template cell it stands for
    sources: dict[int, str] = {}  # template cell -> student source
    for i, cell in enumerate(template.cells):
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        if gid and gid in by_id:
            origin[by_id[gid]] = i
        if not meta.get("solution"):
            continue
        j = by_id.get(gid)
        if j is not None and s_cells[j].cell_type == cell.cell_type:
            sources[i], used = s_cells[j].source, used | {j}
            continue
        names = _defined_names(starter.cells[i].source) if cell.cell_type == "code" else set()
        candidates = [
            k
            for k, c in enumerate(s_cells)
            if c.cell_type == "code"
            and k not in used
            and not nbgrader_meta(c)
            and names
            and names <= _defined_names(c.source)
        ]
        if candidates:
            k = candidates[-1]
            sources[i], used = s_cells[k].source, used | {k}
            origin[k] = i
            notes.append(
                f"Exercise `{gid}`: the cell had lost its grader metadata; it was found "
                f"by the names it defines ({', '.join(sorted(names))})."
            )
        else:
            sources[i] = starter.cells[i].source
            notes.append(f"Exercise `{gid}`: no answer cell found; graded as not attempted.")
    for j, c in enumerate(s_cells):
        if j not in origin and _norm(c.source) in starter_sources and c.cell_type == "code":
            for i, t in enumerate(starter.cells):
                if _norm(t.source) == _norm(c.source):
                    origin[j] = i
                    break
    # Code the student added: cells with no grader metadata that are not in the lab.
    extra: dict[int, list[int]] = {}
    anchor = -1
    for j, c in enumerate(s_cells):
        if j in origin:
            anchor = origin[j]
        elif (
            c.cell_type == "code"
            and j not in used
            and not nbgrader_meta(c)
            and c.source.strip()
            and _norm(c.source) not in starter_sources
        ):
            extra.setdefault(anchor, []).append(j)
    cells, grade_cells, exercise_of, graded_origin = [], {}, {}, {}

    def add_extra(at: int) -> None:
        for j in extra.get(at, []):
            cells.append(nbformat.v4.new_code_cell(s_cells[j].source))

    add_extra(-1)
    for i, cell in enumerate(template.cells):
        new = nbformat.from_dict(json.loads(json.dumps(cell)))
        meta = nbgrader_meta(cell)
        if i in sources:
            new.source = sources[i]
            exercise_of[len(cells)] = meta["grade_id"]
        if cell.cell_type == "code" and meta.get("grade"):
            grade_cells[len(cells)] = next(g for g in lab.grade_cells if g.index == i)
        graded_origin[len(cells)] = i
        cells.append(new)
        add_extra(i)
    if any(extra.values()):
        notes.append(f"{sum(map(len, extra.values()))} code cell(s) you added also ran.")
    graded = nbformat.v4.new_notebook(cells=cells, metadata=template.metadata)
    student_code = [*sources.values(), *(s_cells[j].source for js in extra.values() for j in js)]
    foreign = not origin  # no grade id, no cell of the lab, no exercise found by name
    by_gid = {nbgrader_meta(template.cells[i])["grade_id"]: src for i, src in sources.items()}
    added = [s_cells[j].source for js in extra.values() for j in js]
    return GradedNotebook(
        graded,
        grade_cells,
        exercise_of,
        notes,
        review_flags(student_code),
        foreign,
        graded_origin,
        by_gid,
        added,
    )


def review_flags(sources: list[str]) -> str:
    """The constructs of ``REVIEW`` found in the student's code, ``"; "``-separated."""
    text = "\n".join(sources)
    return "; ".join(sorted({name for name, pattern in REVIEW.items() if pattern.search(text)}))
