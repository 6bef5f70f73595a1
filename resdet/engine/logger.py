"""Logging of training runs (rank 0 writes; other ranks only print warnings).

``metrics.jsonl`` in the work dir holds one JSON object per line:

- training events (every ``log_interval`` iterations): ``{"mode": "train", "iter": i,
  "epoch": e, "lr": ..., "loss": ..., <every entry of the model's loss dict, e.g.
  "loss_cls", "train_err">, "time": s/iter, "data_time": s/iter, "eta_s": ...,
  "num_skipped": running total of dropped samples}`` — values averaged over the interval
  and over ranks; ``iter`` counts finished iterations.
- validation events: ``{"mode": "val", "iter": i, "epoch": e, <metric keys, e.g.
  "top1_err", "top5_err">}``.

A fresh run in an existing work dir starts a new file; a resumed run first drops the records
of the iterations after its checkpoint, so every ``iter`` appears once per mode.
Plots read the training error as ``train_err`` of ``mode == "train"`` lines and the
validation error as e.g. ``top1_err`` of ``mode == "val"`` lines.

The console may go away during a run (``| head``, a ``tee`` that exits, a closed terminal):
the console handler then goes quiet, says so once in ``train.log`` and the run goes on.
"""

from __future__ import annotations

import ast
import datetime
import json
import logging
import os
import platform
import re
import sys
import warnings

import torch

from ..utils.console import is_gone_error, silence_stdout
from ..utils.errors import DataError
from ..utils.io import atomic_write_json, atomic_write_text

LOGGER_NAME = "resdet"


class ConsoleHandler(logging.StreamHandler):
    """A ``StreamHandler`` that goes quiet for good when its stream is gone (``BrokenPipeError``,
    EIO, ENOSPC) instead of failing on every line; see ``silence_console``."""

    quiet = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.quiet:
            return
        try:
            self.stream.write(self.format(record) + self.terminator)
            self.flush()
        except OSError as err:
            if not is_gone_error(err):
                self.handleError(record)
                return
            silence_console(f"{type(err).__name__}: {err.strerror or err}")
        except ValueError:  # a stream closed under us (a finished test's capture): as StreamHandler
            self.handleError(record)


class RunFileHandler(logging.FileHandler):
    """A run's ``train.log``, opened at its first line. The ``resdet`` logger outlives the
    ``Trainer`` in its process, so a later line can come after the run's folder was deleted (a
    temporary work dir cleaned up, a run refused before its first line and removed). Then the
    handler leaves the logger instead of raising from that log call and every later one (a
    plain ``FileHandler`` raises ``FileNotFoundError`` out of ``logger.warning``)."""

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None:
            try:
                self.stream = self._open()
            except FileNotFoundError:  # the folder is gone: so is the run this file belonged to
                logging.getLogger(LOGGER_NAME).removeHandler(self)
                self.close()
                return
            except OSError:
                self.handleError(record)  # unwritable: reported on stderr, as logging does
                return
        super().emit(record)


def silence_console(reason: str) -> None:
    """Stop the ``resdet`` logger's console output (its file keeps everything), point stdout at
    ``/dev/null`` so later prints and the exit flush cannot fail, and log one line saying so."""
    logger = logging.getLogger(LOGGER_NAME)
    consoles = [h for h in logger.handlers if isinstance(h, ConsoleHandler)]
    if all(h.quiet for h in consoles):
        return
    for handler in consoles:
        handler.quiet = True
    silence_stdout(sys.stdout)  # the console handler's stream is stdout (or rich's proxy of it)
    logger.warning("console output stopped (%s); the run goes on, this log keeps every line", reason)


