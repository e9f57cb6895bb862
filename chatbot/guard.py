"""What stands between a request and the chatbot's endpoints: bad bodies refused with a
sentence that says what is wrong.

- :class:`BodyGuard` (ASGI middleware): a body larger than the limit gets 413 before it is
  parsed (announced or chunked), a wrong Content-Type 415, bytes that are not UTF-8 422;
- :func:`validation_error` (FastAPI's handler for Pydantic's errors): 422 with one plain
  sentence per problem in ``detail``, and Pydantic's own list in ``errors``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXAMPLES = {
    "/reply": '{"message": "hello, how are you?"}',
    "/rate": '{"conversation_id": 0, "rater": "ana", "appropriateness": 4, "fluency": 5, '
    '"system": "model"}',
}
"""What a good body looks like, quoted in the error messages of each endpoint."""


# --- errors in plain words -------------------------------------------------------------------


async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 with ``detail``: one plain sentence per problem, and ``errors``: Pydantic's list."""
    path = request.url.path
    problems = [_describe(e, path) for e in error.errors()]
    errors = [{key: e.get(key) for key in ("loc", "type", "msg")} for e in error.errors()]
    return JSONResponse(
        status_code=422,
        content={"detail": " ".join(dict.fromkeys(problems)), "errors": errors},
    )


def _describe(error: dict, path: str) -> str:
    """One Pydantic error as a sentence a student can act on."""
    kind = error.get("type", "")
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    field = ".".join(loc)
    got = _what(error.get("input"))
    example = EXAMPLES.get(path, "a JSON object")
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "it cannot be parsed")
        at = f" at character {loc[0]}" if loc else ""
        return f"The body is not valid JSON ({reason}{at}). Send an object like {example}."
    if kind == "missing":
        if not field:
            return f"The body is empty or null. Send a JSON object like {example}."
        return f"The field '{field}' is missing. Send an object like {example}."
    if kind == "extra_forbidden":
        return f"'{field}' is not a field of this request. Send an object like {example}."
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"The body must be a JSON object like {example}, not {got}."
    if kind == "string_type":
        return f"'{field}' must be a string, not {got}."
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"'{field}' must be a whole number, not {got}."
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return sentence(f"'{field}': {message}" if field and kind != "value_error" else message)


def _what(value: Any) -> str:
    """How a JSON value reads in a sentence: 'the number 5', 'a list', 'null'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# --- a guard in front of the app: size, type and encoding of the body ------------------------


class BodyGuard:
    """ASGI middleware that refuses a bad body before anything parses it.

    - 413 when ``Content-Length`` says more than ``max_body_bytes`` (nothing
      is read), or when a chunked body passes the limit while it streams in:
      at most ``max_body_bytes`` + one chunk are ever held in memory.
    - 415 when a POST, PUT or PATCH carries a body that is not declared JSON.
    - 422 when the body is not UTF-8 (JSON must be, RFC 8259), with the byte
      and its position.

    Bodies that pass are replayed to the app unchanged. The limit is small
    (16 KiB by default), so holding the body once costs nothing.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _refuse(scope, send, 400, f"Content-Length {declared!r} is not a number.")
                return
            if int(declared) > self.max_body_bytes:
                await _refuse(scope, send, 413, self._too_large(f"{int(declared)} bytes"))
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; there is nobody to answer
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await _refuse(
                    scope, send, 413, self._too_large("it passed the limit while streaming")
                )
                return
            more = message.get("more_body", False)
        if body and scope["method"] in ("POST", "PUT", "PATCH"):
            problem = _body_problem(bytes(body), headers.get("content-type", ""))
            if problem:
                await _refuse(scope, send, *problem)
                return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # waits for the disconnect, as Starlette expects
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    def _too_large(self, size: str) -> str:
        return (
            f"The request body is too large ({size}); the limit is {self.max_body_bytes} bytes. "
            "Send a shorter message."
        )


def _body_problem(body: bytes, content_type: str) -> tuple[int, str] | None:
    """(status, message) when a body is not UTF-8 JSON, else None."""
    mime = content_type.split(";")[0].strip().lower()
    if mime != "application/json" and not (mime.startswith("application/") and "+json" in mime):
        said = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
        return 415, (
            f"The body was sent with {said}; send JSON with the header "
            "Content-Type: application/json."
        )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = body[error.start]
        return 422, (
            f"The body is not UTF-8 text (byte 0x{byte:02x} at position {error.start}). "
            "Send JSON encoded as UTF-8."
        )
    return None


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    response = JSONResponse(status_code=status, content={"detail": detail})

    async def no_body() -> Message:  # the response never reads the request
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)
