"""Small helpers for the shapes values arrive in (one item, a sequence, a tensor, ``None``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def as_list(value: Any) -> list:
    """``value`` as a plain list: ``None`` -> ``[]``, a tensor / array -> ``tolist()``, a list
    or tuple -> a list of its items, anything else -> ``[value]``."""
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else [value]


def class_name(label: int, class_names: Sequence[str] | None) -> str:
    """``class_names[label]``, or the label number when it has no name."""
    label = int(label)
    return str(class_names[label]) if class_names is not None and 0 <= label < len(class_names) else str(label)
