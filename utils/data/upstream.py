"""Downloads from the network: plain URLs (urllib), the Hugging Face Hub, and the
Schema-Guided Dialogue builder. Every function writes to a path it is given
(a temporary file); :mod:`utils.data.download` verifies and renames it.

Offline fails fast: :func:`check_online` refuses at once when ``HF_HUB_OFFLINE``,
``HF_DATASETS_OFFLINE`` or ``WORKBOOK_OFFLINE`` is set, and otherwise opens one
TCP connection with a short timeout (``WORKBOOK_NET_TIMEOUT``, default 3 s)
before anything else, so no library retry loop runs when there is no network.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlparse

from utils import env
from utils.data.errors import OfflineError, SourceError
from utils.data.registry import Upstream

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "WORKBOOK_OFFLINE")


def net_timeout() -> float:
    """Seconds to wait for a connection (``WORKBOOK_NET_TIMEOUT``, default 3)."""
    return float(os.environ.get("WORKBOOK_NET_TIMEOUT", "3"))


def check_online(url: str, honour_offline_variables: bool = True) -> None:
    """Raise :class:`OfflineError` quickly unless the host of ``url`` accepts a connection."""
    for name in OFFLINE_VARIABLES if honour_offline_variables else ():
        if env.flag(name):
            raise OfflineError(f"{name}={os.environ[name]} is set, so no download was tried")
    parts = urlparse(url)
    if parts.scheme == "file":
        return
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + net_timeout()
    # Name resolution has no timeout of its own: run it in a thread and stop waiting.
    result: list = []
    resolver = threading.Thread(target=_resolve, args=(host, port, result), daemon=True)
    resolver.start()
    resolver.join(net_timeout())
    if not result:
        raise OfflineError(f"cannot resolve {host} within {net_timeout():g} s; no network?")
    if isinstance(result[0], OSError):
        err = result[0]
        raise OfflineError(f"cannot resolve {host} ({err.strerror or err}); no network?") from err
    try:
        remaining = max(deadline - time.monotonic(), 0.1)
        socket.create_connection(result[0], timeout=remaining).close()
    except OSError as err:
        raise OfflineError(
            f"cannot reach {host}:{port} ({err.strerror or err}); no network?"
        ) from err


def _resolve(host: str, port: int, result: list) -> None:
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        result.append(info[0][4][:2])
    except OSError as err:
        result.append(err)


def download(
    url: str, dest: Path, *, progress: bool = True, desc: str = "", mirror: bool = False
) -> None:
    """Stream ``url`` into ``dest`` with a progress bar; raise :class:`SourceError` on failure.

    A ``mirror`` download ignores the offline variables (a mirror is asked for
    explicitly) but still fails fast when its host cannot be reached.
    """
    from tqdm.auto import tqdm

    check_online(url, honour_offline_variables=not mirror)
    try:
        with urllib.request.urlopen(url, timeout=max(net_timeout(), 10)) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with (
                open(dest, "wb") as out,
                tqdm(total=total, unit="B", unit_scale=True, desc=desc or url.rsplit("/", 1)[-1],
                     disable=not progress, leave=False) as bar,
            ):  # fmt: skip
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise SourceError(f"download of {url} failed (HTTP {err.code} {err.reason})") from err
    except OSError as err:  # URLError, timeouts, connection resets
        raise SourceError(f"download of {url} failed ({getattr(err, 'reason', err)})") from err


def fetch_url(up: Upstream, dest: Path, *, progress: bool = True) -> None:
    """Download ``up.url`` to ``dest``; when ``up.member`` is set, extract it from the zip."""
    if not up.member:
        download(up.url, dest, progress=progress)
        return
    archive = dest.with_name(dest.name + ".zip")
    try:
        download(up.url, archive, progress=progress)
        try:
            with zipfile.ZipFile(archive) as zf:
                names = [n for n in zf.namelist() if n == up.member or n.endswith("/" + up.member)]
                if not names:
                    raise SourceError(f"{up.url} has no member {up.member!r}")
                with zf.open(names[0]) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
        except zipfile.BadZipFile as err:
            raise SourceError(f"{up.url} is not a valid zip archive ({err})") from err
    finally:
        archive.unlink(missing_ok=True)


def fetch_hub(up: Upstream, dest: Path, *, progress: bool = True) -> None:
    """Load one split of a Hub dataset with ``datasets`` and save it as Parquet."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    check_online(endpoint)
    import datasets

    try:
        split = datasets.load_dataset(up.repo, up.config, split=up.split)
    except Exception as err:  # the Hub client raises many kinds
        raise SourceError(
            f"Hub dataset {up.repo} ({up.config or 'default'}, {up.split}) failed: {err}"
        ) from err
    split.to_parquet(str(dest))


SGD_FILES = {"train": ("train", 127), "validation": ("dev", 20), "test": ("test", 34)}
SGD_RAW = (
    "https://raw.githubusercontent.com/google-research-datasets/dstc8-schema-guided-dialogue/master"
)


def sgd_pairs(dialogues: list[dict], context_size: int = 4) -> list[dict]:
    """Context/response rows from SGD dialogues: one row per non-empty system turn.

    ``context`` holds the preceding utterances of the same dialogue (at most
    ``context_size``), each written ``"USER: ..."`` or ``"SYSTEM: ..."``.
    """
    rows = []
    for dialogue in dialogues:
        history: list[str] = []
        for index, turn in enumerate(dialogue["turns"]):
            text = turn["utterance"]
            if turn["speaker"] == "SYSTEM" and text.strip():
                rows.append({
                    "dialogue_id": dialogue["dialogue_id"], "turn_index": index,
                    "service": dialogue["services"][0], "context": history[-context_size:],
                    "response": text,
                })  # fmt: skip
            if text.strip():
                history.append(f"{turn['speaker']}: {text}")
    return rows


def fetch_sgd(up: Upstream, dest: Path, *, progress: bool = True) -> None:
    """Download the SGD dialogue files of one split and write the pairs as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    folder, count = SGD_FILES[up.split]
    check_online(SGD_RAW)
    dialogues = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in tqdm(range(1, count + 1), desc=f"sgd {folder}", disable=not progress):
            path = Path(tmp) / "part.json"
            download(f"{SGD_RAW}/{folder}/dialogues_{i:03d}.json", path, progress=False)
            dialogues += json.loads(path.read_text(encoding="utf-8"))
    pq.write_table(pa.Table.from_pylist(sgd_pairs(dialogues)), dest, compression="zstd")


FETCHERS = {"url": fetch_url, "hub": fetch_hub, "sgd": fetch_sgd}
"""How each kind of :class:`Upstream` is fetched."""
