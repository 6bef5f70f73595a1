"""Re-run the paper's central CIFAR findings on a CPU proxy resdet generates itself
(data/proxy32: twenty shape classes at 32 x 32, 20k training / 5k test images):

- degradation (Fig. 6): plain-20 / plain-56 vs ResNet-20 / ResNet-56 (option A);
- response (Fig. 7): std of the 3x3 layer responses of those four nets on the test split;
- shortcuts (Table 3's direction): ResNet-20 with shortcut options A, B, C;
- detection (Tables 7/8): Faster R-CNN with VGG-16 against ResNet-50 C4, both pretrained by
  resdet's classification stage on the shapes set, fine-tuned on a harder shapes detection set.

    resdet reproduce                        # everything, into docs/reproduction/
    resdet reproduce --only degradation --seed 1    # adds seed 1 to results.json
    resdet reproduce --only detection --seed 1
    resdet reproduce --smoke --out /tmp/r   # a few iterations on tiny data (the test)

The CIFAR recipe is the paper's (Sec. 4.2) scaled to the budget: SGD lr 0.1, momentum 0.9,
weight decay 1e-4, batch 128, the paper's warm-up rule (lr 0.01 until the training error is
below 80%), lr / 10 at 50% and 75% of --iterations, 4-pixel pad + random crop + flip,
per-pixel mean. Each call trains one seed; results.json gathers the seeds of calls with the
same settings and reports their spread. The runs train in --workers processes of
one thread each (robust on CPU cores shared with other jobs), in --work-root (finished runs
are reused, interrupted ones resume); results.json, degradation.png, layer_response.png and
shortcuts.png go to --out. See docs/reproduction.md for the measured numbers.
"""

from __future__ import annotations

import argparse
import sys

from resdet.cli._errors import command
from resdet.utils.outputs import check_output_path

