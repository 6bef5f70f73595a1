"""Data loading at full dataset size: resdet's datasets against torchvision / pycocotools.

    resdet benchmark data [--images 118287] [--cls-images 1281167] [--seed 0] [--data-dir DIR]
                          [--workers 4] [--pass-fraction 1.0] [--batch-size 2]
                          [--throughput-images 64] [--skip build,loader,cls,throughput] [--json OUT]

Generates (once per settings, reused afterwards) a COCO-train-shaped set under
``DIR/coco_like`` -- ``--images`` entries, 80 categories with COCO's ids and names, ~7.3
instances per image with 10-40-point polygons, ~1 % crowds (RLE), ~1 % empty images, COCO's
image sizes, linked JPEGs of the recorded sizes -- and an ImageFolder of ``--cls-images`` tiny
linked JPEGs in 1000 class folders under ``DIR/imagefolder_like``. Then measures, each in a
fresh process:

* index builds: CPU seconds and peak resident memory of ``json.load``, pycocotools ``COCO``,
  torchvision ``CocoDetection``, resdet's detection and Mask R-CNN train sets (as
  frcnn_r50_fpn_coco / maskrcnn_r50_fpn_coco build them), a second Mask R-CNN build (it reads
  the record cache the first left), torchvision ``ImageFolder`` and resdet's (as
  resnet50_imagenet builds it); resdet's record cache is ``DIR/record_cache``, emptied first;
* DataLoader memory: the shipped Mask R-CNN and ImageNet training loaders with ``--workers``
  persistent workers over ``--pass-fraction`` of one pass: PSS of the main process plus its
  workers and each worker's private memory (Private_Clean + Private_Dirty of
  /proc/PID/smaps_rollup) at the first batch and after each quarter;
* one worker's throughput (decode, augment, collate; images per CPU second) of the shipped
  Mask R-CNN train pipeline against torchvision's detection reference transforms (random
  horizontal flip, to tensor, the model's resize) on the same images.

The summary holds the ratios resdet / peer (CPU time, peak memory; <= 1.0: resdet is not
worse) and the memory growth of the loaders. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field

from ..data.synthetic.coco_like import ensure_coco_like, ensure_imagefolder_like
from ..utils.io import atomic_write_json
from ._memory import measure

PARTS = ("build", "loader", "cls", "throughput")
COCO_BUILDS = ("json", "pycocotools", "torchvision", "resdet_det", "resdet_mask", "resdet_mask_again")
CLS_BUILDS = ("torchvision_cls", "resdet_cls")
_CHILD = "resdet.benchmarks._data_child"
CACHE_ENV = "RESDET_CACHE_DIR"  # resdet.data.record_cache reads it


@dataclass
class DataBenchOptions:
    images: int = 118287
    cls_images: int = 1281167
    seed: int = 0
    data_dir: str = "data/benchmark_data"
    workers: int = 4
    pass_fraction: float = 1.0
    batch_size: int = 2
    throughput_images: int = 64
    skip: tuple = ()
    json: str | None = None


@dataclass
class BuildRow:
    """One index build in a fresh process: CPU and wall seconds, resident memory after the
    imports (``base_mb``) and at the peak of the build (``peak_mb``), images indexed."""

    cpu_s: float
    wall_s: float
    base_mb: float
    peak_mb: float
    items: int


@dataclass
class LoaderMemory:
    """PSS rows (first batch, then each quarter) of one loader over part of a pass."""

    workers: int
    dataset_images: int
    images: int
    seconds: float
    rows: list


@dataclass
class DataBenchResult:
    options: dict
    files: dict
    builds: dict = field(default_factory=dict)
    loaders: dict = field(default_factory=dict)
    throughput: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def summarize(result: DataBenchResult) -> dict:
    """The flat figures of ``--json``: ratios resdet / peer and the loaders' memory growth."""
    b, s = result.builds, {}
    for ours, peer in (
        ("resdet_det", "torchvision"),
        ("resdet_mask", "torchvision"),
        ("resdet_mask", "pycocotools"),
        ("resdet_mask_again", "resdet_mask"),
        ("resdet_cls", "torchvision_cls"),
    ):
        if ours in b and peer in b:
            s[f"{ours}_vs_{peer}_cpu"] = _ratio(b[ours].cpu_s, b[peer].cpu_s)
            s[f"{ours}_vs_{peer}_peak"] = _ratio(b[ours].peak_mb, b[peer].peak_mb)
            # what the index itself adds on top of the imports (torch is imported in every child)
            s[f"{ours}_vs_{peer}_index_mb"] = _ratio(
                b[ours].peak_mb - b[ours].base_mb, b[peer].peak_mb - b[peer].base_mb
            )
    for name, row in b.items():
        s[f"{name}_cpu_s"], s[f"{name}_peak_mb"] = row.cpu_s, row.peak_mb
    for name, loader in result.loaders.items():
        first, last = loader.rows[0], loader.rows[-1]
        s[f"{name}_loader_pss_start_mb"], s[f"{name}_loader_pss_end_mb"] = first["total_pss_mb"], last["total_pss_mb"]
        s[f"{name}_loader_pss_growth"] = _ratio(last["total_pss_mb"], first["total_pss_mb"])
        growth = [end - start for start, end in zip(first["worker_private_mb"], last["worker_private_mb"])]
        s[f"{name}_worker_private_growth_mb"] = max(growth) if growth else None
        s[f"{name}_loader_pass_fraction"] = loader.images / loader.dataset_images
    if result.throughput:
        ours, theirs = result.throughput["resdet"], result.throughput["torchvision"]
        s["throughput_resdet_img_s"], s["throughput_torchvision_img_s"] = ours["images_per_s"], theirs["images_per_s"]
        s["throughput_ratio"] = _ratio(ours["images_per_s"], theirs["images_per_s"])
    return s


