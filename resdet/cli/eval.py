"""Evaluate a model on its config's test set, or a saved results file.

    resdet eval CONFIG CHECKPOINT --metric mAP@[.5:.95] [--out results.json] [--json m.json]
    resdet eval shapes_frcnn work_dirs/shapes_frcnn/final.pth
    torchrun --nproc_per_node 2 -m resdet eval CONFIG CHECKPOINT --metric top1 --metric top5
    resdet eval --ann instances_val2017.json --results results.json --metric mAP@[.5:.95]
    resdet eval --ann VOCdevkit/VOC2007 --split test --results dets.json --metric mAP@0.5

Metrics: top1, top5, mAP@[.5:.95], segm-mAP@[.5:.95], mAP@0.5 (COCO AP50 on COCO data, VOC
mAP on VOC data), loc-err. Results files use the COCO results format. CHECKPOINT is required:
an untrained model is evaluated only with --random-weights.
"""

from __future__ import annotations

import argparse
import os
import sys

from resdet.cli._errors import command
from resdet.evaluation.builder import METRIC_STRINGS
from resdet.evaluation.results import ResultsError
from resdet.utils.config import add_cfg_options_arg
from resdet.utils.io import CheckpointError, check_output_path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="config file or name in configs/")
    parser.add_argument("checkpoint", nargs="?", help="checkpoint to evaluate")
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="evaluate the config's model without a checkpoint (random / init_cfg "
        "weights: a baseline or a smoke test, not a result)",
    )
    parser.add_argument(
        "--metric",
        action="append",
        default=None,
        help=f"repeatable; one of {', '.join(METRIC_STRINGS)} (default: the config's test/val evaluator)",
    )
    parser.add_argument("--ann", help="ground truth for results-file mode: COCO json or VOC root")
    parser.add_argument("--results", help="results file (COCO results format) to evaluate")
    parser.add_argument("--split", default="test", help="VOC split (ImageSets/Main/<split>.txt)")
    parser.add_argument(
        "--out", help="write the model's detections (or top-5 localization guesses) here, COCO results format"
    )
    parser.add_argument("--json", dest="json_path", help="write every number here (json)")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "pycocotools", "faster"),
        help="COCO evaluation backend; auto = faster (faster-coco-eval, a core dependency: "
        "the same 12 numbers, many times faster); pycocotools = the reference",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="pycocotools backend: evaluate categories in this many processes"
    )
    parser.add_argument(
        "--voc-ap",
        default="auto",
        choices=("auto", "11point", "area"),
        help="VOC AP: 11-point (VOC2007) or area (VOC2010+); auto: 11-point for VOC2007",
    )
    parser.add_argument(
        "--no-plus-one", action="store_true", help="VOC: continuous IoU instead of the devkit's +1 pixel arithmetic"
    )
    parser.add_argument("--device", default=None, help="default: cuda:LOCAL_RANK if available, else cpu")
    parser.add_argument("--amp", default=None, choices=("bf16", "fp16"), help="autocast the forward pass")
    parser.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="detectors: compile the convolution stacks first (torch.compile; a one-time "
        "cost of tens of seconds on a CPU, then faster per image; falls back to eager)",
    )
    parser.add_argument(
        "--test-mode",
        default=None,
        choices=("center", "ten_crop", "multi_scale"),
        help="classifiers: the paper's test-time modes (default: the config's test_mode)",
    )
    add_cfg_options_arg(parser)
    args = parser.parse_args(argv)
    file_mode = args.ann is not None or args.results is not None
    if file_mode:
        if args.ann is None or args.results is None:
            parser.error("results-file mode needs both --ann and --results")
        if args.config or args.checkpoint:
            parser.error("give either CONFIG CHECKPOINT or --ann/--results, not both")
        if not args.metric:
            parser.error("results-file mode needs --metric")
        if args.out:
            parser.error("--out writes a model's predictions; it has no meaning with --results")
    elif not args.config:
        parser.error("give CONFIG CHECKPOINT (model mode) or --ann GT --results FILE")
    elif args.checkpoint and args.random_weights:
        parser.error("give either CHECKPOINT or --random-weights, not both")
    return args


def missing_checkpoint_message(config: str) -> str:
    """The one line for ``resdet eval CONFIG`` without a checkpoint: evaluating the untrained
    model would print an AP of about 0 and exit 0, which reads like a result."""
    name = os.path.splitext(os.path.basename(config))[0]
    guess = os.path.join("work_dirs", name, "final.pth")
    where = "it is there" if os.path.isfile(guess) else "training writes it into its work dir"
    return (
        f"no checkpoint given: pass the trained weights after the config, e.g. resdet eval {config} "
        f"{guess} ({where}); --random-weights evaluates the untrained model on purpose"
    )


@command("eval")
def main(argv=None) -> int:
    args = parse_args(argv)
    check_output_path(args.out, what="--out")  # before the evaluation runs, not after
    check_output_path(args.json_path, what="--json")
    if args.results is None and not args.checkpoint and not args.random_weights:
        print(f"resdet eval: error: {missing_checkpoint_message(args.config)}", file=sys.stderr)
        return 2
    if args.random_weights:
        print("resdet eval: --random-weights: evaluating the untrained model (no checkpoint)", file=sys.stderr)
    from resdet.apis.evaluate import evaluate_model, report
    from resdet.apis.evaluate_results import evaluate_results_file

    try:
        if args.results is not None:
            outputs = evaluate_results_file(
                args.ann,
                args.results,
                args.metric,
                split=args.split,
                backend=args.backend,
                voc_ap_method=args.voc_ap,
                voc_plus_one=not args.no_plus_one,
                workers=args.workers,
            )
            merged = {k: v for o in outputs for k, v in o["results"].items()}
            report([o["table"] for o in outputs], merged, args.json_path)
            return 0
        metrics, results = evaluate_model(
            args.config,
            args.checkpoint,
            args.metric,
            cfg_options=args.cfg_options,
            device=args.device,
            results_file=args.out,
            backend=args.backend,
            voc_ap_method=args.voc_ap,
            voc_plus_one=not args.no_plus_one,
            amp=args.amp,
            workers=args.workers,
            test_mode=args.test_mode,
            compile=args.compile,
        )
        report([m.format_table(results) for m in metrics], results, args.json_path)
        return 0
    except (ResultsError, CheckpointError, ValueError, KeyError, FileNotFoundError, ImportError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"resdet eval: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
