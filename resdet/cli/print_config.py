"""Print a config with its ``_base_`` files and ``--cfg-options`` merged, as valid Python.

    resdet print-config frcnn_r101_coco                       # a shipped config, by name
    resdet print-config configs/frcnn_r101_coco.py --cfg-options train_cfg.max_iters=10
    resdet print-config my_config.py --diff                   # only what differs from its bases

The output can be saved and used as a config file itself (it has no ``_base_``).
"""
from __future__ import annotations

import argparse
import sys

from mmengine.config import Config

from resdet.cli._errors import command
from resdet.utils.config import add_cfg_options_arg, load_config, resolve_config_path, shipped_config_names


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="config file, or the name of a shipped config (see --list)")
    parser.add_argument("--diff", action="store_true",
                        help="print only the keys whose values differ from the config's _base_ files")
    parser.add_argument("--list", action="store_true", help="list the shipped config names and exit")
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
        print(f"print-config: error: {err}", file=sys.stderr)
        return 2
    if args.diff:
        diff = config_diff(cfg.to_dict(), merged_bases(path))
        print(f"# {path}: keys that differ from its _base_ files\n" + Config(diff).pretty_text)
    else:
        print(f"# {path}, merged\n" + cfg.pretty_text)
    return 0
