"""A harder synthetic classification set at 32 x 32: the CPU proxy of CIFAR-10 used by
``resdet reproduce`` (the paper's Fig. 6, Fig. 7 and Table 3 directions).

Twenty shape classes, ten of them fine-grained neighbours of the other ten (pentagon and
hexagon, thin ring and ring, T, U and L shapes, ...). Each image is one target shape with
random scale, rotation, aspect jitter and colour (low contrast allowed), over a cluttered
background (colour field, lines and smaller distractor shapes of other classes), partly
occluded by random blobs, then blurred and noised. Small shapes, near-neighbour classes and
heavy clutter make it hard enough that depth matters, unlike
the 99%-easy ``shapes`` set.

A split is stored as one ``images.npz`` (``images`` N x 32 x 32 x 3 uint8 RGB, ``labels``
int64 N); image ``i`` is drawn from its own generator seeded by ``(seed, i)`` so the same
seed gives the same bytes and a larger set starts with the images of a smaller one.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from ...utils.dist import is_main_process
from ...utils.io import atomic_write_bytes
from ...utils.progress import Progress

PROXY32_CLASSES = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "hexagon",
    "arrow",
    "ring",
    "crescent",
    "lshape",
    # the fine-grained half: each is a near neighbour of one above (pentagon / hexagon, thin ring /
    # ring, four- and six-pointed stars / star, T / L / U, ...), so telling them apart takes more
    # than a rough outline
    "pentagon",
    "star4",
    "star6",
    "tshape",
    "ushape",
    "semicircle",
    "trapezoid",
    "chevron",
    "thinring",
    "bars",
)
PROXY32_FILE = "images.npz"
PROXY32_VERSION = 3  # bumped whenever the images change: 3 twenty classes, 2 the first ten only
_SUPERSAMPLE = 4  # shapes are drawn at 4x and area-resized: anti-aliased, sub-pixel accurate
_PRESET_CODE = 32  # mixed into the per-image seed (other generators use other codes)


def _regular(k: int, radius: float = 1.0, phase: float = np.pi / 2) -> np.ndarray:
    t = phase + np.arange(k) * 2 * np.pi / k
    return np.stack([np.cos(t), np.sin(t)], 1) * radius


def _star(points: int, inner: float) -> np.ndarray:
    t = np.pi / 2 + np.arange(2 * points) * np.pi / points
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([np.cos(t) * r, np.sin(t) * r], 1)


def _unit_shapes() -> dict[str, list[tuple[np.ndarray, bool]]]:
    """Each class: a list of ``(K x 2 polygon of outer radius ~1, filled)``; an unfilled
    polygon is cut out of the filled ones before it (holes: ring, crescent)."""
    a, b = 0.32, 0.95
    cross = np.array(
        [[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b], [-a, a], [-b, a], [-b, -a], [-a, -a]]
    )
    arrow = np.array(
        [[-0.95, -0.22], [0.15, -0.22], [0.15, -0.6], [0.95, 0.0], [0.15, 0.6], [0.15, 0.22], [-0.95, 0.22]]
    )
    lshape = np.array([[-0.7, -0.9], [-0.2, -0.9], [-0.2, 0.4], [0.7, 0.4], [0.7, 0.9], [-0.7, 0.9]])
    circle = _regular(48)
    tshape = np.array(
        [
            [-0.9, -0.9],
            [0.9, -0.9],
            [0.9, -0.45],
            [0.22, -0.45],
            [0.22, 0.9],
            [-0.22, 0.9],
            [-0.22, -0.45],
            [-0.9, -0.45],
        ]
    )
    ushape = np.array(
        [[-0.85, -0.9], [-0.4, -0.9], [-0.4, 0.45], [0.4, 0.45], [0.4, -0.9], [0.85, -0.9], [0.85, 0.9], [-0.85, 0.9]]
    )
    half = np.pi * np.arange(25) / 24
    semicircle = np.stack([np.cos(half), np.sin(half) - 0.4], 1) * 1.05
    trapezoid = np.array([[-1.0, 0.55], [1.0, 0.55], [0.45, -0.55], [-0.45, -0.55]])
    chevron = np.array([[-0.9, -0.7], [0.0, 0.15], [0.9, -0.7], [0.9, -0.05], [0.0, 0.8], [-0.9, -0.05]])
    bar = np.array([[-0.9, -0.2], [0.9, -0.2], [0.9, 0.2], [-0.9, 0.2]])
    return {
        "circle": [(circle, True)],
        "square": [(_regular(4, 1.05, np.pi / 4), True)],
        "triangle": [(_regular(3, 1.05), True)],
        "star": [(_star(5, 0.45), True)],
        "cross": [(cross, True)],
        "hexagon": [(_regular(6, 1.0, 0.0), True)],
        "arrow": [(arrow, True)],
        "ring": [(circle, True), (circle * 0.55, False)],
        "crescent": [(circle, True), (circle * 0.85 + np.array([0.45, 0.0]), False)],
        "lshape": [(lshape, True)],
        "pentagon": [(_regular(5), True)],
        "star4": [(_star(4, 0.4), True)],
        "star6": [(_star(6, 0.5), True)],
        "tshape": [(tshape, True)],
        "ushape": [(ushape, True)],
        "semicircle": [(semicircle, True)],
        "trapezoid": [(trapezoid, True)],
        "chevron": [(chevron, True)],
        "thinring": [(circle, True), (circle * 0.75, False)],
        "bars": [(bar + np.array([0.0, -0.45]), True), (bar + np.array([0.0, 0.45]), True)],
    }


_UNIT_SHAPES = _unit_shapes()


def _transform(poly: np.ndarray, cx: float, cy: float, radius: float, angle: float, aspect: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    pts = poly * np.array([aspect, 1.0 / aspect])
    return pts @ np.array([[c, s], [-s, c]]) * radius + np.array([cx, cy])


def shape_mask(
    name: str, size: int, cx: float, cy: float, radius: float, angle: float, aspect: float = 1.0
) -> np.ndarray:
    """Coverage (``size x size`` float32 in [0, 1]) of shape ``name``; coordinates in pixels."""
    big = size * _SUPERSAMPLE
    canvas = np.zeros((big, big), dtype=np.uint8)
    for poly, filled in _UNIT_SHAPES[name]:
        pts = _transform(poly, cx, cy, radius, angle, aspect) * _SUPERSAMPLE
        pts = np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(canvas, [pts], 255 if filled else 0, lineType=cv2.LINE_8, shift=4)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _blend(img: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    img += mask[..., None] * (colour[None, None, :] - img)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.uniform(30, 225, size=3)
    cells = int(rng.integers(2, 7))
    field = rng.normal(0.0, 40.0, size=(cells, cells, 3)).astype(np.float32)
    img = cv2.resize(field, (size, size), interpolation=cv2.INTER_CUBIC) + base.astype(np.float32)
    for _ in range(int(rng.integers(0, 4))):  # clutter: lines
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        p2 = tuple(int(v) for v in rng.integers(0, size, 2))
        colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
        cv2.line(img, p1, p2, colour, thickness=1, lineType=cv2.LINE_AA)
    return img


def _shape_colour(rng: np.random.Generator, ref: np.ndarray) -> np.ndarray:
    """A colour differing from ``ref`` by a random contrast (sometimes low: a hard image)."""
    contrast = rng.uniform(50, 120)
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if np.abs(colour - ref).mean() >= contrast:
            return colour
    return np.where(ref > 127, 15.0, 240.0)


def render_proxy32_image(
    seed: int, index: int, size: int = 32, classes: tuple[str, ...] = PROXY32_CLASSES
) -> tuple[np.ndarray, int]:
    """Image ``index``: ``(size x size x 3 RGB uint8, label)``; labels cycle through the classes."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _PRESET_CODE, int(index)]))
    label = index % len(classes)
    img = _background(rng, size)
    others = [c for c in classes if c != classes[label]]
    for _ in range(int(rng.integers(0, 3))):  # clutter: small distractor shapes of other classes
        r = rng.uniform(0.07, 0.13) * size
        mask = shape_mask(
            str(rng.choice(others)),
            size,
            *rng.uniform(0, size, 2),
            r,
            rng.uniform(0, 2 * np.pi),
            rng.uniform(0.8, 1.25),
        )
        _blend(img, mask, rng.uniform(0, 255, 3))
    radius = rng.uniform(0.28, 0.46) * size  # random scale
    cx, cy = rng.uniform(0.6 * radius, size - 0.6 * radius, 2)  # may be partly cut by the border
    mask = shape_mask(classes[label], size, cx, cy, radius, rng.uniform(0, 2 * np.pi), rng.uniform(0.8, 1.25))
    under = img[mask > 0.5].mean(0) if (mask > 0.5).any() else img.reshape(-1, 3).mean(0)
    _blend(img, mask, _shape_colour(rng, under))
    for _ in range(int(rng.integers(0, 2))):  # occlusion: a blob over part of the shape
        r = rng.uniform(0.08, 0.16) * size
        centre = np.array([cx, cy]) + rng.normal(0, radius * 0.8, 2)
        blob = shape_mask(
            str(rng.choice(("circle", "square", "hexagon"))),
            size,
            *centre,
            r,
            rng.uniform(0, 2 * np.pi),
            rng.uniform(0.6, 1.6),
        )
        _blend(img, blob, rng.uniform(0, 255, 3))
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (3, 3), float(rng.uniform(0.3, 0.9)))
    img += rng.normal(0.0, rng.uniform(3.0, 14.0), size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).round().astype(np.uint8), label


def render_proxy32(
    seed: int, num_images: int, size: int = 32, classes: tuple[str, ...] = PROXY32_CLASSES, description: str = "proxy32"
) -> tuple[np.ndarray, np.ndarray]:
    """``(images N x size x size x 3 uint8, labels int64 N)`` of images ``0..N-1``."""
    images = np.empty((num_images, size, size, 3), dtype=np.uint8)
    labels = np.empty(num_images, dtype=np.int64)
    with Progress(num_images, f"generating {description}", enabled=is_main_process()) as progress:
        for index in range(num_images):
            images[index], labels[index] = render_proxy32_image(seed, index, size, classes)
            progress.update(1)
    return images, labels


def generate_proxy32(
    out_dir: str, num_images: int, size: int = 32, seed: int = 0, classes: tuple[str, ...] = PROXY32_CLASSES
) -> str:
    """Write ``out_dir/images.npz`` atomically; returns its path."""
    import io

    images, labels = render_proxy32(seed, num_images, size, tuple(classes), description=out_dir)
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels)
    path = os.path.join(out_dir, PROXY32_FILE)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_bytes(buffer.getvalue(), path)
    return path
