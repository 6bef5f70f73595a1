"""The per-node record cache: parse an annotation source once, memory-map it afterwards.

``cached_records(name, sources, options, build, cache_dir)`` returns the ``FlatRecords``
that ``build()`` makes, going through a cache file:

- the file is named after ``name``, the sources' absolute paths and ``options`` (everything
  that changes the records: classes, filters, format version ...), so one dataset setup has
  one file, rewritten when its sources change;
- its ``meta['fingerprint']`` holds each source's size, mtime and blake2b (the whole file,
  ~1 s per GB, a few % of parsing it) plus the size/mtime of ``stat_sources`` (many small
  files, e.g. VOC XMLs): a mismatch means stale, a file that does not load means damaged;
  both are rebuilt with one warning line;
- the first process that needs it builds it under an exclusive ``fcntl.flock`` on
  ``<file>.lock`` while the others wait, then everyone memory-maps the same file (one copy
  in the page cache per node, shared by every rank and DataLoader worker);
- files are written to a temporary file, fsynced and renamed (``FlatRecords.save``), so
  concurrent builders never leave a torn file.

Where (``resolve_cache_dir``): ``cache_dir=None`` (the default) uses ``$RESDET_CACHE_DIR``
when set, else ``$XDG_CACHE_HOME/resdet/records`` (``~/.cache/resdet/records``);
``cache_dir=False`` (or ``RESDET_CACHE_DIR=off``) turns the cache off: records are parsed
and kept in memory; a string is the folder. A folder that cannot be written falls back
to in-memory records with one warning.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Callable

from .records import FlatRecords, RecordFileError

logger = logging.getLogger("resdet")
ENV_VAR = "RESDET_CACHE_DIR"
_OFF = ("", "0", "off", "false", "no", "none")
_CHUNK = 8 << 20


def resolve_cache_dir(cache_dir: str | bool | None = None) -> str | None:
    """The cache folder for a dataset's ``cache_dir`` argument (``None`` = no cache)."""
    if cache_dir is False:
        return None
    if isinstance(cache_dir, str) and cache_dir:
        return os.path.abspath(os.path.expanduser(cache_dir))
    if cache_dir not in (None, True):
        raise ValueError(f"cache_dir must be a folder, None (default location) or False (no cache), got {cache_dir!r}")
    env = os.environ.get(ENV_VAR)
    if env is not None:
        return None if env.strip().lower() in _OFF else os.path.abspath(os.path.expanduser(env))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "resdet", "records")


def file_digest(path: str) -> str:
    """blake2b of a whole file, read in 8 MiB chunks."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(sources: Sequence[str], stat_sources: Iterable[str] = ()) -> dict:
    """What identifies the sources' content: size, mtime and blake2b of each of ``sources``;
    one blake2b over (path, size, mtime) of ``stat_sources`` (absent files included)."""
    out = {}
    for path in sources:
        info = os.stat(path)
        out[os.path.abspath(path)] = [info.st_size, info.st_mtime_ns, file_digest(path)]
    listing = hashlib.blake2b(digest_size=16)
    for path in stat_sources:
        try:
            info = os.stat(path)
            listing.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\n".encode("utf-8", "surrogatepass"))
        except OSError:
            listing.update(f"{path}\0-\n".encode("utf-8", "surrogatepass"))
    out["<stat sources>"] = listing.hexdigest()
    return out


def cache_path(cache_dir: str, name: str, sources: Sequence[str], options: dict) -> str:
    """``<cache_dir>/<name>-<first source's stem>-<16 hex of paths + options>.rec``."""
    key = json.dumps(
        dict(name=name, sources=[os.path.abspath(s) for s in sources], options=options), sort_keys=True, default=repr
    )
    stem = (
        re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.splitext(os.path.basename(sources[0]))[0])[:40]
        if sources
        else "records"
    )
    return os.path.join(cache_dir, f"{name}-{stem}-{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}.rec")


def _try_load(path: str, expected: dict) -> tuple[FlatRecords | None, str]:
    """``(records, '')`` when ``path`` holds valid records of ``expected`` sources, else
    ``(None, why)`` (``why`` is empty when the file does not exist)."""
    if not os.path.exists(path):
        return None, ""
    try:
        records = FlatRecords.load(path)
    except (RecordFileError, OSError) as err:
        return None, f"damaged ({err})"
    if records.meta.get("fingerprint") != expected:
        return None, "stale (its annotation files changed)"
    return records, ""


def cached_records(
    name: str,
    sources: Sequence[str],
    options: dict,
    build: Callable[[], FlatRecords],
    cache_dir: str | bool | None = None,
    stat_sources: Iterable[str] = (),
) -> FlatRecords:
    """``build()``'s records through the cache (see the module docstring); ``options`` must
    hold every argument that changes the records (JSON-able values)."""
    folder = resolve_cache_dir(cache_dir)
    if folder is None:
        return build()
    path = cache_path(folder, name, sources, options)
    expected = json.loads(json.dumps(fingerprint(sources, stat_sources)))
    records, _ = _try_load(path, expected)
    if records is not None:
        return records
    try:
        os.makedirs(folder, exist_ok=True)
        lock = open(path + ".lock", "a+b")  # noqa: SIM115 - held until the file is in place
    except OSError as err:
        message = (
            f"record cache folder {folder} is not usable ({err}); records kept in memory "
            f"(set {ENV_VAR} or cache_dir= to a writable folder, or False to silence this)"
        )
        warnings.warn(message, UserWarning, stacklevel=3)
        return build()
    with lock:  # closing the file releases the flock
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        records, why = _try_load(path, expected)  # another process may have built it meanwhile
        if records is not None:
            return records
        if why:
            message = f"record cache {path} is {why}: rebuilding it"
            warnings.warn(message, UserWarning, stacklevel=3)
            logger.warning(message)
        built = build()
        built.meta["fingerprint"] = expected
        try:
            built.save(path)
        except OSError as err:
            warnings.warn(
                f"record cache {path} could not be written ({err}); records kept in memory", UserWarning, stacklevel=3
            )
            return built
        return FlatRecords.load(path, verify=False)
