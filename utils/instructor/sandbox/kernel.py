"""The sandboxed kernel: an IPython kernel under the grader's limits.

Started by the worker as ``python -m <package>.kernel -f {connection_file}`` (inside
bubblewrap the package is mounted read-only on its own, away from the workbook).
Before IPython starts it reads its configuration from ``$WORKBOOK_SANDBOX`` (JSON,
then removed from the environment) and applies the limits and the policy of
:mod:`.policy`. It runs the notebook's cells, never a test: the grader calls the
student's functions in another process (:mod:`.functions`).
"""

from __future__ import annotations

import json
import os
import sys

from . import policy

ENV_VAR = "WORKBOOK_SANDBOX"


def main() -> None:
    """Start an IPython kernel under the limits in ``$WORKBOOK_SANDBOX``."""
    config = json.loads(os.environ.pop(ENV_VAR, "{}") or "{}")
    # A kernel imports from its working folder first, as Jupyter's own does.
    sys.path.insert(0, os.getcwd())
    from ipykernel.kernelapp import launch_new_instance

    policy.cap_streams(config.get("max_stream_chars", policy.MAX_STREAM_CHARS))
    why = policy.apply(config)
    if why:
        print(
            f"grader sandbox: no rlimit ({why}); the memory watchdog still applies", file=sys.stderr
        )
    launch_new_instance()


if __name__ == "__main__":
    main()
