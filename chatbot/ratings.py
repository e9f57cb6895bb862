"""Human ratings of the chatbot's replies, kept in one SQLite file.

A rater reads a conversation and the bot's reply and gives two scores from 1
to 5: *appropriateness* (does the reply fit the conversation?) and *fluency*
(is it good English?). :class:`RatingStore` keeps them in a table ``rating``
with one row per (conversation, rater, system): a rater who submits the same
conversation twice (a double click, a page reloaded) changes their rating
instead of counting twice. ``system`` says which system wrote the reply
(``"model"`` or ``"baseline"``), so the same store serves an A/B comparison.

The file is opened in WAL mode, so the summary can be read while ratings are
written, and every rating is committed (and synced to disk) before the call
returns: stopping the server, however abruptly, loses none.

    store = RatingStore(Path("ratings.sqlite3"))
    store.add(conversation_id=3, rater="ana", appropriateness=4, fluency=5)
    store.summary()["model"]["appropriateness"]   # {"count": 1, "mean": 4.0, "std": None}
    store.close()
"""

from __future__ import annotations

import math
import sqlite3
import statistics
import threading
import time
from pathlib import Path

SYSTEMS = ("model", "baseline")
"""The systems a reply may come from; add a name here to rate a third one."""

SCORES = ("appropriateness", "fluency")
"""The two scores of a rating, each an integer from 1 to 5."""

MAX_RATER_CHARS = 50

SCHEMA = """
CREATE TABLE IF NOT EXISTS rating (
    conversation_id INTEGER NOT NULL,
    rater TEXT NOT NULL CHECK (length(rater) BETWEEN 1 AND 50 AND rater = trim(rater)),
    appropriateness INTEGER NOT NULL CHECK (appropriateness BETWEEN 1 AND 5),
    fluency INTEGER NOT NULL CHECK (fluency BETWEEN 1 AND 5),
    -- Which systems exist is checked in Python (SYSTEMS), so an A/B test of a
    -- new system needs no change of schema in files that already hold ratings.
    system TEXT NOT NULL CHECK (length(system) > 0),
    created REAL NOT NULL,
    UNIQUE (conversation_id, rater, system)
) STRICT
"""
# STRICT makes SQLite refuse a value of the wrong type (3.5 or "four" in an
# INTEGER column) instead of storing it as it comes.

UPSERT = """
INSERT INTO rating (conversation_id, rater, appropriateness, fluency, system, created)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (conversation_id, rater, system) DO UPDATE SET
    appropriateness = excluded.appropriateness,
    fluency = excluded.fluency,
    created = excluded.created
"""


class RatingError(ValueError):
    """A rating that cannot be stored; the message says which value is wrong and why."""


