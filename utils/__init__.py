"""Helpers for the RNN workbook.

Small modules, one concern each, meant to be read:

- ``utils.env``      environment flags and folders (FAST mode, data cache, exports)
- ``utils.config``   seeds, device choice, ``setup()`` and ``pick()`` for notebooks
- ``utils.plot``     heatmaps, curves, gradient-norm plots; ``utils.diagrams`` LSTM and GRU cell diagrams
- ``utils.train``    one small training loop with a progress bar and clipping
- ``utils.checks``   self-checks that explain what went wrong: the generic checks,
  the diagnosis engine every lab uses, the weight references between the
  row-vector equations and ``nn.RNN``/``nn.LSTM``/``nn.GRU``, one module per lab
- ``utils.data``     datasets (verified cache, mirror, download), vocabularies, batching
- ``utils.tasks``    synthetic sequence tasks: adding, copy, reversal, counting, dates
- ``utils.widgets``  interactive explorations, one module per chapter
- ``utils.export``   lab functions written to (and imported from) ``exports/``
- ``utils.instructor``  lab generation, grading and release (instructors only;
  not part of the student bundle)

Importing ``utils`` itself imports nothing heavy (no torch, no NumPy): import
the module you need, e.g. ``from utils.config import setup``.
"""
