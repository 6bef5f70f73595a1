"""Faster R-CNN R50-FPN: resdet against torchvision's ``fasterrcnn_resnet50_fpn`` with the same
weights and inputs, in one run.

    python tools/benchmark.py det [--device cpu|cuda|all] [--iters 3] [--train-iters 2]
                                  [--height 800 --width 1333] [--bf16] [--threads N] [--json OUT]

Reports inference latency per image (batch 1) and the training step time at batch 2
(forward, backward, SGD step), with the ratio resdet / torchvision (<= 1.0: resdet is not
slower). resdet's inference uses its fast path (frozen BN folded into the convolutions,
channels_last, ``torch.inference_mode``); ``--bf16`` adds a bf16-autocast resdet row. Weights
are random (torchvision ``weights=None`` under a fixed seed; no downloads), so both models
see the same number of proposals; the detections are checked to agree before timing.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

import torch

from ..models.converters import load_weights
from ..models.converters.torchvision_det import tv_fpn_model_cfg
from ..models.detectors import optimize_for_inference
from ..registry import MODELS
from ..utils.io import atomic_write_json


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, iters: int, warmup: int, device: torch.device) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_pair(device: torch.device, min_size: int, max_size: int):
    """torchvision's model (random weights, seed 0) and resdet's with the converted weights."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn
    torch.manual_seed(0)
    tv_model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=min_size, max_size=max_size)
    ours = MODELS.build(tv_fpn_model_cfg(num_classes=90, min_size=min_size, max_size=max_size))
    load_weights(ours, tv_model.state_dict())
    return tv_model.to(device), ours.to(device)


def _targets(images, device):
    out = []
    for image in images:
        h, w = image.shape[-2:]
        boxes = torch.tensor([[0.1 * w, 0.1 * h, 0.5 * w, 0.6 * h], [0.4 * w, 0.3 * h, 0.9 * w, 0.9 * h],
                              [0.2 * w, 0.5 * h, 0.35 * w, 0.7 * h]], device=device)
        out.append({"boxes": boxes, "labels": torch.tensor([1, 5, 17], device=device)})
    return out


def bench_device(device: torch.device, args) -> dict:
    tv_model, ours = build_pair(device, args.height, args.width)
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, args.height, args.width), generator=g, dtype=torch.uint8).to(device)
    result = {"device": str(device), "size": [args.height, args.width]}

    # ---- inference, batch 1
    tv_model.eval()
    fast = optimize_for_inference(copy.deepcopy(ours))
    with torch.inference_mode():
        expected = tv_model([image.float() / 255])[0]
        got = fast([image])[0]
    result["check_num_dets"] = [len(expected["boxes"]), len(got["boxes"])]

    def run_tv():
        with torch.inference_mode():
            tv_model([image.float() / 255])

    def run_ours(model=fast, bf16=False):
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            model([image])

    tv_inf = _time(run_tv, args.iters, args.warmup, device)
    ours_inf = _time(run_ours, args.iters, args.warmup, device)
    result["inference_s"] = {"torchvision": tv_inf, "resdet": ours_inf, "ratio": ours_inf / tv_inf}
    if args.bf16:
        ours_bf16 = _time(lambda: run_ours(bf16=True), args.iters, args.warmup, device)
        result["inference_s"].update(resdet_bf16=ours_bf16, ratio_bf16=ours_bf16 / tv_inf)
    del fast

    # ---- training step, batch 2
    images = [image, image.flip(-1)]
    targets = _targets(images, device)
    float_images = [i.float() / 255 for i in images]

    def step_fn(model, inputs):
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

        def step():
            losses = model(inputs, [dict(t) for t in targets])
            total = sum(v for k, v in losses.items() if "loss" in k)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
        return step

    tv_model.train()
    ours.train()
    tv_train = _time(step_fn(tv_model, float_images), args.train_iters, 1, device)
    ours_train = _time(step_fn(ours, images), args.train_iters, 1, device)
    result["train_step_s"] = {"torchvision": tv_train, "resdet": ours_train, "ratio": ours_train / tv_train}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tools/benchmark.py det", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="all", choices=["all", "cpu", "cuda"],
                        help="'all': the CPU, and the GPU when there is one")
    parser.add_argument("--iters", type=int, default=3, help="timed inference calls per model")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--train-iters", type=int, default=2, help="timed training steps per model")
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--width", type=int, default=1333)
    parser.add_argument("--bf16", action="store_true", help="also time resdet under bf16 autocast")
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
    results = []
    for device in devices:
        res = bench_device(device, args)
        results.append(res)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
        inf, train = res["inference_s"], res["train_step_s"]
        print(f"[{name}] Faster R-CNN R50-FPN, {args.height}x{args.width}; detections tv/resdet: "
              f"{res['check_num_dets'][0]}/{res['check_num_dets'][1]}")
        print(f"  inference / image : torchvision {inf['torchvision'] * 1000:8.1f} ms | resdet "
              f"{inf['resdet'] * 1000:8.1f} ms | ratio {inf['ratio']:.3f}")
        if "resdet_bf16" in inf:
            print(f"  inference bf16    : resdet {inf['resdet_bf16'] * 1000:8.1f} ms | ratio vs tv fp32 "
                  f"{inf['ratio_bf16']:.3f}")
        print(f"  train step (bs 2) : torchvision {train['torchvision'] * 1000:8.1f} ms | resdet "
              f"{train['resdet'] * 1000:8.1f} ms | ratio {train['ratio']:.3f}")
    if args.json:
        atomic_write_json(results, args.json)
    return 0