def validate(
    conversation_id: int, rater: str, appropriateness: int, fluency: int, system: str
) -> str:
    """Check one rating and return the rater's name without surrounding spaces.

    Raises :class:`RatingError` naming the first wrong value. ``True`` is not
    accepted as the score 1: booleans are refused even though Python counts
    them as integers.
    """
    if not _is_int(conversation_id):
        raise RatingError(f"conversation_id must be an integer, not {conversation_id!r}")
    if not isinstance(rater, str) or not rater.strip():
        raise RatingError("the rater's name is empty: type your name (1 to 50 characters)")
    rater = rater.strip()
    if len(rater) > MAX_RATER_CHARS:
        raise RatingError(
            f"the rater's name has {len(rater)} characters; use at most {MAX_RATER_CHARS}"
        )
    for name, value in zip(SCORES, (appropriateness, fluency)):
        if not _is_int(value) or not 1 <= value <= 5:
            raise RatingError(f"{name} must be a whole number from 1 to 5, not {value!r}")
    if system not in SYSTEMS:
        raise RatingError(f"system must be one of {', '.join(SYSTEMS)}, not {system!r}")
    return rater


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class RatingStore:
    """The ratings in one SQLite file, safe to use from many threads.

    One connection, opened on first use and guarded by a lock: FastAPI runs
    synchronous endpoints in a thread pool, and a SQLite connection must not be
    used by two threads at once. Writes are rare (a person rates a reply every
    few seconds), so the lock costs nothing that matters. :meth:`close` closes
    the connection (the app does it on shutdown); a later call opens it again.
    Several processes may share the file: WAL mode and a busy timeout let them
    take turns.
    """

    def __init__(self, path: Path | str, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        with self._lock:
            self._connection()  # fail now, with a clear message, if the file cannot be opened

    def _connection(self) -> sqlite3.Connection:
        """The open connection (call with the lock held); opens it and the schema if needed."""
        if self._conn is not None:
            return self._conn
        if not self.path.parent.is_dir():
            raise FileNotFoundError(
                f"cannot create the ratings file {self.path}: the folder {self.path.parent} "
                "does not exist; create it or choose another ratings path"
            )
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                conn.close()
                raise sqlite3.OperationalError(
                    f"SQLite refused WAL mode (it kept {mode!r}); is the file on a network drive?"
                )
            # synchronous=FULL: with WAL, NORMAL already survives the server being
            # stopped or killed (a commit is in the OS cache), but the last commits
            # may be lost if the machine loses power. FULL syncs the log at every
            # commit. A rating is minutes of a person's work and arrives every few
            # seconds, so one fsync per rating is a price worth paying.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(SCHEMA)
            conn.commit()
        except sqlite3.DatabaseError as error:
            raise sqlite3.DatabaseError(
                f"cannot open the ratings file {self.path}: {error}. Is it a SQLite file "
                "this process may write? Move it away to start a new one."
            ) from error
        self._conn = conn
        return conn

    def add(
        self,
        conversation_id: int,
        rater: str,
        appropriateness: int,
        fluency: int,
        system: str = "model",
    ) -> None:
        """Store one rating, replacing this rater's earlier rating of the same reply.

        The rating is committed and on disk when this returns. Raises
        :class:`RatingError` for a value out of range (checked here, and again
        by the table's CHECK constraints).
        """
        rater = validate(conversation_id, rater, appropriateness, fluency, system)
        row = (conversation_id, rater, appropriateness, fluency, system, time.time())
        with self._lock:
            conn = self._connection()
            with conn:  # commits, or rolls back on an error
                conn.execute(UPSERT, row)

    def rated(self, rater: str) -> set[tuple[int, str]]:
        """The (conversation_id, system) pairs this rater has rated (name without spaces)."""
        with self._lock:
            rows = self._connection().execute(
                "SELECT conversation_id, system FROM rating WHERE rater = ?",
                (rater.strip(),),
            )
            return {(row[0], row[1]) for row in rows}

    def rows(self) -> list[dict]:
        """Every rating as a dict, oldest first (for export and tests)."""
        with self._lock:
            cursor = self._connection().execute(
                "SELECT conversation_id, rater, appropriateness, fluency, system, created "
                "FROM rating ORDER BY created"
            )
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row)) for row in cursor]

    def summary(self) -> dict[str, dict]:
        """Per system: each score's count, mean and std, and how many conversations and raters.

        Every system in :data:`SYSTEMS` is present; one nobody rated yet has
        counts 0 and means ``None``. ``std`` is the sample standard deviation
        (n - 1 in the denominator), ``None`` below two ratings.
        """
        rows = self.rows()
        result = {}
        for system in dict.fromkeys([*SYSTEMS, *(row["system"] for row in rows)]):
            mine = [row for row in rows if row["system"] == system]
            entry = {
                "ratings": len(mine),
                "conversations": len({row["conversation_id"] for row in mine}),
                "raters": len({row["rater"] for row in mine}),
            }
            for score in SCORES:
                entry[score] = _describe([row[score] for row in mine])
            result[system] = entry
        return result

    def close(self) -> None:
        """Close the connection (the last one to close folds the WAL into the file)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _describe(values: list[int]) -> dict:
    count = len(values)
    mean = statistics.fmean(values) if values else None
    std = statistics.stdev(values) if count > 1 else None
    return {
        "count": count,
        "mean": None if mean is None else round(mean, 4),
        "std": None if std is None or math.isnan(std) else round(std, 4),
    }
