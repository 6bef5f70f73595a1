"""Print a config with its ``_base_`` files and ``--cfg-options`` merged, as valid Python.

    resdet print-config frcnn_r101_coco                       # a shipped config, by name
    resdet print-config configs/frcnn_r101_coco.py --cfg-options train_cfg.max_iters=10
    resdet print-config my_config.py --diff                   # only what differs from its bases

The output can be saved and used as a config file itself (it has no ``_base_``). Keys are
checked the way training checks them (the model is built on the meta device, so a key its
components do not take, e.g. ``model.roi_head.x=1``, is an error naming the closest one;
``train_cfg``, loader and optimizer keys and values; dataset arguments); ``--no-check`` prints
without checking.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch
from mmengine.config import Config

from resdet.cli._errors import command
from resdet.engine.config_check import check_engine_config
from resdet.registry import DATASETS, MODELS, build_from_cfg, check_arguments
from resdet.utils.config import ConfigError, add_cfg_options_arg, load_config, resolve_config_path, shipped_config_names


def _plain(value):
    return value.to_dict() if hasattr(value, "to_dict") else value


def config_diff(full: dict, base: dict) -> dict:
    """The nested part of ``full`` that differs from ``base`` (dicts are compared key by key,
    anything else as a whole)."""
    out = {}
    for key, value in full.items():
        value = _plain(value)
        if key not in base:
            out[key] = value
            continue
        other = _plain(base[key])
        if isinstance(value, dict) and isinstance(other, dict):
            sub = config_diff(value, other)
            if sub:
                out[key] = sub
        elif value != other:
            out[key] = value
    return out


def merged_bases(path: str) -> dict:
    """The merged content of the ``_base_`` files of ``path`` (empty when it has none)."""
    bases = Config._get_base_files(path)
    merged: dict = {}
    for base in bases:
        base_path = Config._get_cfg_path(base, path)[0]  # relative, absolute or resdet::NAME
        merged = Config._merge_a_into_b(Config.fromfile(base_path).to_dict(), merged)
    return merged


def _dataset_configs(loader: Any) -> list[dict]:
    """The dataset config(s) of a loader config (a ``ConcatDataset``'s parts too)."""
    dataset = _plain((loader or {}).get("dataset")) if isinstance(_plain(loader), dict) else None
    found, todo = [], [dataset]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            found.append(item)
            todo += [_plain(d) for d in item.get("datasets") or []]
    return found


def check_config(cfg: Config) -> None:
    """Raise ``ConfigError`` for a key or value that training would refuse: the model's
    components are built on the meta device through the registry (its unknown-argument check
    with the closest name), ``train_cfg`` against ``TrainConfig``, the engine's value checks,
    and each dataset's arguments against its constructor (nothing is read from disk)."""
    if cfg.get("model") is not None:
        try:
            with torch.device("meta"):  # shapes only: no memory, no weights loaded
                MODELS.build(_plain(cfg.model))
        except ConfigError:
            raise
        except (TypeError, ValueError, KeyError) as err:
            raise ConfigError(f"model: {err.args[0] if isinstance(err, KeyError) and err.args else err}") from None
    loaders = {key: _plain(cfg.get(key)) for key in ("train_dataloader", "val_dataloader")}
    check_engine_config(
        _plain(cfg.get("train_cfg")),
        loaders["train_dataloader"],
        loaders["val_dataloader"],
        _plain(cfg.get("optimizer")),
    )  # train_cfg: TrainConfig's keys and checks
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        for dataset in _dataset_configs(cfg.get(key)):
            if not isinstance(dataset.get("type"), str):  # a class given directly: nothing to look up
                continue
            dataset_cls = DATASETS.get(dataset["type"])
            if dataset_cls is None:  # unregistered: raises the registry's error with the closest names
                build_from_cfg(dataset, DATASETS)
            args = {k: v for k, v in dataset.items() if k != "type"}
            check_arguments(dataset_cls, args, DATASETS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="config file, or the name of a shipped config (see --list)")
    parser.add_argument(
        "--diff", action="store_true", help="print only the keys whose values differ from the config's _base_ files"
    )
    parser.add_argument("--list", action="store_true", help="list the shipped config names and exit")
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="print without checking the keys against the components (e.g. a config for "
        "components registered by your own code)",
    )
    add_cfg_options_arg(parser)
    return parser


@command("print-config")
def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(shipped_config_names()))
        return 0
    if args.config is None:
        parser.error("the following arguments are required: config")
    try:
        path = resolve_config_path(args.config)
        cfg = load_config(path, args.cfg_options)
    except FileNotFoundError as err:
        print(f"resdet print-config: error: {err}", file=sys.stderr)
        return 2
    if not args.no_check:
        check_config(cfg)
    if args.diff:
        diff = config_diff(cfg.to_dict(), merged_bases(path))
        print(f"# {path}: keys that differ from its _base_ files\n" + Config(diff).pretty_text)
    else:
        print(f"# {path}, merged\n" + cfg.pretty_text)
    return 0
