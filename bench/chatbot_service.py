"""The chatbot service under load, as ``make bench`` measures it.

Starts ``python -m chatbot serve`` (uvicorn on 127.0.0.1, a free port) on the trained
model and index in ``exports/chatbot`` (or ``$CHATBOT_DIR``), then measures, over
loopback only:

- one client, 1,000 requests one after another: p50 / p99 latency (target: p99 at
  most 10 ms with 10,000 candidates);
- 20 concurrent clients for 60 s: errors (target: none), throughput and p99 (target:
  under 100 ms), and where the time goes (the server's own timings per stage; the rest
  is HTTP and queueing).

The figures are also written to ``load.json`` beside the model, where
``python -m chatbot report`` picks them up. Nothing is measured when the model or the
index is missing: the result says which command builds them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.chatbot_load import load_test, single_client_latency

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _messages() -> list[str]:
    """Real user turns: the last user turn of 1,000 SGD test contexts."""
    from chatbot.data import load_pairs

    test = load_pairs()["test"]
    out = []
    for turns in test.contexts[:: max(1, len(test) // 1_000)][:1_000]:
        users = [t.partition(" ")[2] for t in turns if t.startswith("USER:")]
        out.append(users[-1] if users else turns[-1])
    return out


def measure(*, clients: int = 20, seconds: float = 60, n: int = 1_000) -> dict:
    from chatbot.index import INDEX, MODEL, artefacts_dir

    folder = artefacts_dir()
    if not (folder / MODEL).is_file() or not (folder / INDEX).is_file():
        return {"skipped": f"no model or index in {folder}: run `python -m chatbot train` and "
                           "`python -m chatbot index` first"}  # fmt: skip
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "chatbot", "serve", "--port", str(port), "--dir", str(folder)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=1) as r:
                    health = json.load(r)
                break
            except OSError:
                if server.poll() is not None or time.perf_counter() - t0 > 60:
                    raise RuntimeError(
                        f"the server did not start: {server.stdout.read()}"
                    ) from None
                time.sleep(0.2)
        started = time.perf_counter() - t0
        messages = _messages()
        one = single_client_latency(base, n=n, messages=messages)
        many = load_test(base, clients=clients, seconds=seconds, messages=messages)
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {
        "candidates": health["candidates"],
        "start_seconds": round(started, 1),
        "one_client": one,
        f"{clients}_clients_{int(seconds)}_s": many,
    }
    (folder / "load.json").write_text(json.dumps(result, indent=1))
    return result
