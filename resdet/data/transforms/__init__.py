from .det_transforms import (
    DetRandomFlip,
    PhotometricDistortion,
    RasterizeMasks,  # noqa: F401
    ResizeShortestEdge,
)
from .cls_transforms import (
    CenterCrop,
    PCALighting,
    RandomCrop,
    RandomHorizontalFlip,  # noqa: F401
    Resize,
)
from .det_crop import DetRandomCrop  # noqa: F401
from .box_crop import BoxRandomCrop  # noqa: F401
