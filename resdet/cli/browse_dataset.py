"""Draw the ground truth of a config's dataset after its pipeline: what the model will see.

    resdet browse-dataset configs/maskrcnn_r50_fpn_fruits.py --out browse/ --max 3
    resdet browse-dataset shapes_frcnn --split val --no-pipeline
    resdet browse-dataset shapes_cls --max 25          # one contact sheet per class

Detection sets (COCO, VOC, synthetic shapes, CLS-LOC localization): one picture per sample
with its boxes, class names and translucent outlined masks (ignored crowd / difficult boxes
dashed; a localization image's class in a caption). Classification sets (ImageFolder, shapes,
CIFAR-10): one contact sheet per class, a grid of that class's first images under its name.
Training pipelines have random transforms: the pictures show the augmentation (--seed).
"""

from __future__ import annotations

import argparse
import os
import sys

from resdet.cli._errors import command
from resdet.utils.config import add_cfg_options_arg, parse_args_with_config
from resdet.utils.outputs import check_output_path


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resdet browse-dataset", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="config file, or a name in configs/")
    parser.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="train",
        help="train: train_dataloader.dataset; val: val_dataloader.dataset (or "
        "test_dataloader's); test: the reverse (default train)",
    )
    parser.add_argument(
        "--max",
        type=_positive,
        default=None,
        metavar="N",
        help="pictures to draw for a detection set (default 20); images per class sheet "
        "for a classification set (default 16)",
    )
    parser.add_argument(
        "--max-classes",
        type=_positive,
        default=None,
        metavar="M",
        help="classification sets: sheets for the first M classes only (default all)",
    )
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default <work_dir>/browse_<split>)")
    parser.add_argument(
        "--no-pipeline", action="store_true", help="draw the samples as decoded, before the config's transforms"
    )
    parser.add_argument("--ext", choices=("png", "jpg"), default="png", help="picture format (default png)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random transforms (default 0)")
    add_cfg_options_arg(parser)
    return parser


@command("browse-dataset")
def main(argv=None) -> int:
    args, cfg = parse_args_with_config(build_parser(), argv)
    from resdet.apis.browse import browse_dataset

    stem = os.path.splitext(os.path.basename(args.config))[0]
    out_dir = args.out or os.path.join(cfg.get("work_dir") or os.path.join("work_dirs", stem), f"browse_{args.split}")
    check_output_path(out_dir, what="--out", directory=True)
    report = browse_dataset(
        cfg,
        out_dir,
        split=args.split,
        max_samples=args.max,
        use_pipeline=not args.no_pipeline,
        seed=args.seed,
        ext=args.ext,
        max_classes=args.max_classes,
    )
    stage = "before its pipeline" if args.no_pipeline else "after its pipeline"
    print(f"{report.dataset_key}: {report.dataset}, {stage}")
    what = "class contact sheet(s)" if report.kind == "classification" else "picture(s)"
    print(f"wrote {len(report.written)} {what} to {os.path.join(os.path.normpath(out_dir), '')}")
    if report.skipped:
        print(f"skipped {report.skipped} unreadable image(s)")
    if report.empty_classes:
        print(f"class(es) without a readable image: {', '.join(report.empty_classes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
