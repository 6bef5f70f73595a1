"""Deterministic synthetic "shapes" data sets: the embedded defaults of resdet.

Three flavours share one drawing code path (a textured, noisy background, then filled
polygons with anti-aliased edges, then sensor noise):

- ``cls``: one shape per image, saved in the ImageNet folder layout
  ``out_dir/<class>/<index>.<ext>`` (read by ``ImageFolder`` / ``ShapesClsDataset``);
- ``det``: 1-4 shapes per image, overlaps allowed (each instance keeps at least half of its
  area visible), COCO instances json ``out_dir/annotations.json`` + ``out_dir/images/``;
  masks are the *visible* regions: a polygon when the shape is unoccluded, a compressed RLE
  when another shape covers part of it;
- ``loc``: one dominant shape plus a few small distractors of other classes (COCO json
  like ``det``; each image entry has the dominant ``category_id`` and each annotation a
  ``dominant`` flag), for ILSVRC-style localization.

Every image ``i`` is drawn from its own generator seeded by ``(seed, flavour, i)``, so the
same seed gives the same bytes, and a larger set starts with the images of a smaller one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

from ...utils.dist import is_main_process
from ...utils.progress import Progress

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross")
_FLAVOUR_CODES = {"cls": 1, "det": 2, "loc": 3}
_SUBPIXEL_SHIFT = 4  # cv2 fixed-point drawing: coordinates * 16


def _unit_polygon(name: str) -> np.ndarray:
    """Vertices (K x 2, float64) of a shape of outer radius ~1 centred at the origin."""
    if name == "circle":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], 1)
    if name == "square":
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) * 0.78
    if name == "triangle":
        t = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(t), np.sin(t)], 1) * 1.05
    if name == "star":
        t = np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([np.cos(t) * r, np.sin(t) * r], 1)
    if name == "cross":
        a, b = 0.32, 0.95
        return np.array(
            [
                [-a, -b],
                [a, -b],
                [a, -a],
                [b, -a],
                [b, a],
                [a, a],
                [a, b],
                [-a, b],
                [-a, a],
                [-b, a],
                [-b, -a],
                [-a, -a],
            ],
            dtype=np.float64,
        )
    raise ValueError(f"unknown shape {name!r}; allowed: {', '.join(SHAPE_CLASSES)}")


_UNIT_POLYGONS = {name: _unit_polygon(name) for name in SHAPE_CLASSES}


def shape_polygon(name: str, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """``K x 2`` float vertices of shape ``name`` centred at (cx, cy), rotated by ``angle`` (rad)."""
    pts = _UNIT_POLYGONS[name]
    c, s = np.cos(angle), np.sin(angle)
    rot = pts @ np.array([[c, s], [-s, c]])
    return rot * radius + np.array([cx, cy])


def _fixed_point(poly: np.ndarray) -> np.ndarray:
    """Polygon in continuous coordinates (COCO: pixel ``x`` spans ``[x, x + 1]``) -> OpenCV
    fixed-point vertices (OpenCV puts pixel centres on integers, hence the half-pixel shift)."""
    return np.round((poly - 0.5) * (1 << _SUBPIXEL_SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def draw_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A textured background: a smooth random colour field plus a few random lines. ``H x W x 3`` uint8."""
    base = rng.uniform(40, 215, size=3)
    cells = int(rng.integers(3, 9))
    field = rng.normal(0.0, 30.0, size=(cells, cells, 3)).astype(np.float32)
    field = cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.clip(field + base.astype(np.float32), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 7))):
        p1 = tuple(int(v) for v in rng.integers(0, [width, height]))
        p2 = tuple(int(v) for v in rng.integers(0, [width, height]))
        colour = tuple(float(v) for v in np.clip(base + rng.normal(0, 45, 3), 0, 255))
        cv2.line(img, p1, p2, colour, thickness=int(rng.integers(1, 3)), lineType=cv2.LINE_AA)
    return img


def _contrasting_colour(rng: np.random.Generator, img: np.ndarray, poly: np.ndarray) -> tuple:
    """A colour that differs clearly from the background under the shape."""
    x0, y0 = np.floor(poly.min(0)).astype(int).clip(0)
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
    patch = img[y0:y1, x0:x1].reshape(-1, 3)
    ref = patch.mean(0) if len(patch) else np.full(3, 128.0)
    colour = rng.uniform(0, 255, 3)
    for _ in range(20):
        if np.abs(colour - ref).mean() >= 70:
            break
        colour = rng.uniform(0, 255, 3)
    else:
        colour = np.where(ref > 127, 20.0, 235.0)
    return tuple(float(v) for v in colour)


def _fill(img: np.ndarray, poly: np.ndarray, colour: tuple) -> None:
    cv2.fillPoly(img, [_fixed_point(poly)], colour, lineType=cv2.LINE_AA, shift=_SUBPIXEL_SHIFT)


