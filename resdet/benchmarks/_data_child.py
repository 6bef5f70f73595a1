"""The fresh-process measurements of ``benchmark data`` (run through ``_memory.measure``).

``build``: CPU time and peak resident memory of building one index (resdet's train sets as
the shipped configs build them, torchvision's ``CocoDetection`` / ``ImageFolder``,
pycocotools' ``COCO``, plain ``json.load``). ``loader_memory``: proportional (PSS) and private
memory of a DataLoader's main process and persistent workers over (a fraction of) one pass.
``throughput``: images/s of one worker's work (decode, augment, collate) for resdet's shipped
train pipeline and for torchvision's detection reference transforms on the same images.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from typing import Any, Callable

from ._memory import _reset_peak, _status_mb

DET_CONFIG, MASK_CONFIG, CLS_CONFIG = "frcnn_r50_fpn_coco", "maskrcnn_r50_fpn_coco", "resnet50_imagenet"


def _train_dataset_cfg(config: str, **paths: str) -> dict:
    """The shipped config's ``train_dataloader`` with the dataset's paths replaced."""
    from ..utils.config import load_config

    loader = load_config(config).to_dict()["train_dataloader"]
    loader["dataset"].update(paths)
    return loader


def _builder(spec: dict) -> Callable[[], Any]:
    """The build of ``spec['what']`` as a call, with its imports and config loading done
    (import time is not index time)."""
    what = spec["what"]
    if what == "json":
        import json

        def load_json():
            with open(spec["ann_file"], encoding="utf-8") as fh:
                return json.load(fh)

        return load_json
    if what == "pycocotools":
        from pycocotools.coco import COCO

        return lambda: _quiet(COCO, spec["ann_file"])
    if what == "torchvision":
        from torchvision.datasets import CocoDetection

        return lambda: _quiet(CocoDetection, spec["img_dir"], spec["ann_file"])
    if what == "torchvision_cls":
        from torchvision.datasets import ImageFolder

        return lambda: ImageFolder(spec["cls_dir"])
    from ..registry import DATASETS

    if what == "resdet_cls":
        cfg = _train_dataset_cfg(CLS_CONFIG, data_root=spec["cls_dir"])["dataset"]
    else:
        config = MASK_CONFIG if what.startswith("resdet_mask") else DET_CONFIG
        cfg = _train_dataset_cfg(config, ann_file=spec["ann_file"], img_dir=spec["img_dir"])["dataset"]
    DATASETS.get(cfg["type"])  # the registry imports its package now
    return lambda: DATASETS.build(cfg)


def _quiet(function, *args):
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        return function(*args)


def build(spec: dict) -> dict:
    """``spec``: ``what`` plus ``ann_file`` / ``img_dir`` / ``cls_dir``. Returns CPU and wall
    seconds of the build, the resident memory before it (``base_mb``, after the imports) and
    the peak while building (``peak_mb``, the whole process)."""
    import warnings

    warnings.simplefilter("ignore")
    make = _builder(spec)
    base = _status_mb("VmRSS")
    _reset_peak()
    cpu, wall = time.process_time(), time.perf_counter()
    index = make()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    size = len(index["images"]) if isinstance(index, dict) else len(getattr(index, "imgs", None) or index)
    return {"cpu_s": cpu, "wall_s": wall, "base_mb": base, "peak_mb": _status_mb("VmHWM"), "items": size}


def _smaps_mb(pid: int) -> dict:
    """PSS and private (clean + dirty) memory of ``pid`` from ``/proc/PID/smaps_rollup``."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and parts[0].rstrip(":") in ("Pss", "Private_Clean", "Private_Dirty", "Rss"):
                values[parts[0].rstrip(":")] = int(parts[1]) / 1024.0
    return {
        "pss_mb": values.get("Pss", 0.0),
        "private_mb": values.get("Private_Clean", 0.0) + values.get("Private_Dirty", 0.0),
        "rss_mb": values.get("Rss", 0.0),
    }


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the loader's workers), from ``/proc``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def _memory_row(images: int, fraction: float) -> dict:
    main = _smaps_mb(os.getpid())
    workers = []
    for pid in _children(os.getpid()):
        with contextlib.suppress(OSError):
            workers.append(_smaps_mb(pid))
    return {
        "fraction": round(fraction, 4),
        "images": images,
        "main_pss_mb": main["pss_mb"],
        "workers_pss_mb": sum(w["pss_mb"] for w in workers),
        "total_pss_mb": main["pss_mb"] + sum(w["pss_mb"] for w in workers),
        "worker_private_mb": [w["private_mb"] for w in workers],
    }


