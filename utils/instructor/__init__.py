"""Instructor tooling: generate labs from solutions, execute notebooks, grade, release.

Command line: ``python -m utils.instructor --help``.
"""
