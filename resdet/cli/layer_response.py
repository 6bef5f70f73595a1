"""The paper's Fig. 7: standard deviation of each 3x3 layer's response (the output of the BN
after a 3x3 convolution, before the nonlinearity / addition) over a dataset, in layer order
and sorted by magnitude, for several checkpoints on one PNG.

    python tools/analysis/layer_response.py configs/resnet20_cifar10.py \
        work_dirs/plain20_cifar10/final.pth work_dirs/resnet20_cifar10/final.pth \
        --labels plain-20 ResNet-20 --out fig7.png

The std of a layer is taken over all its output elements (images, channels, positions) of
up to ``--max-images`` images of the config's validation set, with BN in inference mode.
Each checkpoint is built with the config given, or with ``--configs`` (one per checkpoint).
"""
from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

from resdet.cli._errors import command
from resdet.utils.io import atomic_write_json


def response_norms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, bn)`` of the BN layer following every 3x3 convolution, in forward order.

    Uses the backbone's ``response_norms()`` when it has one; otherwise pairs ``conv<k>`` with
    ``bn<k>`` inside each module (torchvision-style blocks and stems) where the conv is 3x3.
    """
    backbone = getattr(model, "backbone", model)
    names = {id(m): n for n, m in model.named_modules()}
    if callable(getattr(backbone, "response_norms", None)):
        return [(names.get(id(bn), f"bn{i}"), bn) for i, bn in enumerate(backbone.response_norms())]
    pairs = []
    for prefix, module in model.named_modules():
        for k in range(1, 10):
            conv, bn = getattr(module, f"conv{k}", None), getattr(module, f"bn{k}", None)
            if isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and isinstance(bn, nn.Module):
                pairs.append((f"{prefix}.bn{k}" if prefix else f"bn{k}", bn))
    return pairs


@torch.inference_mode()
def layer_response_std(model: nn.Module, batches, max_images: int | None = None) -> list[float]:
    """Std of each response layer's output over ``batches`` (iterable of uint8 ``N x 3 x H x W``
    tensors or batch dicts with ``inputs``). Accumulates sums in float64 (no activations kept)."""
    layers = response_norms(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no BN after a 3x3 convolution")
    stats = [[0.0, 0.0, 0] for _ in layers]  # sum, sum of squares, count

    def hook(index):
        def fn(_module, _inputs, output):
            out = output.detach().double()
            stats[index][0] += float(out.sum())
            stats[index][1] += float((out * out).sum())
            stats[index][2] += out.numel()
        return fn

    handles = [bn.register_forward_hook(hook(i)) for i, (_, bn) in enumerate(layers)]
    model.eval()
    seen = 0
    try:
        for batch in batches:
            inputs = batch["inputs"] if isinstance(batch, dict) else batch
            if max_images is not None:
                inputs = inputs[:max(max_images - seen, 0)]
            if len(inputs) == 0:
                break
            model(inputs)
            seen += len(inputs)
            if max_images is not None and seen >= max_images:
                break
    finally:
        for handle in handles:
            handle.remove()
    if seen == 0:
        raise ValueError("no images to measure the layer responses on")
    stds = []
    for total, squares, count in stats:
        mean = total / count
        stds.append(float(max(squares / count - mean * mean, 0.0) ** 0.5))
    return stds


def plot_responses(curves: dict[str, list[float]], out: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6))
    for label, stds in curves.items():
        layers = range(1, len(stds) + 1)
        top.plot(layers, stds, marker=".", linewidth=1, label=label)
        bottom.plot(layers, sorted(stds, reverse=True), marker=".", linewidth=1, label=label)
    top.set_xlabel("layer index (original)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    from resdet.utils.io import atomic_save_figure
    atomic_save_figure(fig, out)
    plt.close(fig)


@command("layer-response")
def main(argv=None) -> int:
    from resdet.apis import init_model
    from resdet.data.loader import build_dataloader
    from resdet.utils.config import add_cfg_options_arg, load_config
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config of the models (and of the validation data)")
    parser.add_argument("checkpoints", nargs="+", help="one or more checkpoints")
    parser.add_argument("--configs", nargs="+", default=None,
                        help="one config per checkpoint (e.g. plain-20 and ResNet-20); the data comes "
                             "from the first positional config")
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
    cfg = load_config(args.config, args.cfg_options)
    loader_cfg = cfg.val_dataloader.to_dict()
    loader_cfg.update(batch_size=args.batch_size, num_workers=min(int(loader_cfg.get("num_workers", 0)), 2))
    loader = build_dataloader(loader_cfg, training=False)
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
