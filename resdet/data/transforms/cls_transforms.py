"""Classification transforms of the paper's recipes (Sec. 3.4 and 4.2).

ImageNet: ``ResizeShortestEdge(short_edge_length=(256, 480), sample_mode='range',
max_size=None)`` (scale augmentation, from ``det_transforms``), ``RandomCrop(224)``,
``RandomHorizontalFlip()``, ``PCALighting(std=0.1)``; CIFAR: ``RandomCrop(32, padding=4)``
and ``RandomHorizontalFlip()``. Per-pixel mean subtraction happens in the model's
preprocessor (``ImageClassifier(mean=3 x H x W)``), on the device.

Each transform takes and returns the sample dict (``img`` H x W x 3 uint8 RGB) and keeps
``img_shape`` (h, w) and ``flip`` up to date. Randomness comes from numpy's global
generator, which the loader seeds per sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...registry import TRANSFORMS

# AlexNet's PCA of ImageNet RGB pixels (values in 0..1 units, as published with
# fb.resnet.torch); columns of IMAGENET_EIGVEC are the eigenvectors, rows are R, G, B.
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))


def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    """``size`` as ``(h, w)``; an int means a square."""
    if isinstance(size, (int, np.integer)):
        pair = (int(size), int(size))
    else:
        pair = tuple(int(s) for s in size)
    if len(pair) != 2 or min(pair) <= 0:
        raise ValueError(f"{name} must be a positive int or (h, w), got {size!r}")
    return pair  # type: ignore[return-value]


def _set_shape(sample: dict) -> dict:
    sample["img_shape"] = tuple(sample["img"].shape[:2])
    sample.setdefault("flip", False)
    return sample


def _take_window(sample: dict, img: np.ndarray, x0: int, y0: int, ch: int, cw: int) -> dict:
    """``sample`` with the ``ch x cw`` window of ``img`` at ``(x0, y0)`` and its ``crop`` box."""
    sample["img"] = np.ascontiguousarray(img[y0 : y0 + ch, x0 : x0 + cw])
    sample["crop"] = (x0, y0, x0 + cw, y0 + ch)
    return _set_shape(sample)


@TRANSFORMS.register_module()
class RandomCrop:
    """A random ``size`` crop, after optional zero padding of ``padding`` pixels per side
    (CIFAR: ``RandomCrop(32, padding=4)``). An image smaller than the crop is padded
    (bottom/right) with ``pad_value`` first. Records the crop box as ``crop`` (x0, y0, x1, y1)
    in the padded image."""

    def __init__(self, size: int | Sequence[int] = 224, padding: int = 0, pad_value: int = 0) -> None:
        self.size = _pair(size, "size")
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding, self.pad_value = int(padding), int(pad_value)

    def __call__(self, sample: dict) -> dict:
        img = sample["img"]
        if self.padding:
            p = self.padding
            img = np.pad(img, ((p, p), (p, p), (0, 0)), constant_values=self.pad_value)
        ch, cw = self.size
        h, w = img.shape[:2]
        if h < ch or w < cw:
            img = np.pad(img, ((0, max(ch - h, 0)), (0, max(cw - w, 0)), (0, 0)), constant_values=self.pad_value)
            h, w = img.shape[:2]
        return _take_window(
            sample, img, int(np.random.randint(0, w - cw + 1)), int(np.random.randint(0, h - ch + 1)), ch, cw
        )

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


@TRANSFORMS.register_module()
class CenterCrop:
    """The central ``size`` crop (images smaller than the crop are zero-padded around)."""

    def __init__(self, size: int | Sequence[int] = 224) -> None:
        self.size = _pair(size, "size")

    def __call__(self, sample: dict) -> dict:
        img = sample["img"]
        ch, cw = self.size
        h, w = img.shape[:2]
        if h < ch or w < cw:
            ph, pw = max(ch - h, 0), max(cw - w, 0)
            img = np.pad(img, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
            h, w = img.shape[:2]
        return _take_window(sample, img, (w - cw) // 2, (h - ch) // 2, ch, cw)

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


@TRANSFORMS.register_module()
class RandomHorizontalFlip:
    """Mirror the image left-right with probability ``prob`` (toggles ``flip``)."""

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob!r}")
        self.prob = float(prob)

    def __call__(self, sample: dict) -> dict:
        _set_shape(sample)
        if self.prob < 1.0 and np.random.rand() >= self.prob:
            return sample
        sample["img"] = np.ascontiguousarray(sample["img"][:, ::-1])
        sample["flip"] = not sample["flip"]
        return sample

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(prob={self.prob})"


@TRANSFORMS.register_module()
class PCALighting:
    """AlexNet colour augmentation: add ``eigvec @ (alpha * eigval)`` to every pixel, with
    ``alpha ~ N(0, std)`` drawn per image and per principal component.

    Args:
        std: standard deviation of ``alpha`` (0.1 in AlexNet and the paper).
        eigval: the 3 eigenvalues of the RGB covariance (0..1 pixel units).
        eigvec: ``3 x 3``, column ``j`` the eigenvector of ``eigval[j]`` (rows R, G, B).

    The offset is scaled to 0..255 and the image is rounded and clipped back to uint8.
    The drawn offset is recorded as ``lighting`` (3 floats, 0..255 units).
    """

    def __init__(
        self,
        std: float = 0.1,
        eigval: Sequence[float] = IMAGENET_EIGVAL,
        eigvec: Sequence[Sequence[float]] = IMAGENET_EIGVEC,
    ) -> None:
        if std < 0:
            raise ValueError(f"std must be >= 0, got {std}")
        self.std = float(std)
        self.eigval = np.asarray(eigval, dtype=np.float64).reshape(3)
        self.eigvec = np.asarray(eigvec, dtype=np.float64).reshape(3, 3)

    def offset(self, alpha: np.ndarray) -> np.ndarray:
        """RGB offset (0..255 units) for the component weights ``alpha`` (3,)."""
        return self.eigvec @ (np.asarray(alpha, dtype=np.float64) * self.eigval) * 255.0

    def __call__(self, sample: dict) -> dict:
        if self.std == 0:
            return sample
        rgb = self.offset(np.random.normal(0.0, self.std, size=3))
        img = sample["img"].astype(np.float32) + rgb.astype(np.float32)
        sample["img"] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        sample["lighting"] = tuple(float(v) for v in rgb)
        return sample

    def __repr__(self) -> str:
        return f"PCALighting(std={self.std})"


@TRANSFORMS.register_module()
class Resize:
    """Resize to exactly ``size`` (h, w), ignoring the aspect ratio (e.g. the low-resolution
    synthetic default); records ``scale_factor`` (w_scale, h_scale)."""

    def __init__(self, size: int | Sequence[int] = 224, interpolation: str = "bilinear") -> None:
        import cv2

        interps = {
            "nearest": cv2.INTER_NEAREST,
            "bilinear": cv2.INTER_LINEAR,
            "bicubic": cv2.INTER_CUBIC,
            "area": cv2.INTER_AREA,
        }
        if interpolation not in interps:
            raise ValueError(f"interpolation must be one of {', '.join(interps)}, got {interpolation!r}")
        self.size = _pair(size, "size")
        self.interpolation = interps[interpolation]

    def __call__(self, sample: dict) -> dict:
        import cv2

        img = sample["img"]
        h, w = img.shape[:2]
        th, tw = self.size
        if (h, w) != (th, tw):
            sample["img"] = cv2.resize(img, (tw, th), interpolation=self.interpolation)
        sx, sy = sample.get("scale_factor", (1.0, 1.0))
        sample["scale_factor"] = (float(sx * tw / w), float(sy * th / h))
        return _set_shape(sample)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"
