"""RoI heads: poolers, per-RoI box heads, box predictor, Fast R-CNN RoI heads."""

from .box_heads import FCBoxHead, Res5BoxHead  # noqa: F401
from .box_predictor import BoxPredictor  # noqa: F401
from .poolers import RoIPooler  # noqa: F401
from .roi_heads import StandardRoIHeads  # noqa: F401
from .mask_head import MaskHead  # noqa: F401
from .mask_roi_heads import MaskRoIHeads  # noqa: F401
