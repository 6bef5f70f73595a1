"""Train an image classifier (the ImageNet / CIFAR-10 stage, or the synthetic default).

    resdet train-cls shapes_cls                                      # embedded default, ~4 min on CPU
    resdet train-cls resnet110_cifar10 --work-dir work_dirs/r110
    torchrun --nproc_per_node 8 -m resdet train-cls resnet50_imagenet
    resdet train-cls CONFIG --resume                        # latest checkpoint of the work dir
    resdet train-cls CONFIG --cfg-options train_cfg.max_iters=1000 optimizer.lr=0.05

Batch sizes in configs are totals over all processes. Configs with a ``pixel_mean`` entry get
the training set's per-pixel mean loaded into ``model.mean`` (computed once per work dir).
"""

from __future__ import annotations

import argparse
import sys

from resdet.cli._errors import command
from resdet.utils.config import build_train_parser, parse_args_with_config, resolve_work_dir


def build_parser() -> argparse.ArgumentParser:
    return build_train_parser(__doc__, "resnet20_cifar10")


@command("train-cls")
def main(argv=None) -> int:
    args, cfg = parse_args_with_config(build_parser(), argv)
    from resdet.apis.classify import resolve_pixel_mean
    from resdet.engine import Trainer
    from resdet.utils.dist import init_distributed, is_main_process

    init_distributed()
    work_dir = resolve_work_dir(args, cfg)
    overrides = {}
    mean = resolve_pixel_mean(cfg, work_dir)
    if mean is not None:
        model = cfg.model.to_dict()
        model["mean"] = mean
        overrides["model"] = model
    trainer = Trainer.from_config(cfg, work_dir=work_dir, resume=args.resume, **overrides)
    results = trainer.train()
    if is_main_process():
        scores = ", ".join(f"{k} {v:.4f}" for k, v in results.items() if isinstance(v, float))
        if scores:
            print(f"final validation: {scores}")
        print(f"checkpoint: {results.get('checkpoint')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
