"""Kernel side of a call the grader makes into the notebook's kernel.

Most exercise functions are rebuilt from their source in the function server
(:mod:`.functions`). A lab that grades what the notebook *trained* names the functions
that need it in its metadata (``workbook.kernel_functions``, e.g. a ``predict`` that uses
the notebook's trained ``model``): the grader calls those in the kernel itself, after the
cells above the test ran. It executes ``serve(request)`` there, with the call encoded by
:mod:`.protocol` (data only), and reads the reply from one display output of type
:data:`MIME`. The kernel is the student's: whatever it answers is decoded by the grader
as data and judged there, so nothing here needs to be trusted.
"""

from __future__ import annotations

import base64

MIME = "application/x-workbook-call+base64"
"""the display output that carries the reply"""


def serve(request: str) -> None:
    """Answer one grader request (base64 of a :mod:`.protocol` message) from the
    kernel's namespace, as one display output of type :data:`MIME`."""
    from IPython import get_ipython
    from IPython.display import display

    from . import functions, protocol

    shell = get_ipython()
    ns = shell.user_ns if shell is not None else {}
    try:
        reply = functions.answer(ns, protocol.decode(base64.b64decode(request)))
    except protocol.ChannelError as e:
        reply = {"error": _channel_error(f"the grader's request could not be read ({e})")}
    try:
        out = protocol.encode(reply)
    except protocol.ChannelError as e:
        what = "it returned" if "value" in reply else "its arguments hold"
        out = protocol.encode({"error": _channel_error(f"{what} {e}")})
    display({MIME: base64.b64encode(out).decode("ascii")}, raw=True)


def _channel_error(message: str) -> dict:
    return {"type": "ChannelError", "builtin": False, "message": message, "stub": None, "trace": ""}
