"""Training checkpoints: save, find the newest readable one, load one to resume. (Weights
alone, for fine-tuning or inference, load through ``resdet.models.converters.load_weights``.)

A checkpoint is ``{'model', 'optimizer', 'scheduler', 'scaler', 'iter', 'rng', 'meta'}`` of
tensors and plain Python types only (``torch.load(weights_only=True)`` reads it), written
with ``atomic_save`` (temporary file + fsync + rename: a kill during a write never damages
the previous checkpoint). ``rng`` holds the RNG states of every rank (torch, CUDA, numpy,
python) as tensors and lists, so ``--resume`` continues bit-exactly.

Files in the work dir: ``iter_<N>.pth`` (the last ``keep_last`` kept), ``best.pth``,
``final.pth`` and ``last_checkpoint`` (a text file naming the newest checkpoint).
"""
from __future__ import annotations

import glob
import logging
import os
import random
import re

import numpy as np
import torch

from ..utils.io import CheckpointError, atomic_save, atomic_write_text, safe_load

logger = logging.getLogger("resdet")
REQUIRED_KEYS = ("model", "optimizer", "iter")
LAST_CHECKPOINT = "last_checkpoint"
_ITER_RE = re.compile(r"iter_(\d+)\.pth$")


# ---------------------------------------------------------------- RNG state as plain types
def get_rng_state() -> dict:
    """RNG states of this process as tensors / lists (weights_only-loadable)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss_next": py_state[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


# ---------------------------------------------------------------- files in the work dir
def checkpoint_iter(path: str) -> int | None:
    match = _ITER_RE.search(os.path.basename(path))
    return int(match.group(1)) if match else None


def candidate_checkpoints(work_dir: str) -> list[str]:
    """Checkpoints of ``work_dir``, newest first: the one named by ``last_checkpoint``, then
    ``final.pth`` and ``iter_<N>.pth`` by decreasing N."""
    candidates: list[str] = []
    pointer = os.path.join(work_dir, LAST_CHECKPOINT)
    if os.path.isfile(pointer):
        with open(pointer, encoding="utf-8") as fh:
            name = fh.read().strip()
        if name:
            candidates.append(name if os.path.isabs(name) else os.path.join(work_dir, name))
    final = os.path.join(work_dir, "final.pth")
    if os.path.isfile(final):
        candidates.append(final)
    iters = sorted(glob.glob(os.path.join(work_dir, "iter_*.pth")),
                   key=lambda p: checkpoint_iter(p) or -1, reverse=True)
    candidates.extend(iters)
    seen, ordered = set(), []
    for path in candidates:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            ordered.append(path)
    return ordered


def load_training_checkpoint(path: str) -> dict:
    """``safe_load`` plus a check of the training keys; raises ``CheckpointError``."""
    ckpt = safe_load(path)
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"checkpoint {path} is not a resdet training checkpoint (needs keys "
                              f"{', '.join(REQUIRED_KEYS)}; has {keys})")
    return ckpt


def find_latest_valid(work_dir: str) -> tuple[str | None, dict | None]:
    """The newest checkpoint in ``work_dir`` that loads, and its contents.

    Unreadable ones (truncated, corrupt, not a checkpoint) are reported with a warning that
    names the file and the one used instead. ``(None, None)`` when there is none.
    """
    refused: list[str] = []
    for path in candidate_checkpoints(work_dir):
        try:
            ckpt = load_training_checkpoint(path)
        except CheckpointError as err:
            refused.append(str(err))
            logger.warning("refusing to resume from %s: %s; trying the previous checkpoint", path, err)
            continue
        if refused:
            logger.warning("resuming from %s instead (refused: %s)", path, "; ".join(refused))
        return path, ckpt
    if refused:
        raise CheckpointError(f"no readable checkpoint in {work_dir}: " + "; ".join(refused))
    return None, None


def save_checkpoint(path: str, ckpt: dict, work_dir: str, keep_last: int | None = None,
                    update_pointer: bool = True) -> None:
    """Write ``ckpt`` atomically, point ``last_checkpoint`` at it, prune old ``iter_*.pth``."""
    atomic_save(ckpt, path)
    if update_pointer:
        atomic_write_text(os.path.basename(path) + "\n", os.path.join(work_dir, LAST_CHECKPOINT))
    if keep_last is not None and keep_last > 0:
        iters = sorted(glob.glob(os.path.join(work_dir, "iter_*.pth")),
                       key=lambda p: checkpoint_iter(p) or -1, reverse=True)
        for old in iters[keep_last:]:
            try:
                os.remove(old)
            except OSError as err:
                logger.warning("could not remove old checkpoint %s: %s", old, err)


# ---------------------------------------------------------------- weights for fine-tuning
