"""Is an existing pretraining checkpoint the one the detector's config asks for?

A detector config with ``pretrain = dict(config, checkpoint, cfg_options)`` runs that
classification stage when its checkpoint is missing (``ensure_pretrained``). A checkpoint that
exists was reused without a word before, so a short ``--pretrain-cfg-options
train_cfg.max_iters=20`` run left a weak backbone that every later run fine-tuned from. Every
resdet checkpoint records the config it was trained with (``meta['config']``, the merged
config as Python text of literals and ``dict(...)`` calls); it is read back here with the
literal-only parser of ``--cfg-options`` (no code runs) and compared with the stage's config
as it would run now, leaving out what cannot change the weights (logging, validation and
checkpoint intervals, loader workers, the validation set, the work dir).

``check_pretrained`` then reuses a matching checkpoint with a log line, and moves a
different one aside (``final.pth`` -> ``final.stale.pth``) so that the stage trains again,
saying why; ``reuse=True`` (``train-det --reuse-pretrained``) keeps it whatever it was trained
with.
"""

from __future__ import annotations

import ast
import logging
import os
from typing import Any

from ..utils.config import _safe_value, load_config
from ..utils.dist import barrier, is_main_process
from ..utils.io import CheckpointError, safe_load

# keys that do not change the trained weights: a difference in them does not make the
# checkpoint stale (dotted paths; a top-level name drops the whole section)
IGNORED_KEYS = (
    "work_dir",
    "val_dataloader",
    "val_evaluator",
    "test_dataloader",
    "test_evaluator",
    "val_pipeline",
    "test_pipeline",
    "demo",
    "train_cfg.log_interval",
    "train_cfg.val_interval",
    "train_cfg.checkpoint_interval",
    "train_cfg.keep_last",
    "train_cfg.save_best",
    "train_cfg.rule",
    "train_cfg.tensorboard",
    "train_cfg.threads",
    "train_cfg.compile",
    "train_dataloader.num_workers",
    "train_dataloader.persistent_workers",
    "train_dataloader.pin_memory",
    "train_dataloader.prefetch_factor",
)


def config_values(text: str) -> dict[str, Any] | None:
    """The top-level assignments of a merged config text (``Config.pretty_text``) as plain
    values, or ``None`` when the text holds anything but literals and ``dict(...)`` calls."""
    try:
        tree = ast.parse(text)
        values = {}
        for node in tree.body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                return None
            values[node.targets[0].id] = _safe_value(node.value)
        return values
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        return None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: list(value) if isinstance(value, tuple) else value}


def _ignored(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in IGNORED_KEYS)


def config_differences(recorded: dict, wanted: dict, limit: int = 3) -> list[str]:
    """``KEY: RECORDED -> WANTED`` for the weight-relevant keys that differ (at most ``limit``,
    then a count)."""
    old, new = _flatten(recorded), _flatten(wanted)
    keys = sorted(k for k in set(old) | set(new) if not _ignored(k) and old.get(k, "<unset>") != new.get(k, "<unset>"))
    lines = [f"{k}: {old.get(k, '<unset>')!r} -> {new.get(k, '<unset>')!r}" for k in keys[:limit]]
    if len(keys) > limit:
        lines.append(f"{len(keys) - limit} more")
    return lines


def _text(cfg: Any) -> str:
    try:  # what Trainer.from_config records in meta['config']
        return cfg.pretty_text
    except Exception:  # yapf cannot format some configs; the trainer keeps the raw text then
        return getattr(cfg, "text", "") or ""


def pretrained_differences(pretrain: dict, checkpoint: str) -> list[str] | None:
    """How the config recorded in ``checkpoint`` differs from the stage's config now (``[]``:
    the same); ``None`` when the checkpoint records no readable config."""
    meta = safe_load(checkpoint, verify=False).get("meta") or {}
    recorded_text = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(recorded_text, str) or not recorded_text.strip():
        return None
    wanted_text = _text(load_config(pretrain["config"], dict(pretrain.get("cfg_options") or {}) or None))
    recorded, wanted = config_values(recorded_text), config_values(wanted_text)
    if recorded is None or wanted is None:  # not literal Python: compare the texts
        return [] if recorded_text == wanted_text else ["the recorded config text differs"]
    return config_differences(recorded, wanted)


def stale_path(checkpoint: str) -> str:
    stem, ext = os.path.splitext(checkpoint)
    return f"{stem}.stale{ext}"


def check_pretrained(cfg: Any, reuse: bool = False) -> str | None:
    """Before ``ensure_pretrained``: reuse the stage's existing checkpoint when it was trained
    with the stage's config (or ``reuse``), else move it to ``stale_path`` so that the stage
    runs again. Returns what was decided, as the line printed (``None``: nothing to decide)."""
    pretrain = cfg.get("pretrain")
    if not pretrain or not os.path.isfile(pretrain["checkpoint"]):
        return None
    checkpoint = pretrain["checkpoint"]
    try:
        differences = pretrained_differences(pretrain, checkpoint)
    except CheckpointError:  # unreadable: the loading step names the problem
        return None
    if differences is None:
        line = f"pretraining stage: reusing {checkpoint} (it records no config to compare with {pretrain['config']})"
    elif not differences:
        line = f"pretraining stage: reusing {checkpoint}, trained with the same config ({pretrain['config']})"
    elif reuse:
        line = (
            f"pretraining stage: reusing {checkpoint} as asked (--reuse-pretrained), although it was "
            f"trained with another config ({'; '.join(differences)})"
        )
    else:
        stale = stale_path(checkpoint)
        barrier()  # every rank has read the checkpoint before it moves
        if is_main_process():
            os.replace(checkpoint, stale)
        barrier()
        line = (
            f"pretraining stage: {checkpoint} was trained with another config than {pretrain['config']} "
            f"now ({'; '.join(differences)}): training it again (the old file is kept as {stale}; "
            f"--reuse-pretrained uses the existing checkpoint as it is)"
        )
    logging.getLogger("resdet").info(line)
    print(line, flush=True)
    return line
