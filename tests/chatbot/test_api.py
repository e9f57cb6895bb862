"""The chatbot's HTTP service (chatbot/app.py) against a fake retriever.

Every bad input is sent twice, through FastAPI's TestClient and to a real
uvicorn on 127.0.0.1, and must get a 4xx whose ``detail`` says what is wrong,
without the retriever ever seeing it. A real server in a subprocess is stopped
by a signal to show that ratings survive it, and a short run of concurrent
requests must end without a single error. The fake follows the interface of
``chatbot.index`` exactly (``Reply``, ``Retriever.reply``, ``n_candidates``);
test_ratings.py and test_rating_page.py import it from here.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from bench.chatbot_load import load_test, single_client_latency
from chatbot.app import create_app
from chatbot.ratings import RatingStore
from tests.factories import ROOT, free_port

# --- the fake retriever (the interface of chatbot.index) -------------------------------------


@dataclass
class Reply:
    responses: list[tuple[str, float]]
    unknown: list[str]
    timings: dict[str, float]


class FakeRetriever:
    """Answers every message with the same candidates, best first; counts its calls.

    ``fail=True`` makes it raise, as a bug in the model would.
    """

    candidates = ("hello!", "i can help with that.", "goodbye.", "sure, when?", "thank you.")
    vocabulary = frozenset("hello hi how are you i need a table for two thanks".split())

    def __init__(self, fail: bool = False) -> None:
        self.n_candidates = len(self.candidates)
        self.fail = fail
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def reply(self, message: str, k: int = 3) -> Reply:
        with self._lock:
            self.calls.append(message)
        if self.fail:
            raise RuntimeError("the index is corrupt (a deliberate failure of the fake)")
        words = message.lower().replace(",", " ").replace("?", " ").split()
        unknown = [word for word in words if word not in self.vocabulary]
        responses = [(text, round(0.9 - 0.2 * i, 2)) for i, text in enumerate(self.candidates)]
        timings = {"tokenize": 0.01, "encode": 0.5, "search": 0.2, "rerank": 0.05}
        return Reply(responses[:k], unknown, timings)


CONVERSATIONS = [
    {"id": i, "context": [f"USER: question number {i}?", "SYSTEM: go on."], "reply": f"answer {i}"}
    for i in range(5)
]

JSON = {"Content-Type": "application/json"}


def make_app(path: Path, retriever=None, **options):
    return create_app(
        retriever or FakeRetriever(),
        ratings_path=path,
        conversations=CONVERSATIONS,
        **options,
    )


# --- a real uvicorn --------------------------------------------------------------------------


def wait_healthy(url: str, alive, timeout: float = 30.0) -> None:
    """Poll ``url``/health until it answers 200; fail with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server for {url} stopped before /health answered")
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url}/health did not answer within {timeout} s")


