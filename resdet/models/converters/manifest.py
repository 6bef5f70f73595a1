"""The public weights resdet knows by name (``torchvision://NAME``): torchvision's files on
download.pytorch.org that load into a shipped config.

Each entry names the file (its name carries the first hex digits of its SHA-256 after the last
``-``, the convention ``torch.hub`` checks), the converter architecture that turns it into
resdet names (``torchvision_cls`` / ``torchvision_det`` / ``torchvision_mask``), the shipped
config (or short model name) the converted weights load into (the classifiers: the short names
``resnetN`` / ``vgg16``, per-channel ImageNet mean / std and projection shortcuts as torchvision;
the paper's ``configs/resnetN_imagenet.py`` subtract a per-pixel mean image and ResNet-18/34 use
identity shortcuts, so torchvision's weights do not fit them), and, for detectors, the class
names of resdet's labels. File sizes are torchvision's published ``_file_size`` (MB).

Left out on purpose: torchvision's ``*_v2`` detectors (``fasterrcnn_resnet50_fpn_v2``,
``maskrcnn_resnet50_fpn_v2``): their trunk uses trainable BatchNorm, their FPN, RPN head
(two convolutions) and box head (four convolutions + one FC, GroupNorm) have no resdet config
or converter, so no shipped config fits them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_BASE_URL = "https://download.pytorch.org/models/"
SCHEME = "torchvision://"
# torch.hub's rule: the hex digits after the last '-' of the file name start its SHA-256
HASH_PREFIX_RE = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z0-9]+$")

# resdet's labels 0..79 of torchvision's 91-slot COCO heads (torchvision_det.COCO_CATEGORY_IDS
# order, the contiguous labels CocoDataset gives instances_*2017.json); background dropped.
COCO_CLASSES = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)


@dataclass(frozen=True)
class WeightsEntry:
    """One downloadable file.

    name: what follows ``torchvision://``; aliases: other names for it (torchvision's builder).
    file: the file name on the server and in the cache (``NAME-<sha256 prefix>.pth``).
    arch: the torchvision converter architecture (``CONVERTERS['torchvision'][arch]``).
    config: the shipped config (or short model name) whose model the weights load into.
    classes: resdet's label names (detectors), ``None`` for ImageNet classifiers.
    size_mb: the published file size; description: one line for ``resdet weights --list``.
    sha256: the full digest when known; otherwise the file name's prefix is checked.
    """

    name: str
    file: str
    arch: str
    config: str
    size_mb: float
    description: str
    classes: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()
    sha256: str | None = None

    @property
    def hash_prefix(self) -> str:
        """The digest (or its prefix) the downloaded file's SHA-256 must start with."""
        if self.sha256:
            return self.sha256.lower()
        match = HASH_PREFIX_RE.search(self.file)
        if match is None:
            raise ValueError(
                f"weights entry {self.name!r}: file {self.file!r} has no '-<hex>.' hash "
                "prefix in its name and no sha256"
            )
        return match.group(1)


def _classifier(depth: int, file: str, size_mb: float) -> WeightsEntry:
    return WeightsEntry(
        name=f"resnet{depth}",
        file=file,
        arch=f"resnet{depth}",
        config=f"resnet{depth}",
        size_mb=size_mb,
        description=f"ImageNet ResNet-{depth} (torchvision IMAGENET1K_V1)",
    )


MANIFEST: dict[str, WeightsEntry] = {}


def register_weights(entry: WeightsEntry) -> WeightsEntry:
    """Add (or replace) an entry; its aliases resolve to it too."""
    entry.hash_prefix  # noqa: B018  (a file name without a hash is refused now, not at download)
    MANIFEST[entry.name] = entry
    return entry


for _entry in (
    WeightsEntry(
        name="fasterrcnn_resnet50_fpn_coco",
        file="fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
        arch="fasterrcnn_resnet50_fpn",
        config="frcnn_r50_fpn_tv",
        size_mb=159.743,
        description="COCO Faster R-CNN R50-FPN (torchvision COCO_V1, box AP 37.0)",
        classes=COCO_CLASSES,
        aliases=("fasterrcnn_resnet50_fpn",),
    ),
    WeightsEntry(
        name="maskrcnn_resnet50_fpn_coco",
        file="maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
        arch="maskrcnn_resnet50_fpn",
        config="maskrcnn_r50_fpn_tv",
        size_mb=169.84,
        description="COCO Mask R-CNN R50-FPN (torchvision COCO_V1, box AP 37.9, mask AP 34.6)",
        classes=COCO_CLASSES,
        aliases=("maskrcnn_resnet50_fpn",),
    ),
    _classifier(18, "resnet18-f37072fd.pth", 44.661),
    _classifier(34, "resnet34-b627a593.pth", 83.275),
    _classifier(50, "resnet50-0676ba61.pth", 97.781),
    _classifier(101, "resnet101-63fe2227.pth", 170.511),
    _classifier(152, "resnet152-394f9c45.pth", 230.434),
    WeightsEntry(
        name="vgg16",
        file="vgg16-397923af.pth",
        arch="vgg16",
        config="vgg16",
        size_mb=527.796,
        description="ImageNet VGG-16 (torchvision IMAGENET1K_V1)",
    ),
):
    register_weights(_entry)


def lookup(name: str) -> WeightsEntry:
    """The entry of ``name`` (with or without ``torchvision://``; an alias works too)."""
    key = name[len(SCHEME) :] if name.startswith(SCHEME) else name
    if key in MANIFEST:
        return MANIFEST[key]
    for entry in MANIFEST.values():
        if key in entry.aliases:
            return entry
    raise KeyError(key)
