"""Shared scaffold of the two-stage detector benchmarks (``det``, ``mask``): a torchvision model
and the resdet model holding its converted weights, timed on the same image in one run.

Inference is batch 1 (resdet on its fast path: frozen BN folded, channels_last,
``torch.inference_mode``; torchvision on [0, 1] floats as it expects); the training step is
batch 2 (the image and its mirror): forward, backward and an SGD step. Times are medians.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

import torch
from mmengine.config import Config

from ..engine.step import sum_losses
from ..models.converters import load_weights
from ..models.detectors import compile_for_training, optimize_for_inference
from ..registry import MODELS
from ..structures.matching import pair_detections
from ..utils.io import atomic_write_json
from ..utils.malloc import describe as describe_malloc
from ..utils.malloc import is_tuned as malloc_tuned
from ._efficiency import backbone_efficiency
from ._memory import measure
from ._pair_report import print_times, summarize
from ._timing import sync, time_calls
from ._tv import tv_r50_fpn_detector


@dataclass(frozen=True)
class PairOptions:
    """What a pair benchmark times (the command line's options, see ``pair_parser``)."""

    height: int = 800
    width: int = 1333
    iters: int = 3  # timed inference calls per model
    warmup: int = 1
    train_iters: int = 2  # timed training steps per model
    bf16: bool = False
    compile: bool = False
    compile_train: bool = False
    onnxruntime: bool = False
    efficiency: bool = False
    memory: bool = True  # peak RSS of each model, each in a process of its own (CPU only)
    threads: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> PairOptions:
        names = {f.name for f in dataclasses.fields(cls)} - {"memory"}
        return cls(memory=not args.no_memory, **{n: getattr(args, n) for n in names if hasattr(args, n)})


def build_pair(kind: str, resdet_cfg: dict, device: torch.device, min_size: int, max_size: int):
    """torchvision's model (``_tv.tv_r50_fpn_detector``: its fine-tuning recipe, random weights
    under seed 0; no download) and resdet's built from ``resdet_cfg`` with the converted
    weights, both on ``device``."""
    torch.manual_seed(0)
    # 81 slots (background + 80): a plain N + 1 head, so resdet label = torchvision label - 1 (a
    # 91-slot head would be read as COCO's id layout and mapped to 80 classes by the converter)
    tv_model = tv_r50_fpn_detector(kind, num_classes=81, min_size=min_size, max_size=max_size)
    ours = MODELS.build(resdet_cfg)
    load_weights(ours, tv_model.state_dict())
    return tv_model.to(device), ours.to(device)


def box_targets(images: list[torch.Tensor], device: torch.device) -> list[dict]:
    """Three fixed boxes per image, torchvision labels (1-based)."""
    out = []
    for image in images:
        h, w = image.shape[-2:]
        boxes = torch.tensor(
            [
                [0.1 * w, 0.1 * h, 0.5 * w, 0.6 * h],
                [0.4 * w, 0.3 * h, 0.9 * w, 0.9 * h],
                [0.2 * w, 0.5 * h, 0.35 * w, 0.7 * h],
            ],
            device=device,
        )
        out.append({"boxes": boxes, "labels": torch.tensor([1, 5, 17], device=device)})
    return out


def _train_step(model: torch.nn.Module, inputs: list[torch.Tensor], targets: list[dict]) -> Callable[[], None]:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

    def step() -> None:
        losses = model(inputs, [dict(t) for t in targets])
        total = sum_losses(losses)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    return step


def bench_inference(
    tv_model,
    ours,
    device: torch.device,
    opts: PairOptions,
    image: torch.Tensor,
    check: Callable[[dict, dict], dict] | None = None,
) -> dict:
    """Inference timings (batch 1): torchvision, resdet's default fast path, and with
    ``--bf16`` / ``--compile`` those variants; the detections are paired before timing."""
    result: dict = {}
    tv_model.eval()
    fast = optimize_for_inference(copy.deepcopy(ours))
    with torch.inference_mode():
        expected = tv_model([image.float() / 255])[0]
        got = fast([image])[0]
    tv_labels = dict(expected, labels=expected["labels"] - 1)  # 81-slot head: resdet label = tv - 1
    pairs = pair_detections(tv_labels, got)
    result["check_num_dets"] = [len(expected["boxes"]), len(got["boxes"])]
    result["check_unpaired"] = pairs["unpaired"]
    result["check_boundary_swaps"] = pairs["boundary_swaps"]
    result["max_box_diff"], result["max_score_diff"] = pairs["max_box_diff"], pairs["max_score_diff"]
    if check is not None:
        result.update(check(expected, got))

    def run_tv():
        with torch.inference_mode():
            tv_model([image.float() / 255])

    def run_ours(model, bf16: bool = False):
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            return model([image])

    def median_s(run: Callable[[], object]) -> float:
        return time_calls(run, opts.iters, opts.warmup, device).median

    tv_inf = median_s(run_tv)
    ours_inf = median_s(lambda: run_ours(fast))
    times = {"torchvision": tv_inf, "resdet": ours_inf, "ratio": ours_inf / tv_inf}
    if opts.bf16:
        ours_bf16 = median_s(lambda: run_ours(fast, bf16=True))
        times.update(resdet_bf16=ours_bf16, ratio_bf16=ours_bf16 / tv_inf)
    if opts.compile:
        compiled = optimize_for_inference(copy.deepcopy(ours), compile=True)
        start = time.perf_counter()
        first = run_ours(compiled)[0]
        sync(device)
        times["compile_first_call_s"] = time.perf_counter() - start
        compiled_pairs = pair_detections(tv_labels, first)
        result["compiled_max_box_diff"] = compiled_pairs["max_box_diff"]
        result["compiled_max_score_diff"] = compiled_pairs["max_score_diff"]
        result["compiled_unpaired"] = compiled_pairs["unpaired"]
        ours_compiled = median_s(lambda: run_ours(compiled))
        times.update(resdet_compiled=ours_compiled, ratio_compiled=ours_compiled / tv_inf)
        del compiled
    if opts.onnxruntime and device.type == "cpu":
        result["onnxruntime"] = onnxruntime_times(fast, image, tv_labels, tv_inf, opts)
    if opts.efficiency:
        eff = result["efficiency"] = backbone_efficiency(fast, image, device, repeats=opts.iters)
        eff["floor_ratio"] = eff["floor_ms"] / 1000 / tv_inf
    result["inference_s"] = times
    return result


def onnxruntime_times(fast, image: torch.Tensor, expected: dict, tv_inf: float, opts: PairOptions) -> dict:
    """The same model exported to ONNX (``resdet.deploy``) and run by onnxruntime. The resize
    moves from the preprocessor to the test pipeline the export reads (the same shorter-side
    rule; the benchmark image is already at that size, so it is a no-op either way)."""
    from ._onnx_row import onnxruntime_row

    model = copy.deepcopy(fast)
    pre = model.preprocessor
    pipeline = [dict(type="ResizeShortestEdge", short_edge_length=pre.min_size, max_size=pre.max_size)]
    pre.min_size = pre.max_size = None
    row = onnxruntime_row(
        model,
        Config(dict(test_pipeline=pipeline)),
        [image.cpu()],
        iters=opts.iters,
        warmup=opts.warmup,
        threads=opts.threads,
    )
    got = {k: torch.from_numpy(v) for k, v in row["detections"][0].items()}
    pairs = pair_detections(expected, got)
    return {
        "ms": row["ms_per_image"],
        "ratio": row["ms_per_image"] / 1000.0 / tv_inf,
        "export_s": row["export_s"],
        "max_box_diff": pairs["max_box_diff"],
        "max_score_diff": pairs["max_score_diff"],
        "unpaired": pairs["unpaired"],
        "count": list(pairs["count"]),
    }


def bench_train(
    tv_model, ours, device: torch.device, opts: PairOptions, image: torch.Tensor, make_targets: Callable = box_targets
) -> dict:
    images = [image, image.flip(-1)]
    tv_targets = make_targets(images, device)
    ours_targets = [dict(t, labels=t["labels"] - 1) for t in tv_targets]  # resdet labels are 0-based
    tv_model.train()
    ours.train()
    tv_train = time_calls(
        _train_step(tv_model, [i.float() / 255 for i in images], tv_targets), opts.train_iters, 1, device
    ).median
    ours_train = time_calls(_train_step(ours, images, ours_targets), opts.train_iters, 1, device).median
    times = {"torchvision": tv_train, "resdet": ours_train, "ratio": ours_train / tv_train}
    if opts.compile_train:
        compiled = copy.deepcopy(ours)
        parts = compile_for_training(compiled)
        step = _train_step(compiled, images, ours_targets)
        start = time.perf_counter()
        step()  # the first step compiles the forward and backward graphs
        sync(device)
        times["compile_first_step_s"] = time.perf_counter() - start
        times["compile_failed"] = {name: part.failed for name, part in parts.items() if part.failed}
        times["resdet_compiled"] = time_calls(step, opts.train_iters, 0, device).median
        times["ratio_compiled"] = times["resdet_compiled"] / tv_train
        del compiled
    return times


def bench_memory(kind: str, opts: PairOptions) -> dict:
    """Peak RSS of each model's inference and training step, each in a fresh process."""
    out = {}
    for mode in ("infer", "train"):
        row = {}
        for impl in ("torchvision", "resdet"):
            row[impl] = measure(
                dict(
                    kind=kind,
                    impl=impl,
                    mode=mode,
                    height=opts.height,
                    width=opts.width,
                    threads=opts.threads,
                    tune_malloc=malloc_tuned(),
                )
            )
        row["ratio"] = row["resdet"]["peak_mb"] / row["torchvision"]["peak_mb"]
        out[mode] = row
    return out


def bench_pair(
    tv_model,
    ours,
    device: torch.device,
    opts: PairOptions,
    make_targets: Callable = box_targets,
    check: Callable[[dict, dict], dict] | None = None,
    kind: str | None = None,
) -> dict:
    """Times both models; ``check(expected, got)`` may add agreement figures of the two outputs."""
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, opts.height, opts.width), generator=g, dtype=torch.uint8).to(device)
    result = {"device": str(device), "size": [opts.height, opts.width], "allocator": describe_malloc()}
    result.update(bench_inference(tv_model, ours, device, opts, image, check=check))
    result["train_step_s"] = bench_train(tv_model, ours, device, opts, image, make_targets=make_targets)
    if kind is not None and device.type == "cpu" and opts.memory:
        result["peak_rss"] = bench_memory(kind, opts)
    result["summary"] = summarize(result)
    return result


