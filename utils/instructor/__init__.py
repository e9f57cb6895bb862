"""Instructor tooling: generate labs from solutions, execute notebooks, grade, release.

Command line: ``python -m utils.instructor --help``.
"""

import sys

# jsonschema, under nbformat, builds about forty Earley parsers for the "iri" formats
# when rfc3987-syntax is installed (jupyter-events pulls it in): two seconds of CPU in
# every process that reads a notebook, and grading starts such processes by the dozen.
# No notebook schema uses an IRI format, so the instructor's processes do without it.
sys.modules.setdefault("rfc3987_syntax", None)
