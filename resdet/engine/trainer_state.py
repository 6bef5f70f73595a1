"""A trainer's state in and out of a checkpoint: which checkpoint a ``resume`` setting names
(``find_resume``), the checkpoint dict of a running trainer (``training_state``) and its
restore (``restore_training_state``: model, optimizer, schedule, grad scaler, counters and
every rank's RNG state, so a resumed run continues bit-exactly)."""

from __future__ import annotations

import logging
import time
from typing import Any

from .. import __version__
from ..utils import dist
from .checkpoint import (
    check_resume_fits,
    find_latest_valid,
    get_rng_state,
    load_training_checkpoint,
    mismatch_error,
    set_rng_state,
    set_seed,
)
from .inference import unwrap_model
from .signals import restart_count


def find_resume(work_dir: str, resume: Any, logger: logging.Logger) -> tuple[str | None, dict | None]:
    """The checkpoint a ``resume`` setting points to: ``(path, checkpoint)`` or ``(None, None)``;
    after torchrun restarted the group (on any rank: agents count restarts apart) the newest."""
    restarted = max(dist.all_gather_object(restart_count())) > 0
    if restarted or resume is True or resume == "auto":  # rank 0 picks: all ranks load one file
        path, ckpt = find_latest_valid(work_dir) if dist.get_rank() == 0 else (None, None)
        path = dist.broadcast_object(path)
        if path is not None or not restarted or resume in (None, False, True, "auto"):
            logger.info(
                "%s: %s",
                "elastic restart" if restarted else "resume",
                f"resuming from {path}" if path else f"no checkpoint in {work_dir}; starting from scratch",
            )
            return path, (ckpt if ckpt is not None or path is None else load_training_checkpoint(path))
    if resume in (None, False):
        return None, None
    return str(resume), load_training_checkpoint(str(resume))


def restore_training_state(trainer, path: str, ckpt: dict) -> None:
    """Load ``ckpt`` (read from ``path``) into ``trainer``: a checkpoint of another config is a
    ``CheckpointError`` naming what differs."""
    model = unwrap_model(trainer.model)
    check_resume_fits(path, ckpt, model, trainer.optimizer)  # a changed config: say so, by name
    model.load_state_dict(ckpt["model"])
    parts = [
        ("optimizer", trainer.optimizer, ckpt["optimizer"]),
        ("param_scheduler", trainer.scheduler, ckpt.get("scheduler")),
        ("scaler (amp)", trainer.scaler, ckpt.get("scaler")),
    ]
    for what, target, state in parts:
        if not state and what != "optimizer":
            continue
        try:
            target.load_state_dict(state)
        except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as err:
            raise mismatch_error(
                path,
                f"its {what} state does not fit the config's "
                f"({str(err).splitlines()[0] if str(err) else type(err).__name__})",
            ) from err
    trainer.iter = int(ckpt["iter"])
    meta = ckpt.get("meta", {})
    trainer.best_score, trainer.best_iter = meta.get("best_score"), meta.get("best_iter")
    trainer.val_pending = bool(meta.get("val_pending", False))
    trainer.skipped_before = int(meta.get("num_skipped", 0))
    rng = ckpt.get("rng") or {}
    states = rng.get("ranks", [])
    if len(states) == trainer.world_size:
        set_rng_state(states[trainer.rank])
    else:
        trainer.logger.warning(
            "checkpoint RNG states are for %d ranks, running %d: reseeding (the run "
            "continues but is not bit-identical to an uninterrupted one)",
            len(states),
            trainer.world_size,
        )
        set_seed(trainer.seed + 1000003 * trainer.iter + trainer.rank)
    trainer.last_checkpoint = path
    trainer.logger.info("resumed from %s at iteration %d", path, trainer.iter)


def training_state(trainer, val_pending: bool = False) -> dict:
    """The checkpoint dict of ``trainer`` (all ranks must call: RNG states are gathered).
    ``val_pending``: written just before this iteration's validation (a resume validates first)."""
    rng_states = dist.all_gather_object(get_rng_state())
    skipped = trainer.total_skipped()
    return {
        "model": unwrap_model(trainer.model).state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "iter": int(trainer.iter),
        "rng": {"ranks": rng_states},
        "meta": {
            "config": trainer.config_text or "",
            "resdet_version": __version__,
            "optimizer": type(trainer.optimizer).__name__,
            "classes": list(trainer.classes) if trainer.classes else None,
            "epoch": trainer.epoch,
            "world_size": trainer.world_size,
            "best_score": trainer.best_score,
            "best_iter": trainer.best_iter,
            "num_skipped": skipped,
            "time": time.time(),
            "val_pending": bool(val_pending),
        },
    }
