"""Helpers for the data-layer tests: small files, their FileSpecs, a local HTTP server."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.factories import free_port
from utils.data.registry import FileSpec, Upstream


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_parquet(path: Path, rows: int = 50, columns=("text", "label")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "text": [f"review number {i}" for i in range(rows)],
        "label": [i % 2 for i in range(rows)],
    }
    pq.write_table(pa.table({c: data[c] for c in columns}), path)
    return path


def write_text(path: Path, lines: int = 200) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"line {i}\tligne {i}\n" for i in range(lines)), encoding="utf-8")
    return path


def parquet_spec(mirror: Path, rows: int = 50, upstream: Upstream | None = None) -> FileSpec:
    """A spec for toy/train.parquet, written into ``mirror`` (sha256, size, rows, columns)."""
    path = write_parquet(mirror / "toy" / "train.parquet", rows)
    return FileSpec("toy/train.parquet", "parquet", sha(path), path.stat().st_size, rows, None,
                    ("text", "label"), upstream=upstream)  # fmt: skip


def pairs_spec(mirror: Path, lines: int = 200, upstream: Upstream | None = None) -> FileSpec:
    """A spec for toy/pairs.txt, written into ``mirror``."""
    path = write_text(mirror / "toy" / "pairs.txt", lines)
    return FileSpec("toy/pairs.txt", "pairs", sha(path), path.stat().st_size, lines, lines // 2,
                    upstream=upstream)  # fmt: skip


def closed_port() -> int:
    """A local port with nothing listening on it."""
    return free_port()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@contextlib.contextmanager
def http_server(folder: Path):
    """Serve ``folder`` on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