def loader_memory(spec: dict) -> dict:
    """``spec``: ``what`` (``resdet_mask`` / ``resdet_det`` / ``resdet_cls``), paths,
    ``workers``, ``batch_size``, ``pass_fraction``. Iterates the shipped config's training
    loader (persistent workers) for that share of one pass; memory rows at the start (first
    batch) and after each quarter."""
    import warnings

    warnings.simplefilter("ignore")
    from ..data.loader import build_dataloader

    what = spec["what"]
    if what == "resdet_cls":
        cfg = _train_dataset_cfg(CLS_CONFIG, data_root=spec["cls_dir"])
    else:
        cfg = _train_dataset_cfg(
            MASK_CONFIG if what == "resdet_mask" else DET_CONFIG, ann_file=spec["ann_file"], img_dir=spec["img_dir"]
        )
    cfg.update(
        num_workers=int(spec["workers"]), persistent_workers=True, batch_size=int(spec["batch_size"]), pin_memory=False
    )
    loader = build_dataloader(cfg, training=True, seed=0, rank=0, world_size=1)
    total = max(1, int(round(len(loader.raw_dataset) * float(spec["pass_fraction"]))))
    marks = [max(1, round(total * q / 4)) for q in (1, 2, 3, 4)]
    rows, seen, start = [], 0, time.perf_counter()
    for batch in loader:
        seen += len(batch["inputs"])
        if not rows:
            rows.append(_memory_row(seen, seen / len(loader.raw_dataset)))
        while marks and seen >= marks[0]:
            marks.pop(0)
            rows.append(_memory_row(seen, seen / len(loader.raw_dataset)))
        if not marks:
            break
    return {
        "dataset_images": len(loader.raw_dataset),
        "images": seen,
        "seconds": time.perf_counter() - start,
        "workers": int(spec["workers"]),
        "rows": rows,
    }


def _torchvision_reference(img_dir: str, ann_file: str, min_size: int, max_size: int):
    """torchvision's detection reference recipe in ``transforms.v2``: COCO targets (boxes,
    labels, masks from polygons / RLE), random horizontal flip, to a float tensor, then the
    resize ``GeneralizedRCNNTransform`` does inside the model (shorter side ``min_size``,
    longer side at most ``max_size``)."""
    import torch
    from torchvision import datasets
    from torchvision.transforms import v2

    transforms = v2.Compose(
        [
            v2.RandomHorizontalFlip(0.5),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Resize(min_size, max_size=max_size),
        ]
    )
    with contextlib.redirect_stdout(io.StringIO()):
        dataset = datasets.CocoDetection(img_dir, ann_file, transforms=transforms)
    return datasets.wrap_dataset_for_transforms_v2(dataset, target_keys=("boxes", "labels", "masks"))


def throughput(spec: dict) -> dict:
    """``spec``: paths, ``images`` (how many), ``batch_size``. One process = one worker's
    share: samples of the shipped Mask R-CNN train pipeline plus ``det_collate``, against
    torchvision's reference transforms plus its tuple collate, on the same image ids."""
    import warnings

    warnings.simplefilter("ignore")
    from ..data.loader import build_dataset
    from ..registry import COLLATE_FUNCTIONS

    cfg = _train_dataset_cfg(MASK_CONFIG, ann_file=spec["ann_file"], img_dir=spec["img_dir"])
    resize = next(t for t in cfg["dataset"]["pipeline"] if t["type"] == "ResizeShortestEdge")
    ours = build_dataset(cfg["dataset"])
    collate = COLLATE_FUNCTIONS.get(cfg["collate"])
    theirs = _torchvision_reference(
        spec["img_dir"], spec["ann_file"], int(resize["short_edge_length"]), int(resize["max_size"])
    )
    position = {img_id: k for k, img_id in enumerate(theirs.ids)}
    count = min(int(spec["images"]), len(ours))
    ours_idx = list(range(count))
    ids = getattr(ours, "img_ids", None) or [ours.get_ann(k)["img_id"] for k in ours_idx]
    theirs_idx = [position[ids[k]] for k in ours_idx]
    batch = int(spec["batch_size"])
    result = {}
    for name, fetch, collate_fn, indices in (
        ("resdet", ours.__getitem__, collate, ours_idx),
        ("torchvision", theirs.__getitem__, lambda s: tuple(zip(*s)), theirs_idx),
    ):
        fetch(indices[0])  # first-call costs (lazy imports, caches) out of the timing
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, count, batch):
            collate_fn([fetch(i) for i in indices[start : start + batch]])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        result[name] = {"images": count, "cpu_s": cpu, "wall_s": wall, "images_per_s": count / cpu}
    return result
