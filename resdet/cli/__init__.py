"""The ``resdet`` command: one subcommand per tool (``resdet SUBCOMMAND --help``).

Each subcommand is a module of this package with ``main(argv) -> int``; ``tools/*.py`` are
thin wrappers of the same functions, so ``python tools/train_det.py CONFIG`` and
``resdet train-det CONFIG`` are one program.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from ..utils.console import run_guarded

# subcommand -> (module in resdet.cli, one-line summary)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train-cls": ("train_cls", "train an image classifier (ImageNet / CIFAR / synthetic stage)"),
    "train-det": ("train_det", "train a detector, mask or localization model (runs its pretraining first)"),
    "eval": ("eval", "evaluate a checkpoint on its config's test set, or a results file"),
    "demo": ("demo", "draw a model's detections on images"),
    "analyze": ("analyze", "where the AP goes: PR curves, confusion matrix, TIDE error breakdown, gallery"),
    "export": ("export", "export a model to ONNX or torch.export"),
    "benchmark": ("benchmark", "time resdet against torchvision / pycocotools in one run"),
    "convert-weights": ("convert_weights", "convert torchvision weights into a resdet checkpoint"),
    "weights": ("weights", "list the public weights known by name (torchvision://NAME), download one"),
    "complexity": ("complexity", "parameters and multiply-adds of a model"),
    "print-config": ("print_config", "print a merged config as valid Python"),
    "browse-dataset": ("browse_dataset", "draw a dataset's ground truth after the config's pipeline"),
    "publish": ("publish", "write a weights-only file to share a trained model"),
    "plot-curves": ("plot_curves", "plot training / validation curves of work dirs"),
    "compare-runs": ("compare_runs", "tabulate the last validation metrics of work dirs"),
    "layer-response": ("layer_response", "std of layer responses (the paper's Fig. 7)"),
    "reproduce": ("reproduce", "re-run the paper's CIFAR-proxy findings (Fig. 6, Fig. 7, Table 3)"),
}


def _usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [
        "usage: resdet SUBCOMMAND [options]   (resdet SUBCOMMAND --help for its options)",
        "(in a clone, python tools/X.py runs the same programs: tools/train_det.py = resdet train-det)",
        "",
        "subcommands:",
    ]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from .. import __version__

        print(f"resdet {__version__}")
        return 0
    name = argv[0]
    if name not in SUBCOMMANDS:
        from ..utils.hints import did_you_mean

        hint = did_you_mean(name, SUBCOMMANDS, paren=False)
        print(f"resdet: unknown subcommand '{name}'{hint}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"{__name__}.{SUBCOMMANDS[name][0]}")
    saved = sys.argv[0]
    sys.argv[0] = f"resdet {name}"  # argparse's prog in usage lines
    try:  # a closed stdout (| head, > /dev/full): resdet.utils.console
        return run_guarded(f"resdet {name}", lambda: int(module.main(argv[1:]) or 0))
    finally:
        sys.argv[0] = saved
