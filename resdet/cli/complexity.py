"""Parameters and multiply-adds ("FLOPs" in the paper's Table 1) of a model, part by part.

    resdet complexity resnet50                          # 224x224 for ImageNet nets
    resdet complexity resnet110_cifar                   # 32x32 for CIFAR nets
    resdet complexity frcnn_r50_fpn_tv                  # a whole detector at its test size
    resdet complexity maskrcnn_r101_c4_coco --size 600 1000 --json
    resdet complexity frcnn_r101_coco --part backbone --size 600 1000

MODEL is a short name (resnet18..resnet152, plain18/34, resnet20_cifar..resnet1202_cifar,
plain20_cifar..plain110_cifar, vgg16, vgg19, vgg16_bn, vgg19_bn) or a config (file, or a name
in configs/). Counting runs on the meta device (shapes only) with torch's FlopCounterMode;
multiply-adds = its FLOPs / 2 (one multiply-add counts 1, the paper's convention).

A detector (Faster / Mask R-CNN) or localizer is counted whole and per part: backbone, neck,
RPN head, RoI heads at exactly the configured number of test proposals (the RPN's
post_nms_top_n_test; a localizer's topk x rcnn_proposals_test), the mask head at
detections_per_img detections. --size is the network input (after the test resize; padded to
the size divisor), by default the config's test resize: shorter side x longest side (e.g. 800 x
1333). --json prints one JSON object (``params``, ``flops`` in multiply-adds, and ``parts``).
"""

import argparse
import json
import sys

from resdet.apis.model import default_input_shape, init_model
from resdet.cli._errors import command
from resdet.data.transforms.det_transforms import inference_pipeline_of
from resdet.models.utils.complexity import format_complexity, get_model_complexity
from resdet.models.utils.detector_complexity import DETECTOR_TYPES, format_detector_complexity, get_detector_complexity
from resdet.utils.config import ConfigError, add_cfg_options_arg


def detector_input_size(cfg) -> tuple[int, int]:
    """``(short, long)`` of the config's test resize (its pipeline's ``ResizeShortestEdge``,
    else the preprocessor's ``min_size`` / ``max_size``): the largest network input it makes."""
    short = longest = None
    for step in inference_pipeline_of(cfg):
        if step.get("type") == "ResizeShortestEdge":
            sizes = step.get("short_edge_length", 600)
            short = max(sizes) if isinstance(sizes, (list, tuple)) else sizes
            longest = step.get("max_size", 1000)
    preprocessor = cfg.model.get("preprocessor") or {}
    if preprocessor.get("min_size") is not None:
        short, longest = preprocessor["min_size"], preprocessor.get("max_size")
    if short is None:
        raise ConfigError(
            "the config has no test resize (ResizeShortestEdge or DetPreprocessor min_size); "
            "give the network input with --size H W"
        )
    return int(short), int(longest or short)


@command("complexity")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="resdet complexity", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", help="short model name or config")
    parser.add_argument(
        "--size",
        "--shape",
        dest="size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="input height and width (default: 224 224, 32 32 for CIFAR nets, a detector's test resize)",
    )
    parser.add_argument(
        "--part",
        default=None,
        metavar="NAME",
        help="count only this submodule (one image tensor in), e.g. 'backbone' of a detector",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_cfg_options_arg(parser)
    args = parser.parse_args(argv)
    try:
        model = init_model(args.model, device="meta", cfg_options=args.cfg_options)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as err:
        parser.error(str(err))
    whole_detector = type(model).__name__ in DETECTOR_TYPES and not args.part
    if whole_detector:
        height, width = args.size or detector_input_size(model.cfg)
        result = get_detector_complexity(model, (height, width))
        text = format_detector_complexity(result, name=args.model)
    else:
        channels, height, width = default_input_shape(model.cfg.model)
        if args.size is not None:
            height, width = args.size
        if args.part:
            try:
                model = model.get_submodule(args.part)
            except AttributeError:
                parser.error(
                    f"{args.model} has no submodule {args.part!r}; top-level parts: "
                    f"{', '.join(name for name, _ in model.named_children())}"
                )
        try:
            result = get_model_complexity(model, input_shape=(channels, height, width))
        except ValueError as err:
            parser.error(str(err))
        text = format_complexity(result, name=args.model)
    result["model"] = args.model + (f" ({args.part})" if args.part else "")
    result["unit"] = "multiply-adds"
    print(json.dumps(result) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
