"""Training engine: the iteration-based ``Trainer`` (CPU / GPU / DDP), hooks, checkpoints,
schedules, and ``run_inference`` (shared by validation and ``tools/eval.py``).

Exports are resolved lazily so that light modules (``resdet.engine.dist``) can be imported
from anywhere without pulling in the models.
"""
from __future__ import annotations

import importlib

_EXPORTS = {"Trainer": "trainer", "NonFiniteLossError": "trainer", "run_inference": "inference",
            "build_optimizer": "optim", "LRScheduler": "schedules"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
