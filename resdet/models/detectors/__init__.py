"""Detectors: two-stage (Faster R-CNN) and their input preprocessor."""

from .preprocessor import DetPreprocessor  # noqa: F401
from .tta import DetectorTTA  # noqa: F401
from .two_stage import FasterRCNN  # noqa: F401
from .mask_rcnn import MaskRCNN  # noqa: F401
from .fast_inference import (
    compile_cost_s,
    compile_for_inference,
    compile_for_training,  # noqa: F401
    fold_batch_norm,
    has_fast_path,
    is_inference_optimized,
    optimize_for_inference,
    strip_compiled,
)
from .localizer import Localizer  # noqa: F401