def polygon_mask(poly: np.ndarray, height: int, width: int) -> np.ndarray:
    """Binary ``H x W`` uint8 mask of a ``K x 2`` polygon."""
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(mask, [_fixed_point(poly)], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_SHIFT)
    return mask


def add_noise(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    sigma = float(rng.uniform(3.0, 12.0))
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, size=img.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def _image_rng(seed: int, flavour: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), _FLAVOUR_CODES[flavour], int(index)]))


def render_cls_image(
    seed: int, index: int, image_size: int = 64, classes: Sequence[str] = SHAPE_CLASSES
) -> tuple[np.ndarray, int]:
    """Image ``index`` of the classification flavour: ``(H x W x 3 RGB uint8, label)``.
    Labels cycle through the classes so every class has the same number of images."""
    rng = _image_rng(seed, "cls", index)
    label = index % len(classes)
    img = draw_background(rng, image_size, image_size)
    radius = rng.uniform(0.24, 0.42) * image_size
    cx, cy = rng.uniform(radius, image_size - radius, 2)
    poly = shape_polygon(classes[label], cx, cy, radius, rng.uniform(0, 2 * np.pi))
    _fill(img, poly, _contrasting_colour(rng, img, poly))
    return add_noise(rng, img), label


def _place_instances(
    rng: np.random.Generator,
    img: np.ndarray,
    specs: list[tuple[int, float]],
    classes: Sequence[str],
    min_visible: float,
) -> list[dict]:
    """Draw ``specs`` (label, radius) in order, re-drawing a placement (up to 10 tries) that
    would leave an earlier instance less than ``min_visible`` of its area visible; a shape
    that never fits is dropped. Returns instances with ``label``, ``poly``, ``visible`` mask."""
    h, w = img.shape[:2]
    placed: list[dict] = []
    for label, radius in specs:
        for _ in range(10):
            cx, cy = rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)
            poly = shape_polygon(classes[label], cx, cy, radius, rng.uniform(0, 2 * np.pi))
            mask = polygon_mask(poly, h, w)
            ok = all(((inst["visible"] & (1 - mask)).sum() >= min_visible * inst["full_area"]) for inst in placed)
            if ok and mask.sum() > 0:
                break
        else:
            continue
        for inst in placed:
            inst["visible"] = inst["visible"] & (1 - mask)
        _fill(img, poly, _contrasting_colour(rng, img, poly))
        placed.append(dict(label=label, poly=poly, visible=mask, full_area=int(mask.sum())))
    return placed


def render_det_image(
    seed: int,
    index: int,
    image_size: int = 256,
    flavour: str = "det",
    classes: Sequence[str] = SHAPE_CLASSES,
    max_instances: int = 4,
    min_visible: float = 0.5,
) -> tuple[np.ndarray, list[dict], int]:
    """Image ``index`` of the ``det`` or ``loc`` flavour.

    Returns ``(img H x W x 3 RGB uint8, instances, dominant_label)``; each instance has
    ``label``, ``poly`` (K x 2), ``visible`` (H x W uint8), ``full_area`` and ``dominant``.
    For ``det`` the dominant label is that of the largest instance.
    """
    rng = _image_rng(seed, flavour, index)
    img = draw_background(rng, image_size, image_size)
    num_classes = len(classes)
    if flavour == "det":
        count = int(rng.integers(1, max_instances + 1))
        specs = [(int(rng.integers(num_classes)), rng.uniform(0.08, 0.22) * image_size) for _ in range(count)]
    elif flavour == "loc":
        main = int(rng.integers(num_classes))
        others = [c for c in range(num_classes) if c != main] or [main]
        specs = [(main, rng.uniform(0.2, 0.34) * image_size)]
        specs += [
            (int(rng.choice(others)), rng.uniform(0.04, 0.08) * image_size) for _ in range(int(rng.integers(1, 4)))
        ]
    else:
        raise ValueError(f"flavour must be 'det' or 'loc', got {flavour!r}")
    instances = _place_instances(rng, img, specs, classes, min_visible)
    # 'loc': the dominant shape is drawn first, so it is always placed; 'det': the largest placed
    main = 0 if flavour == "loc" else int(np.argmax([inst["full_area"] for inst in instances]))
    for i, inst in enumerate(instances):
        inst["dominant"] = i == main
    dominant_label = instances[main]["label"]
    return add_noise(rng, img), instances, dominant_label


def _write_image(path: str, img_rgb: np.ndarray, ext: str) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in ("jpg", "jpeg") else []
    ok, buf = cv2.imencode("." + ext, cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"could not encode {path} as {ext}")
    buf.tofile(path)


def _check_ext(ext: str) -> str:
    ext = ext.lower().lstrip(".")
    if ext not in ("jpg", "jpeg", "png"):
        raise ValueError(f"image format must be 'jpg' or 'png', got {ext!r}")
    return ext


