"""Training checkpoints: save, find the newest readable one, load one to resume. (Weights
alone, for fine-tuning or inference, load through ``resdet.models.converters.load_weights``.)

A checkpoint is ``{'model', 'optimizer', 'scheduler', 'scaler', 'iter', 'rng', 'meta'}`` of
tensors and plain Python types only (``torch.load(weights_only=True)`` reads it), written
with ``atomic_save`` (temporary file + fsync + rename: a kill during a write never damages
the previous checkpoint). ``rng`` holds the RNG states of every rank (torch, CUDA, numpy,
python) as tensors and lists, so ``--resume`` continues bit-exactly.

Files in the work dir: ``iter_<N>.pth`` (the last ``keep_last`` kept), ``best.pth``,
``final.pth`` and ``last_checkpoint`` (a text file naming the newest checkpoint).

Every checkpoint records ``meta['checksum']`` (the sha256 of its content, see
``resdet.utils.io``); ``find_latest_valid`` skips a damaged one (content no longer matching
it) like a truncated one and says which checkpoint it resumes from instead. ``meta['optimizer']``
records the optimizer class, so ``check_resume_fits`` can tell a resume under a changed config
(another model, another optimizer) from a damaged file.
"""

from __future__ import annotations

import glob
import logging
import os
import random
import re
import warnings

import numpy as np
import torch

from ..models.converters.loading import describe_mismatch, state_dict_mismatch
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
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss_next": py_state[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_seed(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
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
    iters = sorted(
        glob.glob(os.path.join(work_dir, "iter_*.pth")), key=lambda p: checkpoint_iter(p) or -1, reverse=True
    )
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
        raise CheckpointError(
            f"checkpoint {path} is not a resdet training checkpoint (needs keys {', '.join(REQUIRED_KEYS)}; has {keys})"
        )
    return ckpt


def find_latest_valid(work_dir: str) -> tuple[str | None, dict | None]:
    """The newest checkpoint in ``work_dir`` that loads and passes its checksum, and its contents.

    Unusable ones (truncated, damaged, not a checkpoint) are reported with a warning (and a
    log line) that names each refused file and the one used instead. ``(None, None)`` when
    there is none; ``CheckpointError`` when there are checkpoints but none is usable.
    """
    refused: list[tuple[str, str]] = []
    for path in candidate_checkpoints(work_dir):
        try:
            ckpt = load_training_checkpoint(path)
        except CheckpointError as err:
            refused.append((path, str(err)))
            logger.warning("refusing to resume from %s: %s; trying the previous checkpoint", path, err)
            continue
        if refused:
            names = ", ".join(os.path.basename(p) for p, _ in refused)
            logger.warning("resuming from %s instead of %s (refused above)", path, names)
            warnings.warn(
                f"resuming from {path} instead of {names} (refused: " + "; ".join(e for _, e in refused) + ")",
                UserWarning,
                stacklevel=2,
            )
        return path, ckpt
    if refused:
        raise CheckpointError(
            f"no usable checkpoint in {work_dir}: "
            + "; ".join(e for _, e in refused)
            + "; start again in a new work dir, or resume from a copy of a good checkpoint"
        )
    return None, None


def _optimizer_difference(ckpt: dict, optimizer: torch.optim.Optimizer) -> str | None:
    """How the checkpoint's optimizer differs from the config's, or ``None`` when it fits."""
    current = type(optimizer).__name__
    saved_name = (ckpt.get("meta") or {}).get("optimizer")
    if isinstance(saved_name, str):
        return (
            None if saved_name == current else f"the checkpoint's optimizer is {saved_name}, the config's is {current}"
        )
    # a checkpoint without meta['optimizer']: compare the hyperparameters of the first param group
    # (another torch version only ever adds keys; another optimizer also lacks some of the config's)
    groups = (ckpt.get("optimizer") or {}).get("param_groups") or []
    if not groups or not optimizer.param_groups:
        return None
    saved_keys = set(groups[0]) - {"params", "initial_lr"}
    current_keys = set(optimizer.param_groups[0]) - {"params", "initial_lr"}
    if saved_keys - current_keys and current_keys - saved_keys:
        return (
            f"the checkpoint's optimizer has hyperparameters {', '.join(sorted(saved_keys - current_keys))}, "
            f"not the config's {current} ({', '.join(sorted(current_keys - saved_keys))})"
        )
    return None


def mismatch_error(path: str, what: str) -> CheckpointError:
    """The error of a resume whose checkpoint does not fit the config, with the two ways out."""
    return CheckpointError(
        f"checkpoint {path} does not match the config: {what}. --resume only continues the same run; "
        f"to train with the changed config use a new work dir (--work-dir), or set load_from='{path}' "
        "to start from its weights only (load_strict=False skips the weights that do not fit)"
    )


def check_resume_fits(path: str, ckpt: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Raise ``CheckpointError`` (naming ``path``, what differs and the ways out) when the
    checkpoint was written for another model or optimizer than the config builds."""
    state = ckpt.get("model")
    if not isinstance(state, dict):
        raise mismatch_error(path, f"its 'model' entry is a {type(state).__name__}, not a state_dict")
    missing, unexpected, mismatched = state_dict_mismatch(model.state_dict(), state)
    if missing or unexpected or mismatched:
        raise mismatch_error(path, f"the model's weights differ: {describe_mismatch(missing, unexpected, mismatched)}")
    difference = _optimizer_difference(ckpt, optimizer)
    if difference:
        raise mismatch_error(path, difference)


def save_checkpoint(
    path: str, ckpt: dict, work_dir: str, keep_last: int | None = None, update_pointer: bool = True
) -> None:
    """Write ``ckpt`` atomically, point ``last_checkpoint`` at it, prune old ``iter_*.pth``."""
    atomic_save(ckpt, path)
    if update_pointer:
        atomic_write_text(os.path.basename(path) + "\n", os.path.join(work_dir, LAST_CHECKPOINT))
    if keep_last is not None and keep_last > 0:
        iters = sorted(
            glob.glob(os.path.join(work_dir, "iter_*.pth")), key=lambda p: checkpoint_iter(p) or -1, reverse=True
        )
        for old in iters[keep_last:]:
            try:
                os.remove(old)
            except OSError as err:
                logger.warning("could not remove old checkpoint %s: %s", old, err)


# ---------------------------------------------------------------- weights for fine-tuning
