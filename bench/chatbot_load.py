"""Load the chatbot's HTTP service and measure what a client sees.

- :func:`load_test`: ``clients`` threads, each with its own keep-alive
  connection, send ``POST /reply`` as fast as the server answers for
  ``seconds``; returns throughput, latency percentiles and errors.
- :func:`single_client_latency`: one connection, ``n`` requests one after
  another: the latency of one user on an idle server.

Both also average the server's own ``timings_ms`` (tokenize, encode, search,
rerank), so the time the model takes can be told apart from HTTP and queueing
(``overhead_ms``: mean latency minus the server's mean total). The clients use
``http.client`` from the standard library (the lightest Python client), in
threads of this process: on a small machine they share its cores with the
server, so the numbers are a floor on what the service can do, not a ceiling.

    python -c "from bench.chatbot_load import load_test; print(load_test('http://127.0.0.1:8000', seconds=10))"
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

DEFAULT_MESSAGES = (
    "hello, how are you?",
    "i am looking for a cheap restaurant in the centre",
    "can you book a table for two at seven tonight?",
    "what is the phone number?",
    "thanks, that is all",
    "is there a train to cambridge on saturday morning?",
    "xyzzy plugh",
    "i would like a hotel with free parking and wifi",
)
"""Messages sent when the caller gives none (one made only of unknown words)."""


class _Client:
    """One keep-alive HTTP/1.1 connection that sends messages to ``/reply``."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"base_url should look like http://127.0.0.1:8000, not {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path.rstrip("/") + "/reply"
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def reply(self, message: str) -> tuple[float, dict | None, str | None]:
        """(latency in ms, the JSON answer or None, the error or None) of one request."""
        body = json.dumps({"message": message}).encode()
        headers = {"Content-Type": "application/json"}
        start = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.request("POST", self.path, body, headers)
            response = self.conn.getresponse()
            data = response.read()
            elapsed = (time.perf_counter() - start) * 1000
            if response.status != 200:
                return elapsed, None, f"HTTP {response.status}: {data[:200]!r}"
            return elapsed, json.loads(data), None
        except (OSError, http.client.HTTPException, ValueError) as error:
            self.close()  # a fresh connection for the next request
            return (time.perf_counter() - start) * 1000, None, f"{type(error).__name__}: {error}"

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class _Tally:
    """Latencies, errors and summed server timings of many requests (one per thread)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.server: dict[str, float] = {}
        self.answered = 0

    def add(self, latency: float, answer: dict | None, error: str | None) -> None:
        self.latencies.append(latency)
        if error is not None:
            self.errors.append(error)
            return
        self.answered += 1
        for name, ms in answer.get("timings_ms", {}).items():
            self.server[name] = self.server.get(name, 0.0) + float(ms)

    def merge(self, other: _Tally) -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.answered += other.answered
        for name, ms in other.server.items():
            self.server[name] = self.server.get(name, 0.0) + ms

    def result(self, seconds: float) -> dict:
        server = {name: total / self.answered for name, total in self.server.items()}
        server_total = sum(server.values())
        ordered = sorted(self.latencies)
        mean = sum(ordered) / len(ordered) if ordered else math.nan
        return {
            "requests": len(ordered),
            "errors": len(self.errors),
            "error_examples": list(dict.fromkeys(self.errors))[:5],
            "seconds": round(seconds, 3),
            "throughput_rps": round(len(ordered) / seconds, 1) if seconds > 0 else math.nan,
            "mean_ms": round(mean, 3),
            "p50_ms": _percentile(ordered, 50),
            "p90_ms": _percentile(ordered, 90),
            "p99_ms": _percentile(ordered, 99),
            "max_ms": round(ordered[-1], 3) if ordered else math.nan,
            "server_ms": {name: round(ms, 4) for name, ms in server.items()},
            "overhead_ms": round(mean - server_total, 3) if self.answered else math.nan,
        }


def _percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile of sorted values (nearest rank); NaN for no values."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


def load_test(
    base_url: str,
    *,
    clients: int = 20,
    seconds: float = 60,
    messages: Sequence[str] = DEFAULT_MESSAGES,
    timeout: float = 10.0,
) -> dict:
    """``clients`` threads send ``POST /reply`` back to back for ``seconds``.

    Each thread keeps one connection open and cycles through ``messages``
    (starting at a different one). Returns ``requests``, ``errors`` (any
    answer but 200, or a broken connection; ``error_examples`` shows up to
    five), ``throughput_rps``, latency ``mean_ms``/``p50_ms``/``p90_ms``/
    ``p99_ms``/``max_ms``, ``server_ms`` (the server's ``timings_ms`` averaged
    over the answered requests) and ``overhead_ms``.
    """
    if not messages:
        raise ValueError("messages is empty: give at least one message to send")
    if clients < 1 or seconds <= 0:
        raise ValueError(f"need clients >= 1 and seconds > 0, got {clients} and {seconds}")
    connections = [_Client(base_url, timeout) for _ in range(clients)]  # checks base_url here
    tallies = [_Tally() for _ in range(clients)]
    start_line = threading.Barrier(clients + 1)
    deadline = [0.0]

    def work(i: int) -> None:
        client = connections[i]
        start_line.wait()
        j = i
        try:
            while time.perf_counter() < deadline[0]:
                tallies[i].add(*client.reply(messages[j % len(messages)]))
                j += 1
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start_line.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    total = _Tally()
    for tally in tallies:
        total.merge(tally)
    return {"clients": clients, **total.result(elapsed)}


def single_client_latency(
    base_url: str,
    n: int = 1000,
    *,
    messages: Sequence[str] = DEFAULT_MESSAGES,
    warmup: int = 10,
    timeout: float = 10.0,
) -> dict:
    """``n`` requests one after another on one connection (after ``warmup`` unmeasured ones).

    Returns the same keys as :func:`load_test`, with ``clients`` = 1.
    """
    if not messages:
        raise ValueError("messages is empty: give at least one message to send")
    client = _Client(base_url, timeout)
    tally = _Tally()
    try:
        for j in range(warmup):
            client.reply(messages[j % len(messages)])
        began = time.perf_counter()
        for j in range(n):
            tally.add(*client.reply(messages[j % len(messages)]))
        elapsed = time.perf_counter() - began
    finally:
        client.close()
    return {"clients": 1, **tally.result(elapsed)}
