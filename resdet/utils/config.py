"""Config loading shared by every tool: mmengine ``Config`` files with ``_base_``
inheritance, plus ``--cfg-options key=value ...`` overrides."""

from __future__ import annotations

import argparse
import ast
import json
import os
from collections.abc import Sequence
from typing import Any

from mmengine.config import Config, DictAction

from .errors import ConfigError  # noqa: F401  (re-exported)
from .hints import close_names
from .outputs import check_output_path

# the shipped configs live inside the package (``configs/`` in a clone points here), so names
# resolve from an installed wheel and from any working directory
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


_LITERAL_NODES = (ast.Constant, ast.List, ast.Tuple, ast.Dict, ast.UnaryOp, ast.Call, ast.Set)


def _safe_value(node: ast.AST) -> Any:
    """A Python literal, also inside lists / tuples / dicts, plus ``dict(key=value, ...)``."""
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args):
            raise ValueError("only dict(key=value, ...) calls are allowed")
        return {kw.arg: _safe_value(kw.value) for kw in node.keywords}
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_safe_value(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        return {_safe_value(k): _safe_value(v) for k, v in zip(node.keys, node.values)}
    return ast.literal_eval(node)


def parse_option_value(key: str, text: str) -> Any:
    """The value of ``--cfg-options KEY=TEXT``: a Python literal (``0.01``, ``None``, ``[1, 2]``,
    ``(56, 64)``), a ``dict(...)`` or a list of them, else mmengine's reading (``a,b`` is a
    list, anything else a string)."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
        if isinstance(tree, _LITERAL_NODES):
            return _safe_value(tree)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        pass
    try:
        return DictAction._parse_iterable(text)
    except (RecursionError, ValueError, AssertionError, IndexError) as err:
        raise ConfigError(
            f"--cfg-options {key}={text}: cannot read the value ({type(err).__name__}); "
            f"write a Python literal, e.g. {key}=[1, 2] or {key}=dict(type='StepLR', "
            f"milestones=[100])"
        ) from None


class CfgOptionsAction(argparse.Action):
    """``--cfg-options KEY=VALUE ...`` into a dict; see ``parse_option_value``."""

    def __call__(self, parser, namespace, values, option_string=None):
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in values:
            if "=" not in item:
                raise ConfigError(f"--cfg-options takes KEY=VALUE pairs; got {item!r}")
            key, text = item.split("=", 1)
            if not key:
                raise ConfigError(f"--cfg-options {item!r}: the key before '=' is empty")
            options[key] = parse_option_value(key, text)
        setattr(namespace, self.dest, options)


def add_cfg_options_arg(parser: argparse.ArgumentParser) -> None:
    """Give a tool the shared ``--cfg-options`` flag."""
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=CfgOptionsAction,
        default=None,
        metavar="KEY=VALUE",
        help="override config keys, e.g. train_cfg.max_iters=100 "
        "model.backbone.depth=50 'optimizer.lr=0.01' (lists: key=[a,b])",
    )


SHIPPED_PREFIX = "resdet::"  # in a user's _base_: a shipped config, e.g. "resdet::_base_/models/frcnn_r50_fpn.py"


def _install_shipped_prefix() -> None:
    """Teach mmengine's ``_base_`` resolution the ``resdet::NAME`` prefix (the shipped configs,
    wherever resdet is installed), so a config in a user's own folder can inherit ours.
    mmengine's own ``package::`` form needs a model index that resdet does not ship; every other
    path keeps mmengine's meaning."""
    original = Config._get_cfg_path
    if getattr(original, "_resdet", False):
        return

    def get_cfg_path(cfg_path: str, filename: str):
        if isinstance(cfg_path, str) and cfg_path.startswith(SHIPPED_PREFIX):
            name = cfg_path[len(SHIPPED_PREFIX) :]
            path = os.path.join(CONFIG_DIR, name if name.endswith(".py") else name + ".py")
            if not os.path.isfile(path):
                raise ConfigError(
                    f"{filename}: _base_ {cfg_path!r} is not a shipped config (looked for {path}); "
                    f"see `resdet print-config --list`"
                )
            return path, None
        return original(cfg_path, filename)

    get_cfg_path._resdet = True
    Config._get_cfg_path = staticmethod(get_cfg_path)


_install_shipped_prefix()


def shipped_config_names() -> list[str]:
    """Names of the configs shipped with resdet (``frcnn_r101_coco``, ...), ``_base_`` excluded."""
    return sorted(name[:-3] for name in os.listdir(CONFIG_DIR) if name.endswith(".py") and not name.startswith("_"))


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
        name = name[len("configs/") :]
    for candidate in (name, name + ".py"):
        full = os.path.join(CONFIG_DIR, candidate)
        if os.path.isfile(full):
            return full
    close = close_names(os.path.splitext(os.path.basename(name))[0], shipped_config_names(), n=3)
    hint = f"; closest shipped configs: {', '.join(close)}" if close else ""
    raise FileNotFoundError(
        f"config '{path_or_name}' not found: not a file (relative to {os.getcwd()}) "
        f"and not a config shipped in {CONFIG_DIR}{hint}"
    )