def run(options: DataBenchOptions, log=print) -> DataBenchResult:
    """Generate (or reuse) the sets and measure every part not in ``options.skip``."""
    root = os.path.abspath(options.data_dir)
    log(f"data set: {options.images} COCO-like images under {root}/coco_like (generated once per settings)")
    ann_file, img_dir = ensure_coco_like(os.path.join(root, "coco_like"), options.images, options.seed)
    files = {"ann_file": ann_file, "img_dir": img_dir, "ann_file_mb": os.path.getsize(ann_file) / 2**20}
    if "cls" not in options.skip:
        log(f"data set: {options.cls_images} ImageFolder images in 1000 classes under {root}/imagefolder_like")
        files["cls_dir"] = ensure_imagefolder_like(
            os.path.join(root, "imagefolder_like"), options.cls_images, seed=options.seed
        )
    result = DataBenchResult(options=asdict(options), files=files)
    # a record cache of this run's own: the first builds parse (cold), the second one and the
    # loaders read what they left (resdet's cache is per node; RESDET_CACHE_DIR points it here)
    cache = os.path.join(root, "record_cache")
    shutil.rmtree(cache, ignore_errors=True)
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = files["record_cache"] = cache
    try:
        _measure_all(options, result, files, log)
    finally:
        if previous is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = previous
    result.summary = summarize(result)
    return result


def _measure_all(options: DataBenchOptions, result: DataBenchResult, files: dict, log) -> None:
    builds = (COCO_BUILDS if "build" not in options.skip else ()) + (CLS_BUILDS if "cls" not in options.skip else ())
    for what in builds:
        log(f"building {what} in a fresh process ...")
        result.builds[what] = BuildRow(**measure(dict(files, call=f"{_CHILD}:build", what=what)))
    if "loader" not in options.skip:
        for what in ("resdet_mask",) + (("resdet_cls",) if "cls" not in options.skip else ()):
            log(f"loader memory: {what}, {options.workers} workers, {options.pass_fraction:g} of a pass ...")
            result.loaders[what] = LoaderMemory(
                **measure(
                    dict(
                        files,
                        call=f"{_CHILD}:loader_memory",
                        what=what,
                        workers=options.workers,
                        batch_size=options.batch_size,
                        pass_fraction=options.pass_fraction,
                    )
                )
            )
    if "throughput" not in options.skip:
        log(f"throughput: {options.throughput_images} images, resdet vs torchvision reference transforms ...")
        result.throughput = measure(
            dict(files, call=f"{_CHILD}:throughput", images=options.throughput_images, batch_size=options.batch_size)
        )


