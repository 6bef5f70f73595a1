"""The paper's Fig. 7: standard deviation of each 3x3 layer's response (the output of the BN
after a 3x3 convolution, before the nonlinearity / addition) over a dataset, in layer order
and sorted by magnitude, for several checkpoints on one PNG.

    resdet layer-response configs/resnet20_cifar10.py \
        work_dirs/plain20_cifar10/final.pth work_dirs/resnet20_cifar10/final.pth \
        --labels plain-20 ResNet-20 --out fig7.png

The std of a layer is taken over all its output elements (images, channels, positions) of
up to ``--max-images`` images of the config's validation set, with BN in inference mode.
Each checkpoint is built with the config given, or with ``--configs`` (one per checkpoint).
"""

from __future__ import annotations

import argparse
import sys

from resdet.apis.layer_response import layer_response_std, response_norms  # noqa: F401  (re-exported)
from resdet.cli._errors import command
from resdet.utils.device import resolve_device
from resdet.utils.io import atomic_write_json, check_output_path
from resdet.visualization.plots import plot_layer_responses as plot_responses


@command("layer-response")
def main(argv=None) -> int:
    from resdet.apis import init_model
    from resdet.data.loader import build_dataloader
    from resdet.utils.config import add_cfg_options_arg, load_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config of the models (and of the validation data)")
    parser.add_argument("checkpoints", nargs="+", help="one or more checkpoints")
    parser.add_argument(
        "--configs",
        nargs="+",
        default=None,
        help="one config per checkpoint (e.g. plain-20 and ResNet-20); the data comes from the first positional config",
    )
    parser.add_argument("--labels", nargs="+", default=None, help="legend names (default: file paths)")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the stds here")
    parser.add_argument("--max-images", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    add_cfg_options_arg(parser)
    args = parser.parse_args(argv)
    configs = args.configs or [args.config] * len(args.checkpoints)
    labels = args.labels or args.checkpoints
    if len(configs) != len(args.checkpoints) or len(labels) != len(args.checkpoints):
        parser.error(f"{len(args.checkpoints)} checkpoints need as many --configs and --labels")
    check_output_path(args.out, what="--out")  # before models are built and images read
    check_output_path(args.json_path, what="--json")
    resolve_device(args.device)
    cfg = load_config(args.config, args.cfg_options)
    loader_cfg = cfg.val_dataloader.to_dict()
    loader_cfg.update(batch_size=args.batch_size, num_workers=min(int(loader_cfg.get("num_workers", 0)), 2))
    loader = build_dataloader(loader_cfg, training=False, name="val_dataloader")
    curves = {}
    for config, checkpoint, label in zip(configs, args.checkpoints, labels):
        model = init_model(config, checkpoint, device=args.device, cfg_options=args.cfg_options)
        batches = ({"inputs": b["inputs"].to(args.device)} for b in loader)
        curves[label] = layer_response_std(model, batches, args.max_images)
        print(f"{label}: {len(curves[label])} layers, std mean {sum(curves[label]) / len(curves[label]):.4f}")
    plot_responses(curves, args.out)
    if args.json_path:
        atomic_write_json(curves, args.json_path, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