def pair_main(
    argv,
    prog: str,
    doc: str,
    title: str,
    kind: str,
    cfg_fn: Callable[..., dict],
    bf16: bool,
    make_targets: Callable = box_targets,
    check: Callable[[dict, dict], dict] | None = None,
    describe_check: Callable[[dict], str] = lambda res: "",
) -> int:
    """The command line of a pair benchmark: parse, time on each selected device, print, save.
    ``kind``: ``'det'`` or ``'mask'``; ``cfg_fn(num_classes, min_size, max_size)`` gives resdet's
    config of the same model."""
    parser = pair_parser(prog, doc, bf16=bf16)
    args = parser.parse_args(argv)
    opts = PairOptions.from_args(args)
    results = []
    for device in selected_devices(parser, args):
        tv_model, ours = build_pair(
            kind, cfg_fn(num_classes=80, min_size=opts.height, max_size=opts.width), device, opts.height, opts.width
        )
        res = bench_pair(tv_model, ours, device, opts, make_targets=make_targets, check=check, kind=kind)
        results.append(res)
        print(
            f"[{device_name(device)}, malloc: {res['allocator']}] {title}, {opts.height}x{opts.width}; "
            f"detections tv/resdet: "
            f"{res['check_num_dets'][0]}/{res['check_num_dets'][1]} (unpaired {res['check_unpaired']}, "
            f"swapped at the top-100 cut {res['check_boundary_swaps']}, "
            f"max box diff {res['max_box_diff']:.2g} px, max score diff {res['max_score_diff']:.2g})"
            f"{describe_check(res)}"
        )
        print_times(res)
    if args.json:
        atomic_write_json(results, args.json)
    return 0


