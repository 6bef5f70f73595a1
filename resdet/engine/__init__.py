"""Training engine: the iteration-based ``Trainer`` (CPU / GPU / DDP), hooks, checkpoints,
schedules, and ``run_inference`` (shared by validation and ``resdet eval``)."""

from .inference import run_inference
from .optim import build_optimizer
from .schedules import LRScheduler
from .signals import EXIT_PREEMPTED, TrainingPreempted
from .train_config import TrainConfig
from .trainer import NonFiniteLossError, Trainer

__all__ = [
    "Trainer",
    "TrainConfig",
    "NonFiniteLossError",
    "TrainingPreempted",
    "EXIT_PREEMPTED",
    "run_inference",
    "build_optimizer",
    "LRScheduler",
]
