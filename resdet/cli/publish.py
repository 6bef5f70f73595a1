"""Write the file to share a trained model: weights only (no optimizer, scheduler or RNG state),
with the config it was trained with and its class names; the name carries the first 8 hex
digits of the file's sha256.

    resdet publish work_dirs/shapes_frcnn/final.pth shapes_frcnn          # shapes_frcnn-1a2b3c4d.safetensors
    resdet publish work_dirs/shapes_frcnn/final.pth out/frcnn.pth         # a .pth instead
    resdet demo configs/shapes_frcnn.py shapes_frcnn-1a2b3c4d.safetensors img.jpg --out demo/
"""

from __future__ import annotations

import argparse

from resdet.cli._errors import command
from resdet.utils.outputs import check_output_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a training checkpoint (e.g. work_dirs/NAME/final.pth)")
    parser.add_argument("out", help="output name without the hash; .pth or .safetensors picks the format")
    parser.add_argument(
        "--format",
        choices=("safetensors", "pth"),
        default=None,
        help="file format (default: from OUT's extension, else safetensors)",
    )
    return parser


@command("publish")
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    check_output_path(args.out, what="publish OUT")  # before the checkpoint is read
    from resdet.apis.publish import publish_checkpoint

    info = publish_checkpoint(args.checkpoint, args.out, fmt=args.format)
    print(
        f"published {info['path']} ({info['bytes'] / 2**20:.2f} MB, {info['num_tensors']} tensors; "
        f"the training checkpoint is {info['source_bytes'] / 2**20:.2f} MB)"
    )
    print(f"sha256 {info['sha256']}")
    return 0