SMOKE = dict(iterations=2, batch_size=8, num_train=40, num_test=20, val_points=1, log_interval=1, threads=1)
SMOKE_DETECTION = dict(
    cls_iterations=2,
    det_iterations=2,
    cls_batch_size=4,
    batch_size=2,
    cls_num_train=10,
    cls_num_val=10,
    num_train=6,
    num_val=4,
    timing_images=1,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        choices=("degradation", "response", "shortcuts", "detection"),
        default=None,
        help="run one experiment (response uses the degradation runs)",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (the data set is fixed)")
    parser.add_argument("--iterations", type=int, default=None, help="iterations per run (default 2400)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 (the paper's)")
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="CIFAR runs start at lr 0.1 (without the paper's rule: lr 0.01 until training error < 80%%)",
    )
    parser.add_argument(
        "--cls-iterations", type=int, default=None, help="detection: classification pretraining iterations (2000)"
    )
    parser.add_argument("--det-iterations", type=int, default=None, help="detection: fine-tuning iterations (600)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="training processes at once (default 4, one thread each; detection: one per backbone; 1: this process)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per training process (default 1 with --workers > 1, else torch's)",
    )
    parser.add_argument("--out", default=None, help="results.json and figures (default docs/reproduction)")
    parser.add_argument("--work-root", default=None, help="training runs (default work_dirs/reproduce)")
    parser.add_argument("--data-root", default=None, help="the generated proxy set (default data/proxy32)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few iterations on tiny data into --out (default: a temporary folder, where only results.json and "
        "the figures are kept: the runs' checkpoints, 4 GB with VGG-16's, and the data are deleted at the end)",
    )
    return parser


@command("reproduce")
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    check_output_path(args.out, what="--out", directory=True)  # before hours of training
    import os
    import shutil
    import tempfile

    from resdet.apis.reproduce import ReproduceSettings, reproduce
    from resdet.apis.reproduce_det import DetectionSettings

    settings = ReproduceSettings(seed=args.seed, workers=4)
    detection = DetectionSettings()
    scratch = None
    if args.smoke:
        scratch = args.out or tempfile.mkdtemp(prefix="resdet_reproduce_smoke_")
        settings = ReproduceSettings(
            seed=args.seed,
            out_dir=scratch,
            work_root=os.path.join(scratch, "runs"),
            data_root=os.path.join(scratch, "data"),
            workers=1,
            **SMOKE,
        )
        detection = DetectionSettings(
            cls_data_root=os.path.join(scratch, "data", "shapes_cls"),
            data_root=os.path.join(scratch, "data", "shapes_hard"),
            **SMOKE_DETECTION,
        )
    if args.no_warmup:
        settings.warmup = False
    for key, value in (("cls_iterations", args.cls_iterations), ("det_iterations", args.det_iterations)):
        if value is not None:
            setattr(detection, key, value)
    for key, value in (
        ("iterations", args.iterations),
        ("batch_size", args.batch_size),
        ("workers", args.workers),
        ("threads", args.threads),
        ("out_dir", args.out),
        ("work_root", args.work_root),
        ("data_root", args.data_root),
    ):
        if value is not None:
            setattr(settings, key, value)
    try:
        results = reproduce(settings, only=args.only, detection=detection)
    finally:
        if scratch is not None and args.out is None:  # nobody reuses a temporary folder's runs
            for folder in ("runs", "data"):
                shutil.rmtree(os.path.join(scratch, folder), ignore_errors=True)
    for experiment in ("degradation", "shortcuts"):
        entry = results.get(experiment) or {}
        for name, errors in (entry.get("summary") or {}).items():
            seeds = errors["train_err"]["n"]
            print(
                f"{experiment:12s} {name:9s} train error {_spread(errors['train_err'])}  "
                f"test error {_spread(errors['test_err'])}  ({seeds} seed{'s' if seeds > 1 else ''})"
            )
    for claim, per_seed in ((results.get("degradation") or {}).get("findings") or {}).items():
        print(f"{'holds' if all(per_seed.values()) else 'FAILS'} on seeds {_seeds(per_seed)}: {claim}")
    detection_entry = results.get("detection") or {}
    for key, metrics in (detection_entry.get("summary") or {}).items():
        if key in detection_entry["labels"]:
            model = detection_entry["models"][key]
            print(
                f"detection    {detection_entry['labels'][key]:15s} mAP@0.5 {_spread(metrics['mAP50'])}  "
                f"mAP@[.5:.95] {_spread(metrics['mAP'])}  {model['gflops']:.1f} GFLOPs  "
                f"{model['ms_per_image']:.0f} ms/image"
            )
    for name, stds in (results.get("layer_response") or {}).items():
        print(f"response     {name:9s} {len(stds)} layers, mean std {sum(stds) / len(stds):.3f}")
    print(f"results: {os.path.join(settings.out_dir, 'results.json')}")
    if args.smoke:  # the smoke run checks that every output was produced
        experiments = ("degradation", "layer_response", "shortcuts", "detection")
        figures = ("degradation.png", "layer_response.png", "shortcuts.png", "detection.png")
        if args.only:
            experiments = ("layer_response",) if args.only == "response" else (args.only,)
            figures = (experiments[0] + ".png",)
        missing = [k for k in experiments if not results.get(k)]
        missing += [f for f in figures if not os.path.isfile(os.path.join(settings.out_dir, f))]
        if missing:
            print(f"smoke run: missing {', '.join(missing)}", file=sys.stderr)
            return 1
        print(f"smoke run: results.json and {len(figures)} figure(s) written")
    return 0


def _spread(stats: dict) -> str:
    """``mean`` alone for one seed, ``mean (min-max)`` for several."""
    if stats["n"] == 1:
        return f"{stats['mean']:6.2f}%"
    return f"{stats['mean']:6.2f}% ({stats['min']:.2f}-{stats['max']:.2f})"


def _seeds(per_seed: dict) -> str:
    return ", ".join(f"{seed}{'' if ok else ' (no)'}" for seed, ok in per_seed.items())


if __name__ == "__main__":
    sys.exit(main())
