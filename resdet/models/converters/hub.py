"""Weights by name: ``torchvision://NAME`` -> a verified, converted file in torch's hub cache.

``resolve_weights('torchvision://resnet50')`` downloads the manifest's file (``manifest.py``)
into ``<torch.hub.get_dir()>/checkpoints/`` (``$TORCH_HOME/hub/checkpoints``, the folder
``torch.hub`` and torchvision use, so a file torchvision already fetched is reused), checks its
SHA-256 against the prefix in its name, converts it once with the torchvision converters and
keeps the result beside it as ``<file stem>.resdet.pth`` (a resdet checkpoint: ``model``,
``meta`` with the config and class names). Later calls only open the converted file.

A download goes to a temporary file in the cache folder, is verified, then renamed: a wrong
hash, an HTTP error, a timeout, a connection that closes early or an interruption leave nothing
in the cache. Without a network, the error names the URL and the exact path to put the file at.

``RESDET_WEIGHTS_URL`` replaces the download base (a mirror, or a local server in the tests);
``RESDET_DOWNLOAD_TIMEOUT`` the seconds to wait for the server (default 60).
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import urllib.error
import urllib.request
from typing import Callable

import torch

from ...utils.errors import CheckpointError
from ...utils.io import create_temporary
from .manifest import DEFAULT_BASE_URL, MANIFEST, SCHEME, WeightsEntry, lookup

BASE_URL_ENV = "RESDET_WEIGHTS_URL"
TIMEOUT_ENV = "RESDET_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0
CONVERTED_SUFFIX = ".resdet.pth"
_CHUNK = 1 << 20


class DownloadError(CheckpointError):
    """Weights named ``torchvision://NAME`` that could not be fetched or verified (one line:
    the URL, what went wrong, where the file belongs)."""


def is_weights_name(checkpoint: object) -> bool:
    """``True`` for a ``torchvision://NAME`` string."""
    return isinstance(checkpoint, str) and checkpoint.startswith(SCHEME)


def get_entry(name: str) -> WeightsEntry:
    """The manifest entry of ``name``, or a ``CheckpointError`` listing the known names."""
    try:
        return lookup(name)
    except KeyError:
        raise CheckpointError(
            f"unknown weights {name!r}; known names: "
            f"{', '.join(SCHEME + n for n in MANIFEST)} (see resdet weights --list)"
        ) from None


