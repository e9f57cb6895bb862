"""The limits of one graded run (shared by the worker, the watchdog and the grader)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Limits:
    """Limits for one submission's kernel."""

    cell_timeout: float = 60.0
    """seconds any cell may run; a cell of the lab gets ``cell_factor`` times the
    solution's time for it when that is longer"""
    cell_factor: float = 10.0
    total_timeout: float = 1800.0
    """seconds the whole notebook may run"""
    memory_mb: int = 8192
    """address-space cap of the kernel (RLIMIT_AS) and resident-memory cap (MiB); torch
    reserves far more address space than it uses (Lab 7's tagger, 2 GB resident, cannot
    allocate under a 4096 MiB address-space cap)"""
    fast: bool = False
    """run the kernel in FAST mode (``WORKBOOK_FAST=1``)"""
    processes: int = 4096
    """processes and threads the kernel's user may have (RLIMIT_NPROC)"""

    def for_cell(self, solution_seconds: float | None) -> float:
        if solution_seconds is None:
            return self.cell_timeout
        return max(self.cell_timeout, self.cell_factor * solution_seconds)