def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def report(result: DataBenchResult) -> str:
    """The printed table."""
    lines = [
        f"annotation file {result.files['ann_file']} ({result.files['ann_file_mb']:.0f} MB)",
        "",
        f"{'index build (fresh process)':32s} {'CPU s':>8s} {'wall s':>8s} {'base MB':>9s} {'peak MB':>9s} "
        f"{'images':>9s}",
    ]
    for name, row in result.builds.items():
        lines.append(
            f"{name:32s} {row.cpu_s:8.1f} {row.wall_s:8.1f} {row.base_mb:9.0f} {row.peak_mb:9.0f} {row.items:9d}"
        )
    for name, loader in result.loaders.items():
        lines += [
            "",
            f"loader {name}: {loader.workers} persistent workers, {loader.images} of "
            f"{loader.dataset_images} images in {loader.seconds:.0f} s",
            f"{'pass':>8s} {'images':>8s} {'main PSS':>9s} {'workers PSS':>12s} {'total PSS':>10s}  "
            "private MB per worker",
        ]
        for row in loader.rows:
            lines.append(
                f"{row['fraction']:8.4f} {row['images']:8d} {row['main_pss_mb']:9.0f} "
                f"{row['workers_pss_mb']:12.0f} {row['total_pss_mb']:10.0f}  "
                + " ".join(f"{v:.0f}" for v in row["worker_private_mb"])
            )
    if result.throughput:
        lines += ["", "one worker's throughput (decode, augment, collate), images per CPU second"]
        for name, row in result.throughput.items():
            lines.append(f"{name:32s} {row['images_per_s']:8.1f}  ({row['images']} images, {row['cpu_s']:.1f} s)")
    lines += ["", "summary (ratios resdet / peer; <= 1.0: resdet is not worse)"]
    lines += [
        f"  {k}: {_fmt(v, '.3f') if isinstance(v, float) else v}"
        for k, v in result.summary.items()
        if "_vs_" in k or k.endswith(("ratio", "growth", "growth_mb"))
    ]
    return "\n".join(lines)


def parse_args(argv=None) -> DataBenchOptions:
    defaults = DataBenchOptions()
    parser = argparse.ArgumentParser(
        prog="resdet benchmark data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=defaults.images, help="COCO-like image entries")
    parser.add_argument("--cls-images", type=int, default=defaults.cls_images, help="ImageFolder images")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="generator seed")
    parser.add_argument("--data-dir", default=defaults.data_dir, help="where the generated sets live (reused)")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="DataLoader workers")
    parser.add_argument(
        "--pass-fraction",
        type=float,
        default=defaults.pass_fraction,
        help="share of one pass the loader-memory runs iterate (0 < f <= 1)",
    )
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="loader batch size")
    parser.add_argument(
        "--throughput-images",
        type=int,
        default=defaults.throughput_images,
        help="images timed for the pipeline throughput",
    )
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {', '.join(PARTS)}")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    skip = tuple(p for p in args.skip.split(",") if p)
    unknown = [p for p in skip if p not in PARTS]
    if unknown:
        parser.error(f"--skip {','.join(unknown)}: unknown part; allowed: {', '.join(PARTS)}")
    if not 0 < args.pass_fraction <= 1:
        parser.error(f"--pass-fraction {args.pass_fraction}: must be in (0, 1]")
    for name in ("images", "cls_images", "workers", "batch_size", "throughput_images"):
        if getattr(args, name) < (0 if name == "workers" else 1):
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be positive")
    return DataBenchOptions(
        images=args.images,
        cls_images=args.cls_images,
        seed=args.seed,
        data_dir=args.data_dir,
        workers=args.workers,
        pass_fraction=args.pass_fraction,
        batch_size=args.batch_size,
        throughput_images=args.throughput_images,
        skip=skip,
        json=args.json,
    )


def main(argv=None) -> int:
    if not sys.platform.startswith("linux"):
        print("benchmark data reads /proc (PSS, private memory, peak RSS): it runs on Linux only", file=sys.stderr)
        return 2
    options = parse_args(argv)
    result = run(options, log=lambda msg: print(msg, flush=True))
    print(report(result))
    if options.json:
        atomic_write_json([asdict(result)], options.json)
    return 0