def pair_parser(prog: str, doc: str, bf16: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--device", default="all", choices=["all", "cpu", "cuda"], help="'all': the CPU, and the GPU when there is one"
    )
    parser.add_argument("--iters", type=int, default=PairOptions.iters, help="timed inference calls per model")
    parser.add_argument("--warmup", type=int, default=PairOptions.warmup)
    parser.add_argument(
        "--train-iters", type=int, default=PairOptions.train_iters, help="timed training steps per model"
    )
    parser.add_argument("--height", type=int, default=PairOptions.height)
    parser.add_argument("--width", type=int, default=PairOptions.width)
    if bf16:
        parser.add_argument("--bf16", action="store_true", help="also time resdet under bf16 autocast")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time resdet with its convolution stacks compiled (torch.compile; the "
        "one-time cost is reported separately)",
    )
    parser.add_argument(
        "--compile-train",
        action="store_true",
        help="also time resdet's training step with train_cfg.compile's parts compiled "
        "(the first step's compile time is reported separately)",
    )
    parser.add_argument(
        "--onnxruntime",
        action="store_true",
        help="also export resdet's model to ONNX and time onnxruntime on the CPU (needs resdet[export])",
    )
    parser.add_argument(
        "--efficiency",
        action="store_true",
        help="also report the backbone's achieved GFLOP/s against a large conv timed in the same run",
    )
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the peak-RSS measurements (each runs in a process of its own)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    return parser


def selected_devices(parser: argparse.ArgumentParser, args) -> list[torch.device]:
    """Applies ``--threads`` and returns the devices ``--device`` names."""
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
    return devices


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