def _base_files(path: str) -> list[str]:
    """The files ``path``'s ``_base_`` names (read with ``ast``: no code runs); ``[]`` when it
    has none or cannot be parsed (mmengine then reports the problem itself)."""
    if not path.endswith(".py"):
        return []
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError, MemoryError):
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                return []
            names = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else []
            return [
                os.path.join(CONFIG_DIR, n[len(SHIPPED_PREFIX) :] + ("" if n.endswith(".py") else ".py"))
                if n.startswith(SHIPPED_PREFIX)
                else os.path.join(os.path.dirname(path), n)
                for n in names
                if isinstance(n, str)
            ]
    return []


def check_base_chain(path: str, chain: tuple[str, ...] = (), done: set | None = None) -> None:
    """Raise ``ConfigError`` naming the chain of files when ``_base_`` inheritance loops back
    (``a.py -> b.py -> a.py``); mmengine would recurse until Python's recursion limit."""
    done = set() if done is None else done
    real = os.path.realpath(path)
    if real in chain:
        loop = [os.path.relpath(p) if len(os.path.relpath(p)) < len(p) else p for p in chain[chain.index(real) :]]
        raise ConfigError(
            f"config _base_ cycle: {' -> '.join(loop + [loop[0]])}; a config cannot inherit from "
            "itself: remove one of these _base_ entries"
        )
    if real in done:
        return
    for base in _base_files(real):
        if os.path.isfile(base):
            check_base_chain(base, chain + (real,), done)
    done.add(real)


_ANNOTATION_KEYS = ("images", "annotations", "categories")


def _refuse_json_data_file(path: str) -> None:
    """A ``.json`` given as the config that is really data (a COCO annotation or results file)
    is named as such, with what to pass instead; other json configs are left to mmengine."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"config {path} is not readable json: {err}") from None
    except (RecursionError, MemoryError):
        raise ConfigError(
            f"config {path} is nested too deeply to be read (json deeper than Python's "
            "recursion limit); it is not a config: pass a .py config"
        ) from None
    keys = [k for k in _ANNOTATION_KEYS if isinstance(data, dict) and k in data]
    if keys or isinstance(data, list):
        what = (
            "a COCO annotation file (it has " + ", ".join(repr(k) for k in keys) + ")"
            if keys
            else "a json list (a results or annotation file)"
        )
        raise ConfigError(
            f"{path} is {what}, not a config: pass a config (a .py file or a shipped name, see "
            "`resdet print-config --list`) and give this file as its dataset's ann_file, e.g. "
            f"--cfg-options train_dataloader.dataset.ann_file={path}"
        )


def load_config(path_or_name: str, cfg_options: dict | None = None) -> Config:
    """Load a config file and apply ``--cfg-options`` overrides."""
    try:
        path = resolve_config_path(path_or_name)
    except FileNotFoundError as err:
        raise ConfigError(str(err)) from None
    if path.lower().endswith(".json"):
        _refuse_json_data_file(path)
    check_base_chain(path)
    try:
        cfg = Config.fromfile(path)
    except (RecursionError, MemoryError):
        raise ConfigError(
            f"config {path} is nested too deeply to be read (deeper than Python's recursion "
            "limit); write it as a flat .py config"
        ) from None
    except SyntaxError as err:
        where = err.filename if err.filename and os.path.isfile(err.filename) else path
        raise ConfigError(f"config {where}, line {err.lineno}: {err.msg}") from None
    except ConfigError:
        raise
    except (KeyError, NameError, TypeError, ValueError, ImportError, FileNotFoundError) as err:
        raise ConfigError(f"config {path} cannot be read: {type(err).__name__}: {err}") from None
    if cfg_options:
        merge_options(cfg, cfg_options)
    return cfg


def merge_options(cfg: Config, cfg_options: dict) -> None:
    """``cfg.merge_from_dict`` with errors that name the offending key."""
    for key, value in dict(cfg_options).items():
        try:
            cfg.merge_from_dict({key: value})
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as err:
            parent = key.rsplit(".", 1)[0] if "." in key else key
            raise ConfigError(
                f"--cfg-options {key}={value!r} does not fit the config ({type(err).__name__}: "
                f"{err}); check that {parent} exists and is a dict or list"
            ) from None


def parse_args_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None):
    """Parse ``argv`` and return ``(args, cfg)`` for a tool whose first positional is ``config``."""
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    return args, cfg


def build_train_parser(description: str, example_config: str) -> argparse.ArgumentParser:
    """The arguments every training tool takes: CONFIG, --work-dir, --resume [PATH], --cfg-options."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help=f"config file, or a name in configs/ (e.g. {example_config})")
    parser.add_argument(
        "--work-dir",
        default=None,
        help="where checkpoints and logs go (default: the config's work_dir, else work_dirs/<config name>)",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="PATH",
        help="resume from PATH, or without PATH from the newest readable checkpoint of the work dir",
    )
    add_cfg_options_arg(parser)
    return parser


def resolve_work_dir(args: argparse.Namespace, cfg: Config) -> str:
    """``--work-dir``, else the config's ``work_dir``, else ``work_dirs/<config name>``; checked
    to be a folder that can be written (``OutputError`` otherwise) before training starts."""
    name = os.path.splitext(os.path.basename(args.config))[0]
    work_dir = args.work_dir or cfg.get("work_dir") or os.path.join("work_dirs", name)
    check_output_path(work_dir, what="work dir", directory=True)  # before anything is built or trained
    return work_dir
