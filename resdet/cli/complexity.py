"""Parameters and multiply-adds ("FLOPs" in the paper's Table 1) of a model.

    resdet complexity resnet50                  # 224x224 for ImageNet nets
    resdet complexity resnet110_cifar            # 32x32 for CIFAR nets
    resdet complexity configs/x.py --shape 600 1000 --json
    resdet complexity configs/frcnn_r101_coco.py --part backbone --shape 600 1000

MODEL is a short name (resnet18..resnet152, plain18/34, resnet20_cifar..resnet1202_cifar,
plain20_cifar..plain110_cifar, vgg16, vgg19, vgg16_bn, vgg19_bn) or a config file. Counting
runs on the meta device (shapes only), with torch's FlopCounterMode; multiply-adds = its
FLOPs / 2. ``--json`` prints one JSON object with ``params`` and ``flops`` (multiply-adds).
"""
import argparse
import json
import sys

from resdet.cli._errors import command
from resdet.apis.model import default_input_shape, init_model
from resdet.models.utils.complexity import format_complexity, get_model_complexity
from resdet.utils.config import add_cfg_options_arg


@command("complexity")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="short model name or config file")
    parser.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="input height and width (default: 224 224, or 32 32 for CIFAR nets)")
    parser.add_argument("--part", default=None, metavar="NAME",
                        help="count only this submodule, e.g. 'backbone' of a detector")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_cfg_options_arg(parser)
    args = parser.parse_args(argv)
    try:
        model = init_model(args.model, device="meta", cfg_options=args.cfg_options)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as err:
        parser.error(str(err))
    channels, height, width = default_input_shape(model.cfg.model)
    if args.shape is not None:
        height, width = args.shape
    if args.part:
        try:
            model = model.get_submodule(args.part)
        except AttributeError:
            parser.error(f"{args.model} has no submodule {args.part!r}; top-level parts: "
                         f"{', '.join(name for name, _ in model.named_children())}")
    try:
        result = get_model_complexity(model, input_shape=(channels, height, width))
    except ValueError as err:
        parser.error(str(err))
    result["model"] = args.model + (f" ({args.part})" if args.part else "")
    if args.json:
        print(json.dumps(result))
    else:
        print(format_complexity(result, name=args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
