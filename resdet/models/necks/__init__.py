"""Necks between backbone and heads."""

from .fpn import FPN  # noqa: F401
