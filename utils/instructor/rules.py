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

from utils.instructor.sandbox.remote import RULE_WORDS


def _forbidden(module: str, forbid: list[str]) -> str | None:
    return next((p for p in forbid if module == p or module.startswith(p + ".")), None)


def imported_names(setup_source: str, forbid: list[str]) -> dict[str, str]:
    """Names the setup cell binds to something of a forbidden module -> that module."""
    lines = [ln for ln in setup_source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return {}
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                if hit := _forbidden(a.name, forbid):
                    names[(a.asname or a.name).split(".")[0]] = hit
        elif isinstance(node, ast.ImportFrom) and node.module:
            if hit := _forbidden(node.module, forbid):
                for a in node.names:
                    names[a.asname or a.name] = hit
    return names


def violations(exercise: str, source: str, setup_source: str, forbid: list[str]) -> str | None:
    """One sentence when the exercise's code uses a forbidden module by name, else None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    bound = imported_names(setup_source, forbid)
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if hit := _forbidden(a.name, forbid):
                    found.setdefault(hit, f"import {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if hit := _forbidden(node.module, forbid):
                found.setdefault(hit, f"from {node.module} import ...")
        elif isinstance(node, ast.Name) and node.id in bound:
            found.setdefault(bound[node.id], node.id)
    if not found:
        return None
    parts = []
    for module, what in found.items():
        words = RULE_WORDS.get(module, "uses {module} ({what}), which this lab does not allow")
        parts.append(f"{exercise} " + words.format(module=module, what=what))
    return "; ".join(parts) + "."
