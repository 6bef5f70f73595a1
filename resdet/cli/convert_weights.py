"""Convert foreign checkpoints into resdet checkpoints ``{'model', 'meta'}``.

    resdet convert-weights --src torchvision --arch resnet50 resnet50-0676ba61.pth r50_tv.pth
    resdet convert-weights --src torchvision IN OUT      # architecture read from the keys
    resdet convert-weights --list                        # registered sources / architectures

The input is read with weights_only=True (pickled code is refused). The output loads with
``resdet.apis.init_model(cfg, checkpoint=OUT)``; its ``meta['config']`` holds the model config
(torchvision ResNets use the v1.5 layout, ``stride_in_1x1=False``).
"""

import argparse
import json
import sys

from resdet.cli._errors import command
from resdet.models.converters import CONVERTERS, convert_checkpoint
from resdet.utils.io import CheckpointError


@command("convert-weights")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", help="foreign checkpoint (.pth)")
    parser.add_argument("output", nargs="?", help="resdet checkpoint to write")
    parser.add_argument("--src", default="torchvision", help=f"source format: {', '.join(sorted(CONVERTERS))}")
    parser.add_argument("--arch", default=None, help="architecture (default: identified from the keys)")
    parser.add_argument("--list", action="store_true", help="list sources and architectures, then exit")
    args = parser.parse_args(argv)
    if args.list:
        for src in sorted(CONVERTERS):
            print(f"{src}: {', '.join(sorted(CONVERTERS[src]))}")
        return 0
    if not args.input or not args.output:
        parser.error("INPUT and OUTPUT are required (or --list)")
    try:
        summary = convert_checkpoint(args.src, args.arch, args.input, args.output)
    except (CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "output": args.output,
                "src": summary["src"],
                "arch": summary["arch"],
                "num_tensors": summary["num_tensors"],
                "model": summary["model"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
