"""The chatbot's HTTP service: replies, a chat page, and a page where people rate replies.

``create_app(retriever, ratings_path=..., conversations=...)`` returns a FastAPI
app; serve it with uvicorn (``uvicorn.run(app, host="127.0.0.1", port=8000)``).

=====================  ==================================================================
``POST /reply``        ``{"message": "hi"}`` -> the top 3 responses with confidences,
                       the words the model does not know, and where the time went
``GET /health``        ``{"status": "ok", "candidates": n}``
``GET /``              a chat page (plain HTML, works offline)
``GET /rate``          the rating page: one conversation at a time, two 1-5 scores
``POST /rate``         store one rating (a second submit of the same one replaces it)
``GET /rate/summary``  count, mean and std of each score, per system
``GET /rate/conversations``, ``GET /rate/progress?rater=NAME``  what the rating page reads
=====================  ==================================================================

Bad input always gets a 4xx whose ``detail`` says, in plain words, what is
wrong and what to send instead; it never reaches the model. A body larger than
``max_body_bytes`` is refused (413) before it is parsed, whether it announces
its length or comes in chunks; a body that is not UTF-8 JSON gets 415 or 422.
A 5xx means a bug on the server: the one the app answers itself is 503 when
the retriever raises on a well-formed message (logged with its traceback). The
refusals themselves live in :mod:`chatbot.guard`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from chatbot import ratings
from chatbot.guard import BodyGuard, sentence, validation_error
from chatbot.pages import CHAT_PAGE, RATE_PAGE
from chatbot.ratings import RatingError, RatingStore

log = logging.getLogger(__name__)


# --- request and response bodies -------------------------------------------------------------


class ReplyRequest(BaseModel):
    """What ``POST /reply`` accepts: one message, a non-empty string, nothing else."""

    model_config = ConfigDict(extra="forbid", strict=True)

    message: str

    @field_validator("message")
    @classmethod
    def _not_blank(cls, message: str) -> str:
        if not message.strip():
            raise ValueError("the message is empty: type a few words to get a reply")
        return message


class ScoredResponse(BaseModel):
    text: str
    confidence: float


class ReplyResponse(BaseModel):
    message: str
    responses: list[ScoredResponse]
    unknown_words: list[str]
    timings_ms: dict[str, float]


class RatingRequest(BaseModel):
    """What ``POST /rate`` accepts; the ranges are checked by :func:`chatbot.ratings.validate`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    conversation_id: int
    rater: str
    appropriateness: int
    fluency: int
    system: str = "model"

    @model_validator(mode="after")
    def _in_range(self) -> RatingRequest:
        self.rater = ratings.validate(
            self.conversation_id, self.rater, self.appropriateness, self.fluency, self.system
        )
        return self


# --- the app ---------------------------------------------------------------------------------


