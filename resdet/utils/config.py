"""Config loading shared by every tool: mmengine ``Config`` files with ``_base_``
inheritance, plus ``--cfg-options key=value ...`` overrides."""
from __future__ import annotations

import argparse
import os
from typing import Sequence

from mmengine.config import Config, DictAction

from .errors import ConfigError  # noqa: F401  (re-exported)

# the shipped configs live inside the package (``configs/`` in a clone points here), so names
# resolve from an installed wheel and from any working directory
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def add_cfg_options_arg(parser: argparse.ArgumentParser) -> None:
    """Give a tool the shared ``--cfg-options`` flag."""
    parser.add_argument(
        "--cfg-options", nargs="+", action=DictAction, default=None, metavar="KEY=VALUE",
        help="override config keys, e.g. train_cfg.max_iters=100 "
             "model.backbone.depth=50 'optimizer.lr=0.01' (lists: key=[a,b])")


def shipped_config_names() -> list[str]:
    """Names of the configs shipped with resdet (``frcnn_r101_coco``, ...), ``_base_`` excluded."""
    return sorted(name[:-3] for name in os.listdir(CONFIG_DIR)
                  if name.endswith(".py") and not name.startswith("_"))


def resolve_config_path(path_or_name: str) -> str:
    """A config file: the path itself when it exists (relative to the working directory),
    else a shipped config named ``NAME``, ``NAME.py``, ``configs/NAME.py`` or
    ``configs/_base_/...``, found inside the installed package."""
    if os.path.isfile(path_or_name):
        return path_or_name
    name = path_or_name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    if name.startswith("configs/"):
        name = name[len("configs/"):]
    for candidate in (name, name + ".py"):
        full = os.path.join(CONFIG_DIR, candidate)
        if os.path.isfile(full):
            return full
    import difflib
    close = difflib.get_close_matches(os.path.splitext(os.path.basename(name))[0], shipped_config_names(), n=3)
    hint = f"; closest shipped configs: {', '.join(close)}" if close else ""
    raise FileNotFoundError(f"config '{path_or_name}' not found: not a file (relative to {os.getcwd()}) "
                            f"and not a config shipped in {CONFIG_DIR}{hint}")


def load_config(path_or_name: str, cfg_options: dict | None = None) -> Config:
    """Load a config file and apply ``--cfg-options`` overrides."""
    path = resolve_config_path(path_or_name)
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        raise SyntaxError(f"config {path}, line {err.lineno}: {err.msg}") from err
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    return cfg


def parse_args_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None):
    """Parse ``argv`` and return ``(args, cfg)`` for a tool whose first positional is ``config``."""
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    return args, cfg


def build_train_parser(description: str, example_config: str) -> argparse.ArgumentParser:
    """The arguments every training tool takes: CONFIG, --work-dir, --resume [PATH], --cfg-options."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help=f"config file, or a name in configs/ (e.g. {example_config})")
    parser.add_argument("--work-dir", default=None,
                        help="where checkpoints and logs go (default: the config's work_dir, else "
                             "work_dirs/<config name>)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="PATH",
                        help="resume from PATH, or without PATH from the newest readable checkpoint "
                             "of the work dir")
    add_cfg_options_arg(parser)
    return parser


def resolve_work_dir(args: argparse.Namespace, cfg: Config) -> str:
    """``--work-dir``, else the config's ``work_dir``, else ``work_dirs/<config name>``."""
    name = os.path.splitext(os.path.basename(args.config))[0]
    return args.work_dir or cfg.get("work_dir") or os.path.join("work_dirs", name)
