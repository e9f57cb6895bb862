"""The ratings store (chatbot/ratings.py): WAL, upsert, the checks in Python and in SQL.

The constraints are tested twice: through :class:`RatingStore`, whose Python
checks give the readable message, and by writing to the file with plain
sqlite3, where the table's CHECK and STRICT must refuse the same values.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import threading

import pytest

from chatbot.ratings import SYSTEMS, RatingError, RatingStore, validate
from tests.factories import ROOT


@pytest.fixture
def store(tmp_path):
    store = RatingStore(tmp_path / "ratings.sqlite3")
    yield store
    store.close()


def test_the_file_is_in_wal_mode_with_full_sync(store):
    with sqlite3.connect(store.path) as db:  # journal_mode is stored in the file
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with store._lock:
        assert store._connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_second_rating_of_the_same_reply_replaces_the_first(store):
    store.add(3, "ana", 2, 2)
    store.add(3, " ana ", 5, 4)  # spaces around the name are dropped: the same rater
    [row] = store.rows()
    assert (row["conversation_id"], row["rater"], row["appropriateness"], row["fluency"]) == (
        3,
        "ana",
        5,
        4,
    )
    store.add(3, "ana", 1, 1, system="baseline")
    store.add(3, "bo", 1, 1)
    assert len(store.rows()) == 3
    assert store.rated("ana") == {(3, "model"), (3, "baseline")}


@pytest.mark.parametrize(
    "args, words",
    [
        ((1, "ana", 0, 3), "appropriateness must be a whole number from 1 to 5, not 0"),
        ((1, "ana", 3, 6), "fluency must be a whole number from 1 to 5, not 6"),
        ((1, "ana", 2.5, 3), "not 2.5"),
        ((1, "ana", True, 3), "not True"),
        ((1, "ana", "3", 3), "not '3'"),
        ((1, "", 3, 3), "name is empty"),
        ((1, " \t", 3, 3), "name is empty"),
        ((1, "x" * 51, 3, 3), "51 characters; use at most 50"),
        ((1, None, 3, 3), "name is empty"),
        (("1", "ana", 3, 3), "conversation_id must be an integer"),
        ((1, "ana", 3, 3, "gpt"), "system must be one of model, baseline"),
    ],
)
def test_python_refuses_bad_ratings_with_a_clear_message(store, args, words):
    with pytest.raises(RatingError, match=words.replace("(", r"\(")):
        store.add(*args)
    assert store.rows() == []


def test_validate_returns_the_name_without_spaces():
    assert validate(1, "  ana\n", 1, 5, "model") == "ana"
    assert validate(1, "x" * 50, 5, 1, "baseline") == "x" * 50


@pytest.mark.parametrize(
    "row",
    [
        (1, "ana", 0, 3, "model"),
        (1, "ana", 3, 6, "model"),
        (1, "ana", 3.5, 3, "model"),  # STRICT: a REAL in an INTEGER column
        (1, "ana", "good", 3, "model"),
        (1, "", 3, 3, "model"),
        (1, " ana", 3, 3, "model"),
        (1, "x" * 51, 3, 3, "model"),
        (1, "ana", 3, 3, ""),
        (1, "ana", None, 3, "model"),
    ],
)
def test_sql_constraints_refuse_what_python_would(store, row):
    """A script writing to the file directly gets the same limits."""
    with sqlite3.connect(store.path) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO rating (conversation_id, rater, appropriateness, fluency, system, "
            "created) VALUES (?, ?, ?, ?, ?, 0)",
            row,
        )


def test_sql_unique_constraint(store):
    store.add(1, "ana", 3, 3)
    with sqlite3.connect(store.path) as db, pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        db.execute("INSERT INTO rating VALUES (1, 'ana', 4, 4, 'model', 0)")


def test_summary_per_system(store):
    empty = store.summary()
    assert set(empty) == set(SYSTEMS)
    assert empty["model"] == {
        "ratings": 0,
        "conversations": 0,
        "raters": 0,
        "appropriateness": {"count": 0, "mean": None, "std": None},
        "fluency": {"count": 0, "mean": None, "std": None},
    }
    model = [(1, "ana", 5, 4), (1, "bo", 3, 4), (2, "ana", 4, 2), (3, "cy", 1, 5)]
    for args in model:
        store.add(*args)
    store.add(1, "ana", 2, 2, system="baseline")
    summary = store.summary()
    appropriateness = [a for _, _, a, _ in model]
    assert summary["model"]["ratings"] == 4
    assert summary["model"]["conversations"] == 3
    assert summary["model"]["raters"] == 3
    assert summary["model"]["appropriateness"] == {
        "count": 4,
        "mean": statistics.fmean(appropriateness),
        "std": round(statistics.stdev(appropriateness), 4),
    }
    assert summary["baseline"]["fluency"] == {"count": 1, "mean": 2.0, "std": None}


def test_many_threads_write_at_once(store):
    errors = []

    def rate(rater: str) -> None:
        try:
            for i in range(40):
                store.add(i % 10, rater, 1 + i % 5, 5 - i % 5)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=rate, args=(f"r{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.rows()) == 8 * 10  # each rater rated 10 conversations, each 4 times


def test_close_then_use_again(store):
    store.add(1, "ana", 3, 3)
    store.close()
    store.close()  # twice is fine
    assert len(store.rows()) == 1  # reopened on demand
    assert RatingStore(store.path).rows() == store.rows()


def test_a_rating_survives_the_process_being_killed(tmp_path):
    """Committed means on disk: a process that dies right after add() loses nothing."""
    path = tmp_path / "ratings.sqlite3"
    code = (
        "import os, signal, sys\n"
        "from chatbot.ratings import RatingStore\n"
        "RatingStore(sys.argv[1]).add(7, 'ana', 4, 2)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -9, done.stderr
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT rater, appropriateness FROM rating").fetchall() == [("ana", 4)]


def test_clear_errors_for_a_bad_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .* does not exist"):
        RatingStore(tmp_path / "missing" / "ratings.sqlite3")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError, match="cannot open the ratings file"):
        RatingStore(junk)