def create_app(
    retriever,
    *,
    ratings_path: Path,
    conversations: list[dict],
    max_message_chars: int = 1000,
    max_body_bytes: int = 16_384,
) -> FastAPI:
    """The service around ``retriever`` (anything with ``reply(message, k)`` and ``n_candidates``).

    ``conversations`` are what the rating page shows: dicts with ``id`` (int),
    ``context`` (list of lines such as ``"USER: hi"``), ``reply`` (the bot's
    reply) and optionally ``system`` (``"model"`` unless given). Ratings go to
    the SQLite file ``ratings_path``, opened now (so a bad path fails here, not
    at the first rating) and closed when the app shuts down.
    """
    conversations = _checked_conversations(conversations)
    by_id = {conversation["id"]: conversation for conversation in conversations}
    store = RatingStore(ratings_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        store.close()  # folds the WAL into the file; the store reopens if the app restarts

    app = FastAPI(
        title="Retrieval chatbot",
        summary="Replies from a dual-LSTM retriever, and human ratings of them.",
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.retriever = retriever
    app.add_middleware(BodyGuard, max_body_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, validation_error)

    @app.post("/reply", response_model=ReplyResponse)
    def reply(request: ReplyRequest) -> dict:
        """The retriever's top 3 responses to one message."""
        message = request.message
        if len(message) > max_message_chars:
            raise HTTPException(
                422,
                f"The message has {len(message)} characters; the limit is {max_message_chars}. "
                "Send a shorter message.",
            )
        try:
            answer = retriever.reply(message, k=3)
            body = {
                "message": message,
                "responses": [
                    {"text": str(text), "confidence": _finite(confidence)}
                    for text, confidence in answer.responses
                ],
                "unknown_words": [str(word) for word in answer.unknown],
                "timings_ms": {name: _finite(ms) for name, ms in answer.timings.items()},
            }
        except Exception:
            # The message was well formed (validated above), so this is a bug in
            # the model or the index: log it for whoever runs the server, and
            # tell the client without leaking a traceback.
            log.exception("the retriever failed on a message of %d characters", len(message))
            raise HTTPException(
                503,
                "The model failed on this message (a bug on the server, logged there). "
                "Try another message; if it keeps happening, tell whoever runs the server.",
            ) from None
        return body

    @app.get("/health")
    def health() -> dict:
        """Whether the service is up, and how many candidate responses the index holds."""
        return {"status": "ok", "candidates": int(retriever.n_candidates)}

    @app.get("/", response_class=HTMLResponse)
    def chat_page() -> str:
        """A page with a text box that asks ``/reply``."""
        return CHAT_PAGE.replace("{max_chars}", str(max_message_chars))

    @app.get("/rate", response_class=HTMLResponse)
    def rating_page() -> str:
        """The page where a person rates the bot's replies, one conversation at a time."""
        return RATE_PAGE

    @app.get("/rate/conversations")
    def rate_conversations() -> list[dict]:
        """The conversations the rating page shows, in order."""
        return conversations

    @app.get("/rate/progress")
    def rate_progress(rater: str = "") -> dict:
        """Which conversations this rater has rated already, so the page can resume."""
        name = rater.strip()
        if not name:
            raise HTTPException(422, "Say whose progress you want: /rate/progress?rater=NAME.")
        done = store.rated(name)
        rated = [c["id"] for c in conversations if (c["id"], c["system"]) in done]
        return {"rater": name, "rated": rated, "total": len(conversations)}

    @app.post("/rate")
    def rate(rating: RatingRequest) -> dict:
        """Store one rating; rating the same reply again replaces the earlier rating."""
        if rating.conversation_id not in by_id:
            raise HTTPException(
                422,
                f"There is no conversation with id {rating.conversation_id}; "
                f"the ids are {_id_range(by_id)}.",
            )
        try:
            store.add(**rating.model_dump())
        except RatingError as error:  # already checked by the model; kept as a safety net
            raise HTTPException(422, sentence(str(error))) from None
        done = store.rated(rating.rater)
        rated = sum((c["id"], c["system"]) in done for c in conversations)
        return {"stored": True, "rated": rated, "total": len(conversations)}

    @app.get("/rate/summary")
    def rate_summary() -> dict:
        """Each score's count, mean and std, and the conversations rated, per system."""
        return {"total_conversations": len(conversations), "systems": store.summary()}

    return app


def _checked_conversations(conversations: Sequence[dict]) -> list[dict]:
    """Copies of the conversations with ``system`` filled in; a ValueError names a bad one."""
    checked, seen = [], set()
    for i, conversation in enumerate(conversations):
        where = f"conversations[{i}]"
        if not isinstance(conversation, dict):
            raise ValueError(f"{where} should be a dict with id, context and reply")
        missing = {"id", "context", "reply"} - conversation.keys()
        if missing:
            raise ValueError(f"{where} has no {', '.join(sorted(missing))}")
        cid, context, reply = conversation["id"], conversation["context"], conversation["reply"]
        if not isinstance(cid, int) or isinstance(cid, bool):
            raise ValueError(f"{where}['id'] should be an int, not {cid!r}")
        if cid in seen:
            raise ValueError(f"{where}['id'] = {cid} is used twice; ids must be unique")
        if not isinstance(context, list) or not all(isinstance(line, str) for line in context):
            raise ValueError(f"{where}['context'] should be a list of strings (lines)")
        if not isinstance(reply, str):
            raise ValueError(f"{where}['reply'] should be a string, not {type(reply).__name__}")
        system = conversation.get("system", "model")
        if system not in ratings.SYSTEMS:
            raise ValueError(f"{where}['system'] should be one of {ratings.SYSTEMS}")
        seen.add(cid)
        checked.append({"id": cid, "context": list(context), "reply": reply, "system": system})
    return checked


def _id_range(by_id: dict) -> str:
    if not by_id:
        return "none: the server was started without conversations"
    ids = sorted(by_id)
    if ids == list(range(ids[0], ids[-1] + 1)):
        return f"{ids[0]} to {ids[-1]}"
    return ", ".join(map(str, ids[:20])) + (", ..." if len(ids) > 20 else "")


def _finite(value) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"the retriever returned {number}, not a finite number")
    return number
