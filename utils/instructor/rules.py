"""A lab's rules, read from the student's code before it runs (the grader's first look).

The rules themselves are in the solution's metadata (:meth:`.assemble.Lab.forbid`):
modules an exercise's functions may not use, ``torch`` in a NumPy-only lab and the
checks' own code in every lab. The kernel enforces them where the function runs
(:class:`.sandbox.policy.RuleTracer`); this module finds what the source says
outright, so the feedback can name it even when the function never ran:
``import torch`` in the exercise's cell, or a name the setup cell imported from a
forbidden module (``nn``, ``F``, ``numerical_gradient``, ...).
"""

from __future__ import annotations

import ast

from utils.instructor.sandbox.functions import python_of, setup_imports
from utils.instructor.sandbox.remote import RULE_WORDS


def _forbidden(module: str, forbid: list[str]) -> str | None:
    return next((p for p in forbid if module == p or module.startswith(p + ".")), None)


def imported_names(setup_source: str, forbid: list[str]) -> dict[str, str]:
    """Names the setup cell binds to something of a forbidden module -> that module."""
    names = {}
    for node in setup_imports(setup_source):
        if isinstance(node, ast.Import):
            for a in node.names:
                if hit := _forbidden(a.name, forbid):
                    names[(a.asname or a.name).split(".")[0]] = hit
        elif isinstance(node, ast.ImportFrom) and node.module:
            if hit := _forbidden(node.module, forbid):
                for a in node.names:
                    names[a.asname or a.name] = hit
    return names


def _bound_in(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names a function binds itself: arguments, assignments, loop targets, imports, defs."""
    names = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node is not fn
        ):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def violations(exercise: str, source: str, setup_source: str, forbid: list[str]) -> str | None:
    """One sentence when a function the exercise's cell defines uses a forbidden module by
    name (an import in it, or a free name bound to such a module by the setup cell or by
    an import at the top of the cell), else None. Code outside the functions (a comparison
    with torch after the function, say) is the student's business."""
    try:
        tree = ast.parse(python_of(source) or "")
    except SyntaxError:
        return None
    bound = imported_names(setup_source, forbid)
    for node in tree.body:  # imports at the top of the cell bind names too
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound.update(imported_names(ast.unparse(node), forbid))
    found: dict[str, str] = {}
    for fn in [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
        local = _bound_in(fn)
        for node in ast.walk(fn):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if hit := _forbidden(a.name, forbid):
                        found.setdefault(hit, f"import {a.name}")
            elif isinstance(node, ast.ImportFrom) and node.module:
                if hit := _forbidden(node.module, forbid):
                    found.setdefault(hit, f"from {node.module} import ...")
            elif (
                isinstance(node, ast.Name)
                and isinstance(node.ctx, ast.Load)
                and node.id in bound
                and node.id not in local
            ):
                found.setdefault(bound[node.id], node.id)
    if not found:
        return None
    parts = []
    for module, what in found.items():
        words = RULE_WORDS.get(module, "uses {module} ({what}), which this lab does not allow")
        parts.append(f"{exercise} " + words.format(module=module, what=what))
    return "; ".join(parts) + "."
