"""Model code the chapters develop, as importable modules (generated; see below).

Each module here is generated from the cells of one chapter tagged
``export:NAME`` (``make modules``; :mod:`utils.instructor.modules`), so what you
import is exactly what the chapter showed you:

- :mod:`utils.models.masking` (Chapter 5): masks and pooling for padded batches,
  the last states of ``nn.RNN``/``nn.GRU``/``nn.LSTM``, locked dropout.
"""
