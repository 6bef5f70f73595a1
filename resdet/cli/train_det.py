"""Train a detector (Faster R-CNN) with periodic COCO or VOC evaluation.

    resdet train-det shapes_frcnn                               # embedded default (CPU, ~6 min)
    resdet train-det frcnn_r101_coco --work-dir work_dirs/r101
    torchrun --nproc_per_node 8 -m resdet train-det frcnn_r50_fpn_coco
    resdet train-det CONFIG --resume                            # newest checkpoint of the work dir
    resdet train-det CONFIG --cfg-options train_cfg.max_iters=100 optimizer.lr=0.01

A config with ``pretrain = dict(config=..., checkpoint=...)`` runs that classification stage
first (in-process) when its checkpoint is missing; ``--pretrain-cfg-options k=v ...`` (or
``pretrain.cfg_options`` in the config) override that stage's config, as ``--cfg-options`` do
the detector's, e.g. ``--pretrain-cfg-options train_cfg.max_iters=200``. An existing
pretraining checkpoint is reused when the config it records matches that stage's config (a log
line says so); one trained with another config (e.g. a short run) is moved aside to
``*.stale.pth`` and the stage trains again, unless ``--reuse-pretrained``. A config with
``demo = dict(num_images, score_thr)`` draws detections of the first validation images into
``<work_dir>/demo/``. Batch sizes in configs are totals over all processes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from resdet.cli._errors import command
from resdet.utils.config import (
    CfgOptionsAction,
    ConfigError,
    build_train_parser,
    parse_args_with_config,
    resolve_work_dir,
)


def build_parser() -> argparse.ArgumentParser:
    parser = build_train_parser(__doc__, "shapes_frcnn")
    parser.add_argument(
        "--pretrain-cfg-options",
        nargs="+",
        action=CfgOptionsAction,
        default=None,
        metavar="KEY=VALUE",
        help="override keys of the pretraining stage's config (the config's "
        "pretrain.config), e.g. train_cfg.max_iters=200",
    )
    parser.add_argument(
        "--reuse-pretrained",
        action="store_true",
        help="use the existing pretraining checkpoint even if the config it records differs "
        "from the pretraining stage's (by default such a checkpoint is trained again)",
    )
    return parser


@command("train-det")
def main(argv=None) -> int:
    args, cfg = parse_args_with_config(build_parser(), argv)
    from resdet.apis.detect import draw_and_save, ensure_pretrained, format_detection_results
    from resdet.apis.pretrain import check_pretrained
    from resdet.engine import Trainer
    from resdet.engine.inference import unwrap_model
    from resdet.utils.dist import init_distributed, is_main_process

    init_distributed()
    start = time.time()
    work_dir = resolve_work_dir(args, cfg)
    if args.pretrain_cfg_options:
        if not cfg.get("pretrain"):
            raise ConfigError("--pretrain-cfg-options given but the config has no 'pretrain' stage")
        cfg.pretrain.cfg_options = {**dict(cfg.pretrain.get("cfg_options") or {}), **args.pretrain_cfg_options}
    check_pretrained(cfg, reuse=args.reuse_pretrained)
    ensure_pretrained(cfg)
    trainer = Trainer.from_config(cfg, work_dir=work_dir, resume=args.resume)
    results = trainer.train()
    if not is_main_process():
        return 0
    summary = format_detection_results(results)
    if summary:
        print(f"final validation: {summary}")
    print(f"checkpoint: {results.get('checkpoint')}")
    demo = cfg.get("demo")
    if demo and trainer.val_loader is not None:
        dataset = trainer.val_loader.raw_dataset
        count = min(int(demo.get("num_images", 4)), len(dataset))
        paths = [dataset.records[i]["file"] for i in range(count)] if hasattr(dataset, "records") else []
        if paths:
            out_dir = os.path.join(work_dir, "demo")
            draw_and_save(
                unwrap_model(trainer.model),
                paths,
                out_dir,
                score_thr=float(demo.get("score_thr", 0.5)),
                class_names=getattr(dataset, "class_names", None),
                cfg=cfg,
            )
            print(f"demo: detections on {len(paths)} validation images drawn in {out_dir}/")
    print(f"total time (including any pretraining stage): {(time.time() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
