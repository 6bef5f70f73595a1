"""Mask R-CNN R50-FPN: resdet against torchvision's ``maskrcnn_resnet50_fpn`` with the same
weights and inputs, in one run.

    python tools/benchmark.py mask [--device cpu|cuda|all] [--iters 3] [--train-iters 2]
                                   [--height 800 --width 1333] [--threads N] [--json OUT]

Reports inference latency per image (batch 1, masks pasted into the image) and the training
step time at batch 2 (forward, backward, SGD step, with mask targets), as ratios resdet /
torchvision (<= 1.0: resdet is not slower). resdet's inference uses its fast path (frozen BN
folded, channels_last, ``torch.inference_mode``) and torchvision-compatible pasting. Weights
are random (seed 0, no downloads); before timing, the detections are checked to agree.
"""
from __future__ import annotations

import argparse
import copy

import torch

from ..models.converters import load_weights
from ..models.converters.torchvision_mask import tv_mask_model_cfg
from ..models.detectors import optimize_for_inference
from ..registry import MODELS
from ..utils.io import atomic_write_json
from .det import _targets, _time


def build_pair(device: torch.device, min_size: int, max_size: int):
    """torchvision's model (random weights, seed 0) and resdet's with the converted weights."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    torch.manual_seed(0)
    tv_model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=min_size, max_size=max_size)
    ours = MODELS.build(tv_mask_model_cfg(num_classes=90, min_size=min_size, max_size=max_size))
    load_weights(ours, tv_model.state_dict())
    return tv_model.to(device), ours.to(device)


def _mask_targets(images, device):
    """The box targets of the detection benchmark plus box-shaped (elliptic) masks."""
    targets = _targets(images, device)
    for target, image in zip(targets, images):
        h, w = image.shape[-2:]
        ys = torch.arange(h, device=device, dtype=torch.float32)[None, :, None]
        xs = torch.arange(w, device=device, dtype=torch.float32)[None, None, :]
        b = target["boxes"][:, :, None, None]
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        rx, ry = (b[:, 2] - b[:, 0]) / 2, (b[:, 3] - b[:, 1]) / 2
        target["masks"] = (((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1).to(torch.uint8)
    return targets


def bench_device(device: torch.device, args) -> dict:
    tv_model, ours = build_pair(device, args.height, args.width)
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, args.height, args.width), generator=g, dtype=torch.uint8).to(device)
    result = {"device": str(device), "size": [args.height, args.width]}

    tv_model.eval()
    fast = optimize_for_inference(copy.deepcopy(ours))
    with torch.inference_mode():
        expected = tv_model([image.float() / 255])[0]
        got = fast([image])[0]
    result["check_num_dets"] = [len(expected["boxes"]), len(got["boxes"])]
    if len(expected["boxes"]) == len(got["boxes"]) and len(got["boxes"]):
        ref = expected["masks"][:, 0] > 0.5
        inter = (ref & got["masks"]).flatten(1).sum(1).float()
        union = (ref | got["masks"]).flatten(1).sum(1).float().clamp(min=1)
        # the fast path (folded BN) may reorder near-tied detections, so report the share
        result["check_masks_iou_ge_0.99"] = float(((inter / union) >= 0.99).float().mean())

    def run_tv():
        with torch.inference_mode():
            tv_model([image.float() / 255])

    def run_ours():
        with torch.inference_mode():
            fast([image])

    tv_inf = _time(run_tv, args.iters, args.warmup, device)
    ours_inf = _time(run_ours, args.iters, args.warmup, device)
    result["inference_s"] = {"torchvision": tv_inf, "resdet": ours_inf, "ratio": ours_inf / tv_inf}
    del fast

    images = [image, image.flip(-1)]
    targets = _mask_targets(images, device)
    float_images = [i.float() / 255 for i in images]

    def step_fn(model, inputs, label_offset):
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
        model_targets = [dict(t, labels=t["labels"] - label_offset) for t in targets]

        def step():
            losses = model(inputs, [dict(t) for t in model_targets])
            total = sum(v for k, v in losses.items() if "loss" in k)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
        return step

    tv_model.train()
    ours.train()
    tv_train = _time(step_fn(tv_model, float_images, 0), args.train_iters, 1, device)
    ours_train = _time(step_fn(ours, images, 1), args.train_iters, 1, device)
    result["train_step_s"] = {"torchvision": tv_train, "resdet": ours_train, "ratio": ours_train / tv_train}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tools/benchmark.py mask", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="all", choices=["all", "cpu", "cuda"],
                        help="'all': the CPU, and the GPU when there is one")
    parser.add_argument("--iters", type=int, default=3, help="timed inference calls per model")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--train-iters", type=int, default=2, help="timed training steps per model")
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--width", type=int, default=1333)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda"):
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
        elif args.device == "cuda":
            parser.error("--device cuda: no CUDA device is available")
    results = [bench_device(device, args) for device in devices]
    for r in results:
        inf, train = r["inference_s"], r["train_step_s"]
        print(f"[{r['device']}] {r['size'][0]}x{r['size'][1]}  detections tv/resdet {r['check_num_dets']}"
              f"  share of masks with IoU >= 0.99 {r.get('check_masks_iou_ge_0.99', float('nan')):.2f}")
        print(f"  inference  torchvision {inf['torchvision']:.3f}s  resdet {inf['resdet']:.3f}s  "
              f"ratio {inf['ratio']:.2f}")
        print(f"  train step torchvision {train['torchvision']:.3f}s  resdet {train['resdet']:.3f}s  "
              f"ratio {train['ratio']:.2f}")
    if args.json:
        atomic_write_json(results, args.json)
    return 0
