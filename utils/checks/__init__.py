"""Self-checks that explain what went wrong.

Every check either prints one ``[PASS] ...`` line or raises :class:`CheckError`
whose message says what was expected, what came, and the likely cause, e.g.::

    [FAIL] h_t has shape (3, 5), expected (5, 3). Did you transpose W_hh?

The package has four parts, each one file:

- :mod:`utils.checks.core`: the generic checks (shape, dtype, finiteness,
  closeness, gradients by relative error), importable from ``utils.checks``;
- :mod:`utils.checks.engine`: the diagnosis engine every lab's checks use:
  call a student's function safely on copies, unpack what it returns, compare
  with a reference and name the cause when the answer matches a known wrong
  variant;
- :mod:`utils.checks.references`: the weights of ``nn.RNN``, ``nn.LSTM`` and
  ``nn.GRU`` under the row-vector names of the equations (``W_xh``, ``W_hh``,
  ``b_h``, ...), and back;
- ``utils.checks.labNN``: one module per lab, holding its references and its
  list of known mistakes; never an answer to an exercise.
"""

from utils.checks.core import (
    CheckError,
    check_close,
    check_dtype,
    check_finite,
    check_gradient,
    check_scalar,
    check_shape,
    check_type,
    fresh_inputs,
    numerical_gradient,
    passed,
    rel_error,
    run_safely,
    seeded,
    to_numpy,
)

__all__ = [
    "CheckError",
    "check_close",
    "check_dtype",
    "check_finite",
    "check_gradient",
    "check_scalar",
    "check_shape",
    "check_type",
    "fresh_inputs",
    "numerical_gradient",
    "passed",
    "rel_error",
    "run_safely",
    "seeded",
    "to_numpy",
]