def generation_progress(num_images: int, out_dir: str) -> Progress:
    """A bar (a terminal) or a line every 10 s while a synthetic set is written (rank 0)."""
    return Progress(num_images, f"generating {out_dir}", enabled=is_main_process())


def generate_shapes_cls(
    out_dir: str,
    num_images: int,
    image_size: int = 64,
    seed: int = 0,
    classes: Sequence[str] = SHAPE_CLASSES,
    ext: str = "png",
) -> dict:
    """Write ``num_images`` classification images as ``out_dir/<class>/<index>.<ext>``.
    Returns ``{'out_dir', 'num_images', 'classes'}``."""
    ext = _check_ext(ext)
    for name in classes:
        os.makedirs(os.path.join(out_dir, name), exist_ok=True)
    with generation_progress(num_images, out_dir) as progress:
        for index in range(num_images):
            img, label = render_cls_image(seed, index, image_size, classes)
            _write_image(os.path.join(out_dir, classes[label], f"{index:06d}.{ext}"), img, ext)
            progress.update(1)
    return dict(out_dir=out_dir, num_images=num_images, classes=list(classes))


def _coco_segmentation(inst: dict) -> dict | list:
    """A polygon for an unoccluded shape, a compressed RLE of the visible region otherwise."""
    if int(inst["visible"].sum()) == inst["full_area"]:
        return [[round(float(v), 2) for v in inst["poly"].reshape(-1)]]
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(inst["visible"]))
    return dict(size=[int(s) for s in rle["size"]], counts=rle["counts"].decode("ascii"))


def _polygon_area(polygons: list, image_size: int) -> int:
    """Pixel area of COCO polygons as pycocotools rasterises them (what COCOeval uses)."""
    from pycocotools import mask as mask_utils

    rles = mask_utils.frPyObjects(polygons, image_size, image_size)
    return int(mask_utils.area(mask_utils.merge(rles)))


def generate_shapes_det(
    out_dir: str,
    num_images: int,
    image_size: int = 256,
    seed: int = 0,
    flavour: str = "det",
    classes: Sequence[str] = SHAPE_CLASSES,
    max_instances: int = 4,
    min_visible: float = 0.5,
    ext: str = "jpg",
) -> str:
    """Write a COCO-format shapes set: ``out_dir/images/<index>.<ext>`` and
    ``out_dir/annotations.json`` (boxes and masks of the visible regions, category ids
    1..C). ``flavour='loc'`` gives the localization variant. Returns the json path.

    The json is written last (atomically), so its presence marks a complete set.
    """
    from ...utils.io import atomic_write_json

    ext = _check_ext(ext)
    if flavour not in ("det", "loc"):
        raise ValueError(f"flavour must be 'det' or 'loc', got {flavour!r}")
    img_dir = os.path.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    progress = generation_progress(num_images, out_dir)
    for index in range(num_images):
        img, instances, dominant = render_det_image(
            seed, index, image_size, flavour, classes, max_instances, min_visible
        )
        file_name = f"{index:06d}.{ext}"
        _write_image(os.path.join(img_dir, file_name), img, ext)
        entry = dict(id=index + 1, file_name=file_name, height=image_size, width=image_size)
        if flavour == "loc":
            entry["category_id"] = dominant + 1
        images.append(entry)
        for inst in instances:
            segmentation = _coco_segmentation(inst)
            if isinstance(segmentation, list):  # unoccluded: the polygon's own extent and area
                x0, y0 = (float(v) for v in inst["poly"].min(0))
                x1, y1 = (float(v) for v in inst["poly"].max(0))
                area = float(_polygon_area(segmentation, image_size))
            else:  # occluded: the visible pixels
                ys, xs = np.nonzero(inst["visible"])
                x0, y0, x1, y1 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
                area = float(inst["visible"].sum())
            x0, y0 = max(x0, 0.0), max(y0, 0.0)
            x1, y1 = min(x1, float(image_size)), min(y1, float(image_size))
            ann = dict(
                id=len(annotations) + 1,
                image_id=index + 1,
                category_id=inst["label"] + 1,
                bbox=[round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                area=area,
                iscrowd=0,
                segmentation=segmentation,
            )
            if flavour == "loc":
                ann["dominant"] = int(inst["dominant"])
            annotations.append(ann)
        progress.update(1)
    progress.close()
    categories = [dict(id=i + 1, name=name, supercategory="shape") for i, name in enumerate(classes)]
    info = dict(
        description=f"resdet synthetic shapes ({flavour})", seed=int(seed), image_size=int(image_size), version="1.0"
    )
    ann_file = os.path.join(out_dir, "annotations.json")
    atomic_write_json(
        dict(info=info, images=images, annotations=annotations, categories=categories, licenses=[]),
        ann_file,
        indent=None,
    )
    return ann_file
