from .coco import CocoDataset, ShapesCocoDataset  # noqa: F401
from .concat import ConcatDataset  # noqa: F401
from .voc import VOCDataset  # noqa: F401
from .cifar import CIFAR10  # noqa: F401
from .image_folder import ClsDataset, ImageFolder  # noqa: F401
from .imagenet_loc import ImageNetLocDataset  # noqa: F401
from .shapes import ShapesClsDataset, ShapesLocDataset  # noqa: F401
from .proxy32 import Proxy32Dataset  # noqa: F401
