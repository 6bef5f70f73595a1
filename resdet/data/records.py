"""Flat records: a dataset's index held as a few numpy arrays instead of Python objects.

Why: a list of per-image dicts (or lists of floats) is millions of Python objects; forked
DataLoader workers touch their reference counts on every access, so each worker ends up
with its own copy of the pages (copy-on-access), and ``spawn`` workers get a pickled copy.
A numpy array is one object: its data pages are never written, so forked workers share
them, and a ``FlatRecords`` loaded from a file is memory-mapped (the page cache holds one
copy per node) and pickles as its path (``spawn`` / ``forkserver`` workers map the same file).

API:
- ``FlatRecords(arrays, meta)``: ``arrays`` maps names to numpy arrays (any shape, a plain
  dtype: no objects), ``meta`` is JSON-able (counts, class names, options).
  ``records[name]`` is an array, ``len(records)`` is ``meta['length']`` when given.
- ragged fields (a variable-length run per row) are two arrays: ``name`` (the values, rows
  concatenated) and ``name + OFFSETS`` (``int64``, ``N + 1`` entries);
  ``pack_ragged(parts)`` builds them, ``records.row(name, i)`` reads row ``i`` (a view).
- strings: ``pack_strings(strings)`` -> UTF-8 bytes + offsets (a ragged ``uint8`` field);
  ``records.string(name, i)`` decodes one.
- ``records.save(path)``: one file (a JSON header, then each array 64-byte aligned), written
  to a temporary file, fsynced and renamed: a reader never sees a torn file.
- ``FlatRecords.load(path)``: memory-maps it (read-only arrays); ``RecordFileError`` when the
  file is truncated, damaged (a blake2b of the data is checked) or not a records file
  (callers rebuild).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..utils.io import atomic_write_bytes

OFFSETS = ".offsets"
MAGIC = b"RESDET-RECORDS\x00\x01"  # 16 bytes: name and format version
_ALIGN = 64


class RecordFileError(Exception):
    """A records file that cannot be used (truncated, foreign, damaged): rebuild it."""


def pack_ragged(parts: Sequence[Any], dtype: Any, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of different lengths -> ``(values, offsets)``: row ``i`` is
    ``values[offsets[i]:offsets[i + 1]]``. ``width`` reshapes values to ``K x width``."""
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    shape = (-1,) if width is None else (-1, width)
    arrays = [np.asarray(p, dtype=dtype).reshape(shape) for p in parts if len(p)]
    values = np.concatenate(arrays) if arrays else np.zeros((0,) if width is None else (0, width), dtype=dtype)
    return values.astype(dtype, copy=False), offsets


def pack_strings(strings: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings -> ``(utf8 bytes as uint8, offsets)`` (read back with ``FlatRecords.string``)."""
    encoded = [s.encode("utf-8", "surrogatepass") for s in strings]
    values = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return values, offsets


class FlatRecords:
    """Named numpy arrays plus JSON-able ``meta`` (see the module docstring)."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
        for name, array in arrays.items():
            if not isinstance(array, np.ndarray) or array.dtype.hasobject:
                raise TypeError(f"FlatRecords: field {name!r} must be a numpy array of a plain dtype")
        self.arrays = dict(arrays)
        self.meta = dict(meta or {})
        self.path: str | None = None  # set when memory-mapped from a file

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def __len__(self) -> int:
        return int(self.meta.get("length", 0))

    def row(self, name: str, i: int) -> np.ndarray:
        """Row ``i`` of the ragged field ``name`` (a view, no copy)."""
        offsets = self.arrays[name + OFFSETS]
        return self.arrays[name][offsets[i] : offsets[i + 1]]

    def string(self, name: str, i: int) -> str:
        """Row ``i`` of the string field ``name``."""
        return self.row(name, i).tobytes().decode("utf-8", "surrogatepass")

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())

    # ------------------------------------------------------------------ file
    def save(self, path: str) -> str:
        """Write one file atomically (temporary file, fsync, rename); returns ``path``."""
        entries, offset = {}, 0
        for name, array in self.arrays.items():
            offset = -(-offset // _ALIGN) * _ALIGN
            entries[name] = dict(dtype=array.dtype.str, shape=list(array.shape), offset=offset)
            offset += array.nbytes
        parts, position = [], 0
        for name, array in self.arrays.items():
            parts += [b"\0" * (entries[name]["offset"] - position), np.ascontiguousarray(array).tobytes()]
            position = entries[name]["offset"] + array.nbytes
        data = b"".join(parts)
        header = json.dumps(
            dict(
                meta=self.meta,
                arrays=entries,
                data_bytes=len(data),
                blake2b=hashlib.blake2b(data, digest_size=16).hexdigest(),
            )
        ).encode()
        head = MAGIC + struct.pack("<Q", len(header)) + header
        atomic_write_bytes(head + b"\0" * (-len(head) % _ALIGN) + data, path)
        return path

    @classmethod
    def load(cls, path: str, verify: bool = True) -> FlatRecords:
        """Memory-map a file written by ``save`` (arrays are read-only views of the map).
        ``verify`` checks the data's blake2b (about 1 s per GB): a damaged file raises
        ``RecordFileError`` instead of giving wrong records."""
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < len(MAGIC) + 8:
                raise RecordFileError(f"records file {path} is truncated ({size} bytes)")
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            if buf[: len(MAGIC)] != MAGIC:
                raise RecordFileError(f"records file {path} is not a resdet records file (version {MAGIC!r})")
            (length,) = struct.unpack("<Q", buf[len(MAGIC) : len(MAGIC) + 8])
            header = json.loads(bytes(buf[len(MAGIC) + 8 : len(MAGIC) + 8 + length]))
            start = -(-(len(MAGIC) + 8 + length) // _ALIGN) * _ALIGN
            if start + int(header["data_bytes"]) != size:
                raise RecordFileError(
                    f"records file {path} is truncated or padded: {size} bytes, "
                    f"its header says {start + int(header['data_bytes'])}"
                )
            if verify and hashlib.blake2b(memoryview(buf)[start:], digest_size=16).hexdigest() != header["blake2b"]:
                raise RecordFileError(f"records file {path} is damaged (its checksum does not match its data)")
            arrays = {}
            for name, entry in header["arrays"].items():
                dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
                count = int(np.prod(shape, dtype=np.int64))
                arrays[name] = np.frombuffer(
                    buf, dtype=dtype, count=count, offset=start + int(entry["offset"])
                ).reshape(shape)
        except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError) as err:
            raise RecordFileError(f"records file {path} is damaged: {type(err).__name__}: {err}") from err
        records = cls(arrays, header["meta"])
        records.path = path
        return records

    def __reduce__(self):
        # spawn / forkserver workers map the same file instead of receiving a pickled copy
        if self.path is not None:
            return (FlatRecords.load, (self.path, False))
        return (FlatRecords, (self.arrays, self.meta))

    def __repr__(self) -> str:
        where = f", file={self.path}" if self.path else ""
        return f"FlatRecords({len(self)} rows, {len(self.arrays)} arrays, {self.nbytes() / 2**20:.1f} MiB{where})"
