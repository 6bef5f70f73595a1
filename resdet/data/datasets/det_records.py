"""Detection records as flat arrays (``FlatRecords``): how ``DetectionDataset`` stores its index.

Per image (``N`` rows): ``img_id`` (int64, or the string field ``img_id_str`` when ids are
names), ``file`` (string field), ``height``/``width`` (int64), ``inst.offsets`` (``N + 1``:
the image's instances), ``has_unclipped`` (bool) with ``u_inst.offsets``, and one array per
extra scalar field a subclass puts in its records (``x.<name>``, e.g. ImageNet's ``label``).

Per instance (kept ones, prefix ``''``; the ``unclipped`` ones, prefix ``'u_'``, which
``load_sample`` uses when the recorded size proves wrong): ``boxes`` (float32 ``M x 4``
xyxy), ``labels`` (int64), ``ignore`` (bool) and, with masks, ``segm_kind`` (uint8: 0
polygons, 1 compressed RLE), ``segm_polys.offsets`` (instance -> its polygons),
``poly.offsets`` (polygon -> its coordinates), ``poly`` (float32 ``x0, y0, x1, y1 ...``)
and ``rle`` (the RLE ``counts`` bytes, a ragged uint8 field; empty for polygons).

``RecordBuilder`` collects records while a dataset parses its files; ``RecordView`` gives
``records[i]`` back as the dict the datasets used before (``img_id, file, height, width,
boxes, labels, ignore[, segms][, unclipped]``), built on access from the arrays.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..records import OFFSETS, FlatRecords, pack_ragged, pack_strings

_BASE_KEYS = ("img_id", "file", "height", "width", "boxes", "labels", "ignore", "segms", "unclipped")


class _Instances:
    """Instance arrays collected in chunks (one chunk per image or per bulk add)."""

    def __init__(self) -> None:
        self.boxes: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.ignore: list[np.ndarray] = []
        self.segms: list[Any] = []

    def add(self, boxes: np.ndarray, labels: np.ndarray, ignore: np.ndarray, segms: Sequence | None) -> None:
        self.boxes.append(np.asarray(boxes, np.float32).reshape(-1, 4))
        self.labels.append(np.asarray(labels, np.int64).reshape(-1))
        self.ignore.append(np.asarray(ignore, bool).reshape(-1))
        if segms is not None:
            self.segms.extend(segms)

    def arrays(self, prefix: str, with_masks: bool) -> dict[str, np.ndarray]:
        cat = lambda parts, empty: np.concatenate(parts) if parts else empty  # noqa: E731
        out = {
            prefix + "boxes": cat(self.boxes, np.zeros((0, 4), np.float32)),
            prefix + "labels": cat(self.labels, np.zeros(0, np.int64)),
            prefix + "ignore": cat(self.ignore, np.zeros(0, bool)),
        }
        if with_masks:
            out.update(_pack_segms(self.segms, prefix))
        return out


def _pack_segms(segms: Sequence[Any], prefix: str) -> dict[str, np.ndarray]:
    """Polygons (lists of coordinate sequences) and compressed RLE dicts -> flat arrays."""
    kind = np.fromiter((0 if isinstance(s, list) else 1 for s in segms), dtype=np.uint8, count=len(segms))
    polys = [s if isinstance(s, list) else [] for s in segms]
    per_instance = np.zeros(len(segms) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, polys), np.int64, count=len(polys)), out=per_instance[1:])
    flat = list(itertools.chain.from_iterable(polys))
    lengths = np.fromiter(map(len, flat), np.int64, count=len(flat))
    poly_offsets = np.zeros(len(flat) + 1, np.int64)
    np.cumsum(lengths, out=poly_offsets[1:])
    coords = np.fromiter(itertools.chain.from_iterable(flat), np.float32, count=int(poly_offsets[-1]))
    counts = [s["counts"] if isinstance(s, dict) else b"" for s in segms]
    counts = [c.encode("ascii") if isinstance(c, str) else bytes(c) for c in counts]
    rle, rle_offsets = pack_ragged([np.frombuffer(c, np.uint8) for c in counts], np.uint8)
    return {
        prefix + "segm_kind": kind,
        prefix + "segm_polys" + OFFSETS: per_instance,
        prefix + "poly": coords,
        prefix + "poly" + OFFSETS: poly_offsets,
        prefix + "rle": rle,
        prefix + "rle" + OFFSETS: rle_offsets,
    }


class RecordBuilder:
    """Collects a dataset's records while it parses; ``finish`` packs them."""

    def __init__(self, with_masks: bool) -> None:
        self.with_masks = with_masks
        self.img_ids: list = []
        self.files: list[str] = []
        self.heights: list[int] = []
        self.widths: list[int] = []
        self.counts: list[np.ndarray] = []
        self.unclipped_counts: list[np.ndarray] = []
        self.has_unclipped: list[np.ndarray] = []
        self.extras: dict[str, list] = {}
        self.kept, self.unclipped = _Instances(), _Instances()

    def add_images(
        self,
        img_ids: Sequence,
        files: Sequence[str],
        heights: Sequence[int],
        widths: Sequence[int],
        counts: np.ndarray,
        has_unclipped: np.ndarray,
        unclipped_counts: np.ndarray,
        extras: dict | None = None,
    ) -> None:
        """Images in order; their instances are added (in the same order) with ``kept`` /
        ``unclipped.add``. ``counts`` / ``unclipped_counts``: instances per image."""
        self.img_ids.extend(img_ids)
        self.files.extend(files)
        self.heights.extend(int(h) for h in heights)
        self.widths.extend(int(w) for w in widths)
        self.counts.append(np.asarray(counts, np.int64).reshape(-1))
        self.unclipped_counts.append(np.asarray(unclipped_counts, np.int64).reshape(-1))
        self.has_unclipped.append(np.asarray(has_unclipped, bool).reshape(-1))
        for key, value in (extras or {}).items():
            self.extras.setdefault(key, []).extend(value)

    def __len__(self) -> int:
        return len(self.img_ids)

    def finish(self, meta: dict) -> FlatRecords:
        n = len(self.img_ids)
        arrays: dict[str, np.ndarray] = {}
        if all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in self.img_ids):
            arrays["img_id"] = np.asarray(self.img_ids, dtype=np.int64).reshape(-1)
        elif all(isinstance(i, str) for i in self.img_ids):
            arrays["img_id_str"], arrays["img_id_str" + OFFSETS] = pack_strings(self.img_ids)
        else:
            raise TypeError("image ids must be all integers or all strings")
        arrays["file"], arrays["file" + OFFSETS] = pack_strings(self.files)
        arrays["height"] = np.asarray(self.heights, np.int64).reshape(-1)
        arrays["width"] = np.asarray(self.widths, np.int64).reshape(-1)
        for name, counts in (("inst", self.counts), ("u_inst", self.unclipped_counts)):
            offsets = np.zeros(n + 1, np.int64)
            if counts:
                np.cumsum(np.concatenate(counts), out=offsets[1:])
            arrays[name + OFFSETS] = offsets
        arrays["has_unclipped"] = np.concatenate(self.has_unclipped) if self.has_unclipped else np.zeros(0, bool)
        for key, values in self.extras.items():
            arrays["x." + key] = np.asarray(values)
        arrays.update(self.kept.arrays("", self.with_masks))
        arrays.update(self.unclipped.arrays("u_", self.with_masks))
        return FlatRecords(arrays, dict(meta, length=n, with_masks=self.with_masks))


