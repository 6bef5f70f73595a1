"""Where a detector's AP goes: per-class precision-recall curves, a confusion matrix with a
background row and column, the AP lost by error type (TIDE, Bolya et al. 2020: classification,
localisation, both, duplicate, background, missed; each error's dAP = AP50 after fixing that
type oracle-style minus AP50) and a gallery of the images with the most errors.

    resdet analyze --results dets.json --ann instances_val.json --img-dir images/ --out analysis/
    resdet analyze --results dets.json --config configs/shapes_frcnn.py --out analysis/
    resdet analyze configs/shapes_frcnn.py work_dirs/shapes_frcnn/final.pth --out analysis/

Detections: a COCO results file (from `resdet eval ... --out`, `resdet demo --out-json` on
the test images, or any COCO-format tool), or CONFIG CHECKPOINT, run on the config's test set
first (its detections land in OUT/results.json). Ground truth: --ann (a COCO instances json;
pictures for the gallery from --img-dir, default the json's folder), else the config's test
(or val) set.

Written into --out: analysis.json (every number), confusion_matrix.csv, pr_curves.png,
confusion_matrix.png and errors.png (these three need matplotlib: pip install 'resdet[plots]'),
gallery.png and gallery/*.png (ground truth dashed, detections coloured by error type). The
confusion matrix and the gallery count detections scoring at least --score-thr; the error
breakdown and the PR curves use every detection, as AP does.
"""

from __future__ import annotations

import argparse
import os
import sys

from resdet.cli._errors import command
from resdet.utils.config import add_cfg_options_arg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="config file or name: ground truth from its test set")
    parser.add_argument("checkpoint", nargs="?", help="detector checkpoint, run on the test set (no --results)")
    parser.add_argument("--results", help="a COCO results file (json list of detections)")
    parser.add_argument("--ann", help="a COCO instances json as ground truth (instead of a config)")
    parser.add_argument("--img-dir", help="folder of the --ann images, for the gallery (default: the json's folder)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--score-thr",
        type=float,
        default=0.5,
        help="minimum score in the confusion matrix and the gallery (default 0.5)",
    )
    parser.add_argument("--iou-thr", type=float, default=0.5, help="foreground IoU (default 0.5, TIDE's)")
    parser.add_argument("--bg-iou", type=float, default=0.1, help="background IoU (default 0.1, TIDE's)")
    parser.add_argument("--top", type=int, default=12, help="images in the gallery (default 12)")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "pycocotools", "faster"),
        help="COCO AP backend (default auto: faster-coco-eval)",
    )
    parser.add_argument("--device", default=None, help="device of the model run (default cuda if available)")
    add_cfg_options_arg(parser)
    return parser


def _check(parser: argparse.ArgumentParser, args) -> None:
    if args.results and args.checkpoint:
        parser.error("give either --results FILE or CONFIG CHECKPOINT, not both")
    if not args.results and not args.checkpoint:
        parser.error("give --results FILE (with --ann FILE.json or CONFIG), or CONFIG CHECKPOINT")
    if args.results and not (args.ann or args.config):
        parser.error("--results needs its ground truth: --ann FILE.json or a CONFIG")
    if args.checkpoint and args.ann:
        parser.error("CONFIG CHECKPOINT runs on the config's test set; --ann does not apply")
    if not 0.0 < args.bg_iou < args.iou_thr <= 1.0:
        parser.error(f"need 0 < --bg-iou < --iou-thr <= 1, got {args.bg_iou} and {args.iou_thr}")
    if args.top < 0:
        parser.error(f"--top must be >= 0, got {args.top}")


@command("analyze")
def main(argv=None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    _check(build_parser(), args)
    from resdet.apis.analyze import (
        analyze_results,
        detect_and_save_results,
        ground_truth_from_config,
        ground_truth_from_json,
    )

    results = args.results
    if args.checkpoint:
        results = os.path.join(args.out, "results.json")
        detect_and_save_results(args.config, args.checkpoint, results, cfg_options=args.cfg_options, device=args.device)
        print(f"detections of {args.checkpoint} written to {results}")
    gt = (
        ground_truth_from_json(args.ann, args.img_dir)
        if args.ann
        else ground_truth_from_config(args.config, args.cfg_options)
    )
    report = analyze_results(
        gt,
        results,
        args.out,
        score_thr=args.score_thr,
        iou_thr=args.iou_thr,
        bg_iou=args.bg_iou,
        top_images=args.top,
        backend=args.backend,
    )
    print(report["table"])
    for note in report.get("notes", []):
        print(note)
    print(
        f"{report['num_detections']} detections on {report['num_images']} images "
        f"({report['num_objects']} objects) analysed; {len(report['written'])} files in "
        f"{os.path.join(os.path.normpath(args.out), '')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