def setup_logger(work_dir: str | None, rank: int = 0, filename: str = "train.log") -> logging.Logger:
    """The ``resdet`` logger: INFO to stdout (and ``work_dir/filename``) on rank 0,
    WARNING only on other ranks."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.propagate = False
    for handler in list(logger.handlers):
        if getattr(handler, "_resdet", False):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    stream = ConsoleHandler(sys.stdout)
    stream.setFormatter(fmt)
    stream._resdet = True
    logger.addHandler(stream)
    if work_dir and rank == 0:
        os.makedirs(work_dir, exist_ok=True)
        # delay: a run refused before its first line (the work dir is busy) leaves no file
        file_handler = RunFileHandler(os.path.join(work_dir, filename), encoding="utf-8", delay=True)
        file_handler.setFormatter(fmt)
        file_handler._resdet = True
        logger.addHandler(file_handler)
    return logger


def metrics_path(work_dir: str) -> str:
    """``work_dir/metrics.jsonl``, or ``work_dir`` itself when it is a file."""
    return work_dir if os.path.isfile(work_dir) else os.path.join(work_dir, "metrics.jsonl")


def read_metrics(work_dir: str, mode: str | None = None) -> list[dict]:
    """The records of ``work_dir/metrics.jsonl`` (a path to the file itself also works), in
    file order; only those with ``"mode": mode`` when ``mode`` is given ('train' / 'val').

    Lines that are not JSON objects (e.g. a line cut by a kill mid-write) are skipped; an
    empty file has no records. A missing or unreadable file raises ``FileNotFoundError`` /
    ``OSError``, one that holds no JSON record at all ``DataError``; each names the file."""
    path = metrics_path(work_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist (the engine writes metrics.jsonl in the work dir)")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
    except OSError as err:
        raise OSError(f"cannot read {path}: {err.strerror or err}") from err
    records, foreign = [], 0
    for line in filter(None, (line.strip() for line in lines)):
        try:
            record = json.loads(line)
        except ValueError:
            foreign += not line.startswith("{")  # a line cut mid-write still starts with '{'
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            foreign += 1
    if not records and foreign:
        raise DataError(f"{path} holds no JSON records (is it a resdet metrics.jsonl?)")
    return records if mode is None else [r for r in records if r.get("mode") == mode]


class MetricsWriter:
    """Appends JSON lines to ``work_dir/metrics.jsonl`` (and TensorBoard scalars if asked)."""

    def __init__(self, work_dir: str, tensorboard: bool = False) -> None:
        self.path = os.path.join(work_dir, "metrics.jsonl")
        os.makedirs(work_dir, exist_ok=True)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(os.path.join(work_dir, "tensorboard"))
            except ImportError:
                logging.getLogger(LOGGER_NAME).warning(
                    "train_cfg.tensorboard=True but the 'tensorboard' package is not installed "
                    "(pip install tensorboard); writing metrics.jsonl only"
                )

    def truncate_after(self, iteration: int, drop_val_at_end: bool = False) -> None:
        """Keep only records with ``iter <= iteration`` (all are dropped for ``iteration == 0``);
        ``drop_val_at_end`` also drops the validation records of ``iteration`` (to be redone)."""
        if not os.path.isfile(self.path):
            return
        kept = []
        for record in read_metrics(self.path) if iteration > 0 else []:
            it = int(record.get("iter", 0))
            if it < iteration or (it == iteration and not (drop_val_at_end and record.get("mode") == "val")):
                kept.append(json.dumps(record) + "\n")
        atomic_write_text("".join(kept), self.path)

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
        if self.tb is not None:
            mode = record.get("mode", "train")
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("iter", "epoch"):
                    self.tb.add_scalar(f"{mode}/{key}", value, record.get("iter", 0))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def point_console_at(stream) -> None:
    """Send the ``resdet`` logger's console lines to ``stream`` (e.g. rich's proxy of stdout
    while a progress bar is on screen, so lines print above the bar instead of through it)."""
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        if (
            getattr(handler, "_resdet", False)
            and isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler)
        ):
            handler.setStream(stream)


class RepeatedWarnings:
    """Within the block, a warning whose text was already shown is not shown again but
    counted; on exit one log line per repeated warning gives its count. (Warnings naming
    different files are different texts: each is shown once.)"""

    def __init__(self, logger: logging.Logger, max_summary: int = 5) -> None:
        self.logger, self.max_summary = logger, max_summary
        self.counts: dict[tuple[str, str], int] = {}

    def __enter__(self) -> RepeatedWarnings:
        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.simplefilter("always")
        previous = warnings.showwarning  # pytest's capture, or Python's own

        def show(message, category, filename, lineno, file=None, line=None):
            key = (category.__name__, str(message))
            self.counts[key] = self.counts.get(key, 0) + 1
            if self.counts[key] == 1:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        return self

    def __exit__(self, *exc) -> None:
        self._catcher.__exit__(*exc)
        repeated = sorted(((n, k) for k, n in self.counts.items() if n > 1), reverse=True)
        for count, (category, text) in repeated[: self.max_summary]:
            short = text if len(text) <= 160 else text[:157] + "..."
            self.logger.warning("%s repeated %d times: %s", category, count, short)
        if len(repeated) > self.max_summary:
            self.logger.warning("%d more warnings repeated", len(repeated) - self.max_summary)


def environment_info(device: torch.device, world_size: int) -> dict:
    import numpy
    import torchvision

    from .. import __version__

    info = {
        "resdet": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "device": str(device),
        "world_size": int(world_size),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "num_threads": torch.get_num_threads(),
        "start_time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    return info


_RESUMED_CONFIG_RE = re.compile(r"^config\.resumed-(\d+)\.py$")


def _config_value(node: ast.AST):
    """A config expression as nested dicts / lists of literals, read without running it
    (``dict(a=1)`` and ``{'a': 1}`` become dicts; anything else its source text)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
        and all(kw.arg for kw in node.keywords)
    ):
        return {kw.arg: _config_value(kw.value) for kw in node.keywords}
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
        return {k.value: _config_value(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_config_value(e) for e in node.elts]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return ast.unparse(node)


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        for index, item in enumerate(value):
            _flatten(f"{prefix}.{index}", item, out)
    else:
        out[prefix] = value


def _config_leaves(text: str) -> dict:
    tree = ast.parse(text)
    leaves: dict = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            _flatten(stmt.targets[0].id, _config_value(stmt.value), leaves)
    return leaves


def config_differences(old_text: str, new_text: str) -> list[str]:
    """The dotted keys (``optimizer.type``, ``model.backbone.depth``) whose values differ
    between two config texts (read with ``ast``, never executed), in the new text's order;
    ``line N`` entries when a text does not parse."""
    try:
        old, new = _config_leaves(old_text), _config_leaves(new_text)
    except (SyntaxError, ValueError, RecursionError):
        old_lines, new_lines = old_text.splitlines(), new_text.splitlines()
        return [
            f"line {i + 1}"
            for i in range(max(len(old_lines), len(new_lines)))
            if (old_lines[i : i + 1] or [None]) != (new_lines[i : i + 1] or [None])
        ]
    changed = [k for k in new if k not in old or old[k] != new[k]]
    return changed + [k for k in old if k not in new]


def _newest_saved_config(work_dir: str) -> str | None:
    """``config.resumed-<N>.py`` with the largest N, else ``config.py``, else ``None``."""
    resumed = [(int(m.group(1)), name) for name in os.listdir(work_dir) for m in [_RESUMED_CONFIG_RE.match(name)] if m]
    if resumed:
        return os.path.join(work_dir, max(resumed)[1])
    path = os.path.join(work_dir, "config.py")
    return path if os.path.isfile(path) else None


def save_run_info(
    work_dir: str, config_text: str | None, device: torch.device, world_size: int, resumed_iter: int | None = None
) -> None:
    """``config.py`` (the full config text) and ``env.json`` (versions, device) in the work dir.

    A resumed run (``resumed_iter`` set) keeps the ``config.py`` of the first run: when its
    config differs from the one last saved, it is written to ``config.resumed-<iter>.py`` with
    a warning that counts the differing keys and names the first few."""
    if config_text:
        previous = _newest_saved_config(work_dir) if resumed_iter is not None else None
        if previous is None:
            atomic_write_text(config_text, os.path.join(work_dir, "config.py"))
        else:
            with open(previous, encoding="utf-8") as fh:
                previous_text = fh.read()
            if previous_text != config_text:
                path = os.path.join(work_dir, f"config.resumed-{int(resumed_iter)}.py")
                atomic_write_text(config_text, path)
                keys = config_differences(previous_text, config_text)
                shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
                logging.getLogger(LOGGER_NAME).warning(
                    "resuming with a changed config: %d key%s differ%s from %s (%s); kept it, saved this "
                    "run's config as %s",
                    len(keys),
                    "" if len(keys) == 1 else "s",
                    "s" if len(keys) == 1 else "",
                    os.path.basename(previous),
                    shown or "formatting only",
                    os.path.basename(path),
                )
    atomic_write_json(environment_info(device, world_size), os.path.join(work_dir, "env.json"))
