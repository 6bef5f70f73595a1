"""Weight loading (``loading.py``: ``load_weights``, ``convert_checkpoint``, the converter
registry) and the foreign formats it understands, one module per source."""
from .loading import (CONVERTERS, IDENTIFIERS, Converter, checkpoint_layout, convert_checkpoint,  # noqa: F401
                      extract_state_dict, get_converter, identify_checkpoint, load_weights,
                      register_converter, register_identifier)
from . import torchvision_cls  # noqa: F401,E402  (registers the torchvision classifiers)
from . import torchvision_det  # noqa: F401,E402  (registers torchvision's Faster R-CNN)
from . import torchvision_mask  # noqa: F401,E402  (registers torchvision's Mask R-CNN)
