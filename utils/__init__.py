"""Helpers for the RNN workbook.

Small modules, one concern each, meant to be read:

- ``utils.config``  seeds, device choice, FAST mode, paths
- ``utils.plot``    heatmaps, curves, gradient-norm plots
- ``utils.train``   one small training loop with a progress bar and clipping
- ``utils.checks``  self-checks that explain what went wrong
- ``utils.data``    datasets (verified cache, mirror, download), vocabularies, batching
- ``utils.tasks``   synthetic sequence tasks: adding, copy, reversal, counting, dates
- ``utils.widgets`` interactive explorations (plain functions first, sliders second)
- ``utils.instructor``  lab generation, grading and release (instructors only;
  not part of the student bundle)
"""

from utils.config import DATA_DIR, FAST, ROOT, get_device, pick, seed_everything, setup

__all__ = ["DATA_DIR", "FAST", "ROOT", "get_device", "pick", "seed_everything", "setup"]
