"""The grader's sandbox: where students' code runs, and how the grader talks to it.

Kernel side (runs inside the sandbox, standard library and NumPy only; this package
is mounted there on its own): :mod:`.kernel` (the kernel and its function server),
:mod:`.policy` (limits, audit-hook policy, the lab's rules). Shared:
:mod:`.protocol` (run statuses, the data-only channel, stopping processes). Grader
side: :mod:`.isolation` (bubblewrap), :mod:`.commands` (the sandboxed processes'
command lines), :mod:`.remote` (tests call students' functions), :mod:`.watch`
(watchdog, output cap), :mod:`.limits`, :mod:`.worker` (one unit of grading work).

This file imports nothing: the kernel side must start without the workbook.
"""
