"""Importing this package registers every model component in ``resdet.registry.MODELS``."""

from . import backbones, classifiers, dense_heads, detectors, necks, roi_heads  # noqa: F401
