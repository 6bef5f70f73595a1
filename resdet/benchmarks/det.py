"""Faster R-CNN R50-FPN: resdet against torchvision's ``fasterrcnn_resnet50_fpn`` with the same
weights and inputs, in one run.

    python tools/benchmark.py det [--device cpu|cuda|all] [--iters 3] [--train-iters 2]
                                  [--height 800 --width 1333] [--bf16] [--threads N] [--json OUT]

Reports inference latency per image (batch 1) and the training step time at batch 2
(forward, backward, SGD step), with the ratio resdet / torchvision (<= 1.0: resdet is not
slower). resdet's inference uses its fast path (frozen BN folded into the convolutions,
channels_last, ``torch.inference_mode``); ``--bf16`` adds a bf16-autocast resdet row. Weights
are random (torchvision ``weights=None`` under a fixed seed; no downloads), so both models
see the same number of proposals; the detection counts are reported before timing.
"""
from __future__ import annotations

from ..models.converters.torchvision_det import tv_fpn_model_cfg
from ..utils.io import atomic_write_json
from ._pair import bench_pair, build_pair, device_name, pair_parser, print_times, selected_devices


def main(argv=None) -> int:
    parser = pair_parser("tools/benchmark.py det", __doc__, bf16=True)
    args = parser.parse_args(argv)
    from torchvision.models.detection import fasterrcnn_resnet50_fpn
    results = []
    for device in selected_devices(parser, args):
        tv_model, ours = build_pair(fasterrcnn_resnet50_fpn,
                                    tv_fpn_model_cfg(num_classes=90, min_size=args.height, max_size=args.width),
                                    device, args.height, args.width)
        res = bench_pair(tv_model, ours, device, args)
        results.append(res)
        print(f"[{device_name(device)}] Faster R-CNN R50-FPN, {args.height}x{args.width}; detections tv/resdet: "
              f"{res['check_num_dets'][0]}/{res['check_num_dets'][1]}")
        print_times(res)
    if args.json:
        atomic_write_json(results, args.json)
    return 0