@contextmanager
def serve(app) -> Iterator[str]:
    """Run ``app`` in uvicorn on a free port of 127.0.0.1, in a thread; yields the base URL.

    The socket is bound here (port 0), so two test workers never race for a port.
    It must say IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that do,
    and without it every response waits 40 ms for a delayed ACK (Nagle).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_healthy(url, thread.is_alive)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop within 10 s"


@dataclass
class Service:
    http: httpx.Client  # a TestClient, or a client of a real uvicorn
    retriever: FakeRetriever
    store: RatingStore
    transport: str


@pytest.fixture(scope="module", params=["testclient", "uvicorn"])
def service(request, tmp_path_factory) -> Iterator[Service]:
    """One app per transport, shared by the tests of this module (they use distinct raters)."""
    retriever = FakeRetriever()
    app = make_app(tmp_path_factory.mktemp("api") / "ratings.sqlite3", retriever)
    if request.param == "testclient":
        with TestClient(app) as client:
            yield Service(client, retriever, app.state.store, request.param)
    else:
        with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
            yield Service(client, retriever, app.state.store, request.param)


@pytest.fixture
def fresh(tmp_path) -> Iterator[TestClient]:
    """A TestClient on a new app with an empty ratings file."""
    with TestClient(make_app(tmp_path / "ratings.sqlite3")) as client:
        yield client


# --- /reply ----------------------------------------------------------------------------------


def chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    """A body sent without Content-Length (Transfer-Encoding: chunked)."""
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


BAD_REPLIES = [
    # (name, body, headers, status, words the detail must contain)
    ("empty message", b'{"message": ""}', JSON, 422, "message is empty"),
    ("whitespace", b'{"message": "  \\n\\t "}', JSON, 422, "message is empty"),
    ("too long", json.dumps({"message": "a" * 1001}).encode(), JSON, 422, "limit is 1000"),
    ("1 MB body", b"x" * 1_000_000, JSON, 413, "limit is 16384 bytes"),
    ("1 MB chunked", chunks(1_000_000), JSON, 413, "limit is 16384 bytes"),
    ("number", b'{"message": 5}', JSON, 422, "'message' must be a string, not the number 5"),
    ("list body", b"[]", JSON, 422, "must be a JSON object"),
    ("null body", b"null", JSON, 422, "must be a JSON object"),
    ("string body", b'"hi"', JSON, 422, "must be a JSON object"),
    ("null message", b'{"message": null}', JSON, 422, "must be a string, not null"),
    ("list message", b'{"message": ["hi"]}', JSON, 422, "must be a string, not a list"),
    ("invalid JSON", b'{"message": "hi"', JSON, 422, "not valid JSON"),
    ("not UTF-8", b'{"message": "caf\xe9"}', JSON, 422, "not UTF-8"),
    ("raw bytes", bytes(range(128, 256)), JSON, 422, "not UTF-8"),
    ("unknown field", b'{"message": "hi", "user": 1}', JSON, 422, "'user' is not a field"),
    ("missing field", b"{}", JSON, 422, "'message' is missing"),
    ("no body", b"", JSON, 422, "body is empty"),
    ("text/plain", b'{"message": "hi"}', {"Content-Type": "text/plain"}, 415, "application/json"),
    ("form", b"message=hi", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "JSON"),
    ("no content type", b'{"message": "hi"}', {}, 415, "Content-Type"),
]


@pytest.mark.parametrize(
    "body, headers, status, words",
    [case[1:] for case in BAD_REPLIES],
    ids=[case[0] for case in BAD_REPLIES],
)
def test_bad_reply_requests_get_a_4xx_that_says_why(service, body, headers, status, words):
    if not isinstance(body, bytes):
        body = chunks(1_000_000)  # a generator is used up by the first transport
    calls = len(service.retriever.calls)
    response = service.http.post("/reply", content=body, headers=headers)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and words in detail, detail
    assert len(service.retriever.calls) == calls, "bad input reached the retriever"


def test_reply_returns_three_scored_responses_and_unknown_words(service):
    response = service.http.post("/reply", json={"message": "Hello, how are you, zorblax?"})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["message"] == "Hello, how are you, zorblax?"
    assert [r["text"] for r in data["responses"]] == list(FakeRetriever.candidates[:3])
    assert all(0 <= r["confidence"] <= 1 for r in data["responses"])
    assert data["unknown_words"] == ["zorblax"]
    assert set(data["timings_ms"]) == {"tokenize", "encode", "search", "rerank"}


def test_a_message_of_unknown_words_still_gets_responses(service):
    data = service.http.post("/reply", json={"message": "qwxz vbnm"}).json()
    assert len(data["responses"]) == 3 and data["unknown_words"] == ["qwxz", "vbnm"]


def test_the_message_limit_counts_characters_not_bytes(service):
    emoji = "\N{GRINNING FACE}" * 1000  # 4000 bytes in UTF-8, 12,000 as JSON escapes
    assert service.http.post("/reply", json={"message": emoji}).status_code == 200
    too_long = service.http.post("/reply", json={"message": emoji + "!"})
    assert too_long.status_code == 422 and "1001 characters" in too_long.json()["detail"]


def test_random_bodies_never_get_a_5xx(fresh):
    """A small fuzz: random bytes and random JSON values are refused with a 4xx, never a 5xx."""
    rng = random.Random(0)
    values = [None, True, 0, -1.5, "", " ", "hi", [], {}, [1, "a"], {"message": 1}]
    bodies = [json.dumps(rng.choice(values)).encode() for _ in range(20)]
    bodies += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))) for _ in range(30)]
    bodies += [json.dumps({"message": rng.choice(values), "x": 1}).encode() for _ in range(10)]
    for body in bodies:
        response = fresh.post("/reply", content=body, headers=JSON)
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text)
        assert isinstance(response.json()["detail"], str)


def test_a_failing_retriever_gives_503_and_a_log_line(tmp_path, caplog):
    with TestClient(make_app(tmp_path / "r.sqlite3", FakeRetriever(fail=True))) as client:
        response = client.post("/reply", json={"message": "hello"})
        bad = client.post("/reply", json={"message": ""})
    assert response.status_code == 503
    assert "model failed on this message" in response.json()["detail"]
    assert "Traceback" not in response.text and "corrupt" not in response.text
    assert any("the retriever failed" in r.getMessage() for r in caplog.records)
    assert bad.status_code == 422, "bad input must be refused before the retriever"


def test_a_retriever_returning_nan_gives_503_not_a_crash(tmp_path):
    class NaN(FakeRetriever):
        def reply(self, message, k=3):
            return Reply([("x", float("nan"))] * k, [], {"encode": 1.0})

    with TestClient(make_app(tmp_path / "r.sqlite3", NaN())) as client:
        assert client.post("/reply", json={"message": "hello"}).status_code == 503


def test_health_and_pages(service):
    assert service.http.get("/health").json() == {"status": "ok", "candidates": 5}
    for path, needs in (("/", 'fetch("reply"'), ("/rate", "fetch(url, options)")):
        page = service.http.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert needs in page.text
        for external in ("http://", "https://", "src=", "<link"):  # nothing to fetch offline
            assert external not in page.text, f"{path} loads {external}"


def test_wrong_method_and_path_are_4xx(service):
    assert service.http.get("/reply").status_code == 405
    assert service.http.get("/nothing").status_code == 404


def test_bad_conversations_are_refused_when_the_app_is_created(tmp_path):
    for conversations, words in (
        ([{"id": 1, "context": ["a"]}], "has no reply"),
        ([{"id": "1", "context": [], "reply": "r"}], "should be an int"),
        ([{"id": 1, "context": "a", "reply": "r"}], "list of strings"),
        ([{"id": 1, "context": [], "reply": "r"}] * 2, "used twice"),
    ):
        with pytest.raises(ValueError, match=words):
            create_app(FakeRetriever(), ratings_path=tmp_path / "r", conversations=conversations)


# --- /rate -----------------------------------------------------------------------------------


def rating(rater: str, conversation_id: int = 1, a: int = 4, f: int = 5, **extra) -> dict:
    return {
        "conversation_id": conversation_id,
        "rater": rater,
        "appropriateness": a,
        "fluency": f,
        "system": "model",
        **extra,
    }


def stored(store: RatingStore, rater: str) -> list[dict]:
    return [row for row in store.rows() if row["rater"] == rater]


def test_a_rating_is_stored(service):
    response = service.http.post("/rate", json=rating(f"ana-{service.transport}"))
    assert response.status_code == 200, response.text
    assert response.json()["rated"] == 1
    [row] = stored(service.store, f"ana-{service.transport}")
    assert (row["conversation_id"], row["appropriateness"], row["fluency"]) == (1, 4, 5)


def test_a_double_submit_is_stored_once_and_the_last_wins(service):
    rater = f"bo-{service.transport}"
    for a in (2, 3):
        assert service.http.post("/rate", json=rating(rater, a=a)).status_code == 200
    [row] = stored(service.store, rater)
    assert row["appropriateness"] == 3
    # The same conversation rated for another system is a second rating.
    assert service.http.post("/rate", json=rating(rater, system="baseline")).status_code == 200
    assert len(stored(service.store, rater)) == 2


BAD_RATINGS = [
    ("zero", rating("cy", a=0), "appropriateness must be a whole number from 1 to 5, not 0"),
    ("six", rating("cy", f=6), "fluency must be a whole number from 1 to 5, not 6"),
    ("negative", rating("cy", a=-1), "from 1 to 5"),
    ("a float", rating("cy", a=3.5), "'appropriateness' must be a whole number"),
    ("3.0", rating("cy", f=3.0), "'fluency' must be a whole number"),
    ("a string", rating("cy", a="4"), "'appropriateness' must be a whole number"),
    ("true", rating("cy", a=True), "must be a whole number, not true"),
    (
        "unknown id",
        rating("cy", conversation_id=99),
        "no conversation with id 99; the ids are 0 to 4",
    ),
    ("id as string", rating("cy", conversation_id="1"), "'conversation_id' must be a whole number"),
    ("empty rater", rating(""), "name is empty"),
    ("blank rater", rating("   "), "name is empty"),
    ("long rater", rating("x" * 51), "at most 50"),
    ("rater not str", rating(7), "'rater' must be a string"),
    ("unknown system", rating("cy", system="gpt"), "system must be one of model, baseline"),
    ("unknown field", rating("cy", stars=5), "'stars' is not a field"),
    (
        "missing score",
        {"conversation_id": 1, "rater": "cy", "fluency": 3},
        "'appropriateness' is missing",
    ),
]


@pytest.mark.parametrize(
    "body, words", [case[1:] for case in BAD_RATINGS], ids=[case[0] for case in BAD_RATINGS]
)
def test_bad_ratings_get_422_with_a_clear_message(service, body, words):
    before = len(service.store.rows())
    response = service.http.post("/rate", json=body)
    assert response.status_code == 422, response.text
    assert words.lower() in response.json()["detail"].lower(), response.json()["detail"]
    assert len(service.store.rows()) == before


def test_rating_bodies_are_guarded_like_replies(service):
    assert service.http.post("/rate", content=b"\xff\xfe", headers=JSON).status_code == 422
    assert service.http.post("/rate", content=b"x" * 100_000, headers=JSON).status_code == 413


def test_summary_progress_and_conversations(fresh):
    for rater, a, f in (("ana", 4, 5), ("bo", 2, 3)):
        assert fresh.post("/rate", json=rating(rater, a=a, f=f)).status_code == 200
    assert fresh.post("/rate", json=rating("ana", conversation_id=2, a=3, f=4)).status_code == 200
    summary = fresh.get("/rate/summary").json()
    assert summary["total_conversations"] == 5
    model = summary["systems"]["model"]
    assert (model["ratings"], model["conversations"], model["raters"]) == (3, 2, 2)
    assert model["appropriateness"] == {"count": 3, "mean": 3.0, "std": 1.0}
    assert summary["systems"]["baseline"]["fluency"] == {"count": 0, "mean": None, "std": None}
    assert fresh.get("/rate/progress", params={"rater": " ana "}).json() == {
        "rater": "ana",
        "rated": [1, 2],
        "total": 5,
    }
    assert fresh.get("/rate/progress").status_code == 422
    conversations = fresh.get("/rate/conversations").json()
    assert conversations == [{**c, "system": "model"} for c in CONVERSATIONS]


def test_shutdown_closes_the_database(tmp_path):
    path = tmp_path / "ratings.sqlite3"
    app = make_app(path)
    with TestClient(app) as client:
        assert client.post("/rate", json=rating("ana")).status_code == 200
        assert Path(f"{path}-wal").exists()
    assert app.state.store._conn is None
    assert not Path(f"{path}-wal").exists(), "the WAL was not folded in: a connection is open"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT rater FROM rating").fetchall() == [("ana",)]


# --- a real server: stopped by a signal, and under concurrent load ---------------------------

# The subprocess gets the fake's own source rather than importing this module,
# whose imports (tests.factories reads nbformat) would cost seconds of start-up.
SERVER = "\n".join(
    [
        "import sys, threading",
        "from dataclasses import dataclass",
        "from pathlib import Path",
        "import uvicorn",
        "from chatbot.app import create_app",
        inspect.getsource(Reply),
        inspect.getsource(FakeRetriever),
        f"CONVERSATIONS = {CONVERSATIONS!r}",
        "app = create_app(FakeRetriever(), ratings_path=Path(sys.argv[1]), "
        "conversations=CONVERSATIONS)",
        'uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="info")',
    ]
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "stop", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name
)
def test_a_rating_survives_the_server_being_stopped(tmp_path, stop):
    path, port = tmp_path / "ratings.sqlite3", free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(path), str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, lambda: process.poll() is None)
        response = httpx.post(url + "/rate", json=rating("dee", a=2, f=3), timeout=10)
        assert response.status_code == 200, response.text
        process.send_signal(stop)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if stop != signal.SIGKILL:  # a graceful stop runs the lifespan, which closes the database
        assert "Application shutdown complete" in output, output
        assert not Path(f"{path}-wal").exists(), "the database was not closed on shutdown"
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT conversation_id, rater, appropriateness, fluency FROM rating")
        assert rows.fetchall() == [(1, "dee", 2, 3)]


@pytest.mark.slow
def test_concurrent_replies_and_ratings_against_uvicorn(tmp_path):
    """6 threads ask for replies and 2 rate, for 2 s, each on its own keep-alive connection."""
    retriever = FakeRetriever()
    app = make_app(tmp_path / "ratings.sqlite3", retriever)
    failures, counts = [], [0] * 8
    with serve(app) as url:
        stop_at = time.monotonic() + 2.0

        def work(i: int) -> None:
            with httpx.Client(base_url=url, timeout=10) as client:
                j = 0
                while time.monotonic() < stop_at:
                    if i < 6:
                        response = client.post("/reply", json={"message": f"hi {i} {j}"})
                        ok = response.status_code == 200 and len(response.json()["responses"]) == 3
                    else:
                        body = rating(f"rater{i}", conversation_id=j % 5, a=1 + j % 5)
                        response = client.post("/rate", json=body)
                        ok = response.status_code == 200
                    if not ok:
                        failures.append((i, response.status_code, response.text[:200]))
                    counts[i] += 1
                    j += 1

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert not failures, failures[:5]
    assert sum(counts[:6]) == len(retriever.calls) > 0
    rows = app.state.store.rows()
    assert len(rows) == sum(min(counts[i], 5) for i in (6, 7))  # one row per (conversation, rater)


def test_load_test_and_single_client_latency(tmp_path):
    with serve(make_app(tmp_path / "ratings.sqlite3")) as url:
        load = load_test(url, clients=4, seconds=1.0, messages=["hello", "how are you"])
        single = single_client_latency(url, n=50, messages=["hello"])
    for result in (load, single):
        assert result["requests"] > 0 and result["errors"] == 0, result["error_examples"]
        assert result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"] <= result["max_ms"]
        assert result["server_ms"] == pytest.approx(
            {"tokenize": 0.01, "encode": 0.5, "search": 0.2, "rerank": 0.05}
        )
    assert load["clients"] == 4 and 0.9 < load["seconds"] < 5
    assert load["throughput_rps"] == pytest.approx(load["requests"] / load["seconds"], rel=0.01)
    assert single["requests"] == 50 and single["clients"] == 1


def test_load_test_counts_errors_instead_of_raising():
    port = free_port()  # nothing listens there
    result = single_client_latency(f"http://127.0.0.1:{port}", n=3, warmup=0)
    assert result["requests"] == 3 and result["errors"] == 3
    assert "ConnectionRefusedError" in result["error_examples"][0]
    with pytest.raises(ValueError, match="should look like"):
        load_test("127.0.0.1:8000", seconds=1)
