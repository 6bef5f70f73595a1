"""Export a model to one ONNX file with pre- and post-processing inside, or a torch.export program.

    resdet export configs/frcnn_r50_c4_bccd.py work_dirs/frcnn_r50_c4_bccd/final.pth \
        --format onnx --out bccd.onnx
    resdet export configs/resnet50_imagenet.py r50.pth --format torch-export --out r50.pt2

Detectors (Faster R-CNN C4 / VGG-16 / FPN, Mask R-CNN C4 / FPN): the file takes one uint8
3 x H x W RGB image of any size and returns boxes (N x 4, xyxy in its pixels), scores, labels
(0-based) and, for Mask R-CNN, masks (N x H x W uint8): the config's test resize, normalisation,
padding, backbone, RPN, NMS, RoI heads, score threshold, top-k and the mapping back are all in
the graph. Classifiers take uint8 N x 3 x H x W and return logits. ONNX files carry the class
names, resdet's version and the config's name in their metadata; opset 18. The model is the one
`init_model` builds, on its inference fast path (`optimize_for_inference`: frozen BN folded into
the convolutions; `--no-fold-bn` keeps them apart). See docs/export.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from resdet.utils.config import add_cfg_options_arg
from resdet.utils.outputs import check_output_path

from ._errors import command

FORMATS = ("onnx", "torch-export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resdet export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="config file, a name in configs/, or a short model name")
    parser.add_argument("checkpoint", help="checkpoint (.pth) to export, or torchvision://NAME (resdet weights --list)")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (default) or torch-export (.pt2)")
    parser.add_argument("--out", required=True, help="output file (.onnx or .pt2); written atomically")
    parser.add_argument(
        "--no-fold-bn",
        action="store_true",
        help="export without the inference fast path (frozen BN kept apart from the convolutions)",
    )
    add_cfg_options_arg(parser)
    return parser


@command("export")
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    check_output_path(args.out, what="--out")  # before the model is built and traced
    from resdet.apis import init_model, optimize_for_inference
    from resdet.deploy import export_onnx, export_program, save_program
    from resdet.models.converters import resolve_checkpoint
    from resdet.utils.io import safe_load

    model = init_model(args.config, args.checkpoint, device="cpu", cfg_options=args.cfg_options)
    if not args.no_fold_bn:  # built here for the export alone: optimised in place, no copy
        model = optimize_for_inference(model, inplace=True)
    meta = safe_load(resolve_checkpoint(args.checkpoint)).get("meta", {})  # torchvision://NAME: its file
    names = meta.get("classes") if isinstance(meta, dict) else None
    program = export_program(model, model.cfg, fold_bn=not args.no_fold_bn)
    if args.format == "onnx":
        props = export_onnx(model, args.out, cfg=model.cfg, class_names=names, program=program)
        count = len(json.loads(props["class_names"]))
        print(
            f"wrote {args.out}: ONNX opset 18, {props['model_type']} ({props['kind']}), {count} class names, "
            f"{os.path.getsize(args.out) / 1e6:.1f} MB"
        )
    else:
        save_program(program[0], args.out)
        kind = program[1]
        print(
            f"wrote {args.out}: torch.export program of {type(model).__name__} ({kind}), dynamic height and "
            f"width, {os.path.getsize(args.out) / 1e6:.1f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
