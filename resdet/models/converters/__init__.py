"""Weight loading (``loading.py``: ``load_weights``, ``convert_checkpoint``, the converter
registry), the foreign formats it understands, one module per source, and weights by name
(``hub.py`` + ``manifest.py``: ``torchvision://NAME`` downloaded, verified, converted, cached)."""

from .hub import (
    DownloadError,
    cache_dir,
    cached_path,
    converted_path,
    get_entry,  # noqa: F401
    is_weights_name,
    resolve_checkpoint,
    resolve_weights,
)
from .manifest import MANIFEST, WeightsEntry, register_weights  # noqa: F401
from .loading import (
    CONVERTERS,
    IDENTIFIERS,
    Converter,
    checkpoint_layout,
    convert_checkpoint,  # noqa: F401
    extract_state_dict,
    get_converter,
    identify_checkpoint,
    load_weights,
    register_converter,
    register_identifier,
)
from . import torchvision_cls  # noqa: F401,E402  (registers the torchvision classifiers)
from . import torchvision_det  # noqa: F401,E402  (registers torchvision's Faster R-CNN)
from . import torchvision_mask  # noqa: F401,E402  (registers torchvision's Mask R-CNN)