class RecordView(Sequence):
    """``records[i]`` of the kept rows ``rows`` of ``store``, as a dict (see the module docstring)."""

    def __init__(self, store: FlatRecords, rows: np.ndarray) -> None:
        self.store, self.rows = store, np.asarray(rows, np.int64)
        self.with_masks = bool(store.meta.get("with_masks"))
        self.extra_keys = [name[2:] for name in store.arrays if name.startswith("x.")]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: int) -> dict:  # type: ignore[override]
        return self.record(int(self.rows[idx]))

    def img_id(self, row: int) -> Any:
        if "img_id" in self.store:
            return int(self.store["img_id"][row])
        return self.store.string("img_id_str", row)

    def file(self, row: int) -> str:
        return self.store.string("file", row)

    def size(self, row: int) -> tuple[int, int]:
        """Recorded ``(height, width)``."""
        return int(self.store["height"][row]), int(self.store["width"][row])

    def record(self, row: int, segms: bool = True) -> dict:
        height, width = self.size(row)
        record = dict(
            img_id=self.img_id(row), file=self.file(row), height=height, width=width, **self._instances(row, "", segms)
        )
        if self.store["has_unclipped"][row]:
            record["unclipped"] = self._instances(row, "u_", segms)
        for key in self.extra_keys:
            record[key] = self.store["x." + key][row].item()
        return record

    def _instances(self, row: int, prefix: str, segms: bool) -> dict:
        s = self.store
        offsets = s[prefix + "inst" + OFFSETS]
        a, b = int(offsets[row]), int(offsets[row + 1])
        out = dict(boxes=s[prefix + "boxes"][a:b], labels=s[prefix + "labels"][a:b], ignore=s[prefix + "ignore"][a:b])
        if self.with_masks and segms:
            out["segms"] = [self._segm(prefix, j, row) for j in range(a, b)]
        elif prefix:
            out["segms"] = None
        return out

    def _segm(self, prefix: str, j: int, row: int) -> Any:
        """Instance ``j``'s polygons (a list of float32 arrays) or compressed RLE dict."""
        s = self.store
        if s[prefix + "segm_kind"][j] == 1:
            return {"size": [int(s["height"][row]), int(s["width"][row])], "counts": s.row(prefix + "rle", j).tobytes()}
        polys = s[prefix + "segm_polys" + OFFSETS]
        offsets, coords = s[prefix + "poly" + OFFSETS], s[prefix + "poly"]
        return [coords[offsets[k] : offsets[k + 1]].copy() for k in range(int(polys[j]), int(polys[j + 1]))]