def cache_dir() -> str:
    """``<torch.hub.get_dir()>/checkpoints`` (honours ``TORCH_HOME``), where torch.hub keeps files."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def cached_path(entry: WeightsEntry) -> str:
    """Where the downloaded file lives (or belongs)."""
    return os.path.join(cache_dir(), entry.file)


def converted_path(entry: WeightsEntry) -> str:
    """Where the converted resdet checkpoint lives, beside the downloaded file."""
    return os.path.join(cache_dir(), os.path.splitext(entry.file)[0] + CONVERTED_SUFFIX)


def url_of(entry: WeightsEntry, base_url: str | None = None) -> str:
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return base.rstrip("/") + "/" + entry.file


def _timeout(timeout: float | None) -> float:
    if timeout is not None:
        return float(timeout)
    value = os.environ.get(TIMEOUT_ENV)
    try:
        return float(value) if value else DEFAULT_TIMEOUT_S
    except ValueError:
        raise CheckpointError(f"{TIMEOUT_ENV}={value!r} is not a number of seconds") from None


def _stream(response, out, url: str, progress: Callable[[int, int | None], None] | None) -> str:
    """Copy the body into ``out``; returns its SHA-256 hex digest. A body shorter than its
    ``Content-Length`` (the server closed early) is a ``DownloadError``."""
    expected = response.headers.get("Content-Length")
    expected = int(expected) if expected and expected.isdigit() else None
    digest, received = hashlib.sha256(), 0
    while True:
        chunk = response.read(_CHUNK)
        if not chunk:
            break
        digest.update(chunk)
        out.write(chunk)
        received += len(chunk)
        if progress is not None:
            progress(received, expected)
    if expected is not None and received != expected:
        raise DownloadError(f"download of {url} was cut off after {received} of {expected} bytes; run it again")
    return digest.hexdigest()


def download(
    entry: WeightsEntry,
    base_url: str | None = None,
    timeout: float | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> str:
    """Fetch ``entry``'s file into the cache (verified, atomically) and return its path; a file
    already there is returned as it is. Raises ``DownloadError`` (nothing left in the cache)."""
    path = cached_path(entry)
    if os.path.isfile(path):
        return path
    url, seconds = url_of(entry, base_url), _timeout(timeout)
    where = f"download it elsewhere and put it at {path}"
    os.makedirs(cache_dir(), exist_ok=True)
    fd, tmp = create_temporary(cache_dir(), entry.file)
    try:
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(url, timeout=seconds) as response:  # noqa: S310 (http(s) base)
                sha256 = _stream(response, out, url, progress)
            out.flush()
            os.fsync(out.fileno())
        if not sha256.startswith(entry.hash_prefix):
            raise DownloadError(
                f"download of {url} does not match its hash (SHA-256 {sha256[:16]}..., expected "
                f"{entry.hash_prefix}...): a damaged copy or a wrong mirror ({BASE_URL_ENV}); "
                "nothing was kept, run it again"
            )
        os.replace(tmp, path)
    except urllib.error.HTTPError as err:
        raise DownloadError(
            f"download of {url} failed: HTTP {err.code} {err.reason}; check {BASE_URL_ENV} or {where}"
        ) from None
    except (TimeoutError, socket.timeout) as err:
        raise DownloadError(
            f"download of {url} timed out after {seconds:g} s ({err or 'no data'}); run it "
            f"again, raise {TIMEOUT_ENV}, or {where}"
        ) from None
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise DownloadError(
                f"download of {url} timed out after {seconds:g} s; run it again, raise {TIMEOUT_ENV}, or {where}"
            ) from None
        raise DownloadError(f"cannot reach {url} (offline? {reason}); {where}") from None
    except OSError as err:  # connection reset mid-body, disk full, ...
        raise DownloadError(
            f"download of {url} failed ({type(err).__name__}: {err}); run it again or {where}"
        ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def convert(entry: WeightsEntry, raw_path: str) -> str:
    """Convert the downloaded file once into a resdet checkpoint beside it; returns its path."""
    from .loading import convert_checkpoint  # loading.py imports this module

    out = converted_path(entry)
    if not os.path.isfile(out):
        extra = {"weights_name": SCHEME + entry.name, "config_name": entry.config}
        if entry.classes:
            extra["classes"] = list(entry.classes)
        convert_checkpoint("torchvision", entry.arch, raw_path, out, extra_meta=extra)
    return out


def resolve_weights(
    name: str,
    converted: bool = True,
    base_url: str | None = None,
    timeout: float | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> str:
    """The local file of ``torchvision://NAME``, fetched and verified on first use: the converted
    resdet checkpoint (``converted=True``) or the torchvision file as downloaded."""
    entry = get_entry(name)
    if converted and os.path.isfile(converted_path(entry)):
        return converted_path(entry)
    if not os.path.isfile(cached_path(entry)):
        print(
            f"resdet: downloading {url_of(entry, base_url)} ({entry.size_mb:.0f} MB) to {cache_dir()}",
            file=sys.stderr,
            flush=True,
        )
    raw = download(entry, base_url=base_url, timeout=timeout, progress=progress)
    return convert(entry, raw) if converted else raw


def resolve_checkpoint(checkpoint: str, converted: bool = True) -> str:
    """``checkpoint`` itself, or the local file of a ``torchvision://NAME``."""
    return resolve_weights(checkpoint, converted=converted) if is_weights_name(checkpoint) else checkpoint
