"""Training curves (thin) and validation curves (bold) against iterations for several runs,
as the paper's Figs. 1, 4 and 6. Reads each work dir's ``metrics.jsonl`` (written by the engine).

    resdet plot-curves work_dirs/plain20_cifar10 work_dirs/resnet20_cifar10 --out fig6.png
    resdet plot-curves work_dirs/frcnn_r101_coco --out det.png

The keys default to what each run logged:

- classification (and localization) runs: training error ``train_err`` and validation error
  ``top1_err`` (``loc_top1_err``, ...) on one axis, in percent;
- detection runs: the total training loss ``loss`` (left axis) and the validation COCO mAP
  ``bbox_AP`` (``segm_AP``, ``voc_mAP50``) in percent (right axis).

Runs of different kinds go into side-by-side panels. ``--train-key`` / ``--val-key`` choose
keys for every run; a run without them is drawn without that curve (and a warning). The
drawing lives in ``resdet.visualization.curves``.
"""

from __future__ import annotations

import argparse
import sys

from resdet.cli._errors import command
from resdet.utils.outputs import check_output_path
from resdet.visualization.curves import plot_curves


@command("plot-curves")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work_dirs", nargs="+", help="work dirs (or metrics.jsonl files) of the runs")
    parser.add_argument("--out", required=True, help="output image (PNG, PDF, SVG)")
    parser.add_argument("--labels", nargs="+", default=None, help="legend names (default: dir names)")
    parser.add_argument(
        "--train-key", default=None, help="training record key (thin lines; default: train_err, else loss)"
    )
    parser.add_argument(
        "--val-key", default=None, help="validation record key (bold lines; default: top1_err, bbox_AP, ... as logged)"
    )
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    check_output_path(args.out, what="--out")
    try:
        counts = plot_curves(args.work_dirs, args.out, args.labels, args.train_key, args.val_key, title=args.title)
    except (OSError, ValueError) as err:
        print(f"plot-curves: error: {err}", file=sys.stderr)
        return 2
    for message in counts.warnings:
        print(f"plot-curves: warning: {message}", file=sys.stderr)
    for label, n in counts.items():
        drawn = {c["mode"]: f"{c['key']}, last {c['last']:.4g}" for c in counts.curves if c["run"] == label}
        print(
            f"{label}: {n['train']} training points ({drawn.get('train', '-')}), "
            f"{n['val']} validation points ({drawn.get('val', '-')})"
        )
    for axis in counts.axes:
        print(f"panel {axis['panel']} {axis['side']} axis: {axis['ylabel']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
