"""Image classifiers (backbone + head), the ImageNet/CIFAR pretraining stage."""

from .image_classifier import (
    ClsPreprocessor,
    ImageClassifier,
    LinearClsHead,  # noqa: F401
    VGGClsHead,
)
from .tta import (
    EnsembleClassifier,
    MultiScaleClassifier,
    TenCropClassifier,  # noqa: F401
    apply_test_mode,
    build_tta,
)
