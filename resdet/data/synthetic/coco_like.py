"""A COCO-train-shaped data set at any size, for measuring data loading at scale.

``generate_coco_like(root, num_images=118287, seed=0)`` writes
``root/annotations/instances_train2017.json`` with the shape of COCO train2017: the 80
categories with COCO's sparse ids (1..90) and names, about 7.3 instances per image, 10-40-point
polygons with two decimals, about 1 % crowds with uncompressed RLE, about 1 % images without
annotations, COCO's common image sizes and its image / annotation fields. ``root/train2017``
holds one file per image entry of the recorded size: hard links (symlinks where links fail) to a
few generated JPEGs per size, so a full-size set takes a few MB. ``generate_imagefolder_like``
writes ``num_images`` tiny JPEG links spread over 1000 class folders. Both are deterministic
in ``seed``; ``ensure_coco_like`` / ``ensure_imagefolder_like`` reuse a set generated with the
same settings (``resdet.data.synthetic.cache``).

Polygons are random outlines around a centre with radii varying per vertex; most are not
convex, and many are not star-shaped around their vertex mean, so mask checks see work of the
kind real outlines give them.
"""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np

from .cache import ensure_generated

COCO_CATEGORIES = (
    (1, "person"),
    (2, "bicycle"),
    (3, "car"),
    (4, "motorcycle"),
    (5, "airplane"),
    (6, "bus"),
    (7, "train"),
    (8, "truck"),
    (9, "boat"),
    (10, "traffic light"),
    (11, "fire hydrant"),
    (13, "stop sign"),
    (14, "parking meter"),
    (15, "bench"),
    (16, "bird"),
    (17, "cat"),
    (18, "dog"),
    (19, "horse"),
    (20, "sheep"),
    (21, "cow"),
    (22, "elephant"),
    (23, "bear"),
    (24, "zebra"),
    (25, "giraffe"),
    (27, "backpack"),
    (28, "umbrella"),
    (31, "handbag"),
    (32, "tie"),
    (33, "suitcase"),
    (34, "frisbee"),
    (35, "skis"),
    (36, "snowboard"),
    (37, "sports ball"),
    (38, "kite"),
    (39, "baseball bat"),
    (40, "baseball glove"),
    (41, "skateboard"),
    (42, "surfboard"),
    (43, "tennis racket"),
    (44, "bottle"),
    (46, "wine glass"),
    (47, "cup"),
    (48, "fork"),
    (49, "knife"),
    (50, "spoon"),
    (51, "bowl"),
    (52, "banana"),
    (53, "apple"),
    (54, "sandwich"),
    (55, "orange"),
    (56, "broccoli"),
    (57, "carrot"),
    (58, "hot dog"),
    (59, "pizza"),
    (60, "donut"),
    (61, "cake"),
    (62, "chair"),
    (63, "couch"),
    (64, "potted plant"),
    (65, "bed"),
    (67, "dining table"),
    (70, "toilet"),
    (72, "tv"),
    (73, "laptop"),
    (74, "mouse"),
    (75, "remote"),
    (76, "keyboard"),
    (77, "cell phone"),
    (78, "microwave"),
    (79, "oven"),
    (80, "toaster"),
    (81, "sink"),
    (82, "refrigerator"),
    (84, "book"),
    (85, "clock"),
    (86, "vase"),
    (87, "scissors"),
    (88, "teddy bear"),
    (89, "hair drier"),
    (90, "toothbrush"),
)

# (width, height, share): COCO's most frequent image sizes, the rest lumped into the nearest
IMAGE_SIZES = (
    (640, 480, 0.42),
    (640, 427, 0.22),
    (480, 640, 0.10),
    (640, 426, 0.08),
    (427, 640, 0.07),
    (640, 428, 0.04),
    (612, 612, 0.03),
    (500, 375, 0.04),
)
MEAN_INSTANCES = 7.3  # per image, over all images
EMPTY_SHARE = 0.01  # images without annotations
CROWD_SHARE = 0.01  # instances that are crowds (uncompressed RLE)
JPEGS_PER_SIZE = 4  # distinct files each size's image entries link to
ANN_FILE = os.path.join("annotations", "instances_train2017.json")
IMG_DIR = "train2017"
_CHUNK = 2000  # images per json.dumps call (bounded memory, C encoder)


def _images_chunk(rng: np.random.Generator, first_id: int, count: int) -> tuple[list, np.ndarray]:
    shares = np.array([s[2] for s in IMAGE_SIZES])
    size_index = rng.choice(len(IMAGE_SIZES), size=count, p=shares / shares.sum())
    images = []
    for k, s in enumerate(size_index.tolist()):
        img_id = first_id + k
        width, height = IMAGE_SIZES[s][:2]
        images.append(
            {
                "license": 1 + img_id % 8,
                "file_name": f"{img_id:012d}.jpg",
                "coco_url": f"http://images.cocodataset.org/train2017/{img_id:012d}.jpg",
                "height": height,
                "width": width,
                "date_captured": "2013-11-14 16:28:13",
                "flickr_url": f"http://farm4.staticflickr.com/{img_id % 9000}/{img_id}_z.jpg",
                "id": img_id,
            }
        )
    return images, size_index


def _polygon(
    rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float, width: int, height: int
) -> list[float]:
    """One outline of 10-40 points, clipped to the image, two decimals."""
    points = int(rng.integers(10, 41))
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    radii = rng.uniform(0.35, 1.0, points)
    xs = np.clip(cx + rx * radii * np.cos(angles), 0, width - 0.01)
    ys = np.clip(cy + ry * radii * np.sin(angles), 0, height - 0.01)
    return np.round(np.stack([xs, ys], 1).reshape(-1), 2).tolist()


def _crowd_rle(x0: int, y0: int, x1: int, y1: int, width: int, height: int) -> list[int]:
    """Uncompressed (column-major) RLE counts of the rectangle ``[x0, x1) x [y0, y1)``."""
    counts, run_start = [], 0
    for x in range(x0, x1):
        counts += [x * height + y0 - run_start, y1 - y0]
        run_start = x * height + y1
    counts.append(width * height - run_start)
    return counts


def _annotations(rng: np.random.Generator, image: dict, first_ann_id: int, count: int) -> list[dict]:
    width, height = image["width"], image["height"]
    anns = []
    for k in range(count):
        cat_id = COCO_CATEGORIES[int(rng.integers(len(COCO_CATEGORIES)))][0]
        scale = float(rng.uniform(0.03, 0.45)) * min(width, height)
        rx, ry = scale * rng.uniform(0.5, 1.0), scale * rng.uniform(0.5, 1.0)
        cx, cy = rng.uniform(rx, width - rx), rng.uniform(ry, height - ry)  # inside: no clipping needed
        if rng.random() < CROWD_SHARE:
            x0, y0 = int(max(cx - rx, 0)), int(max(cy - ry, 0))
            x1, y1 = int(min(cx + rx, width)), int(min(cy + ry, height))
            x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
            segmentation = {"counts": _crowd_rle(x0, y0, x1, y1, width, height), "size": [height, width]}
            bbox, area, crowd = [x0, y0, x1 - x0, y1 - y0], float((x1 - x0) * (y1 - y0)), 1
        else:
            poly = _polygon(rng, cx, cy, rx, ry, width, height)
            xs, ys = np.array(poly[0::2]), np.array(poly[1::2])
            area = 0.5 * abs(float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))
            segmentation, crowd = [poly], 0
            bbox = np.round([xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()], 2).tolist()
        anns.append(
            {
                "segmentation": segmentation,
                "area": round(area, 2),
                "iscrowd": crowd,
                "image_id": image["id"],
                "bbox": bbox,
                "category_id": cat_id,
                "id": first_ann_id + k,
            }
        )
    return anns


def _write_annotation_file(path: str, num_images: int, seed: int) -> np.ndarray:
    """Streams the json in chunks; returns each image's size index into ``IMAGE_SIZES``."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sizes, ann_id = [], 1
    # non-empty images: 1 + Poisson, so the mean over all images is MEAN_INSTANCES
    lam = MEAN_INSTANCES / (1 - EMPTY_SHARE) - 1
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(
            '{"info": {"description": "COCO-train-shaped synthetic set (resdet)", "version": "1.0", '
            '"year": 2017}, "licenses": '
            + json.dumps([{"id": i, "name": f"license {i}", "url": ""} for i in range(1, 9)])
            + ', "images": ['
        )
        ann_chunks = []
        for first in range(0, num_images, _CHUNK):
            images, size_index = _images_chunk(rng, first + 1, min(_CHUNK, num_images - first))
            sizes.append(size_index)
            fh.write((", " if first else "") + json.dumps(images)[1:-1])
            counts = np.where(rng.random(len(images)) < EMPTY_SHARE, 0, 1 + rng.poisson(lam, len(images)))
            anns = []
            for image, count in zip(images, counts.tolist()):
                anns += _annotations(rng, image, ann_id, count)
                ann_id += count
            ann_chunks.append(_spill(json.dumps(anns)[1:-1], path, len(ann_chunks)))
        fh.write('], "annotations": [')
        wrote_any = False
        for chunk in ann_chunks:
            with open(chunk, encoding="utf-8") as part:
                text = part.read()
            if text:
                fh.write((", " if wrote_any else "") + text)
                wrote_any = True
            os.remove(chunk)
        fh.write(
            '], "categories": '
            + json.dumps([{"supercategory": "thing", "id": i, "name": n} for i, n in COCO_CATEGORIES])
            + "}"
        )
    os.replace(tmp, path)
    return np.concatenate(sizes) if sizes else np.zeros(0, np.int64)


def _spill(text: str, path: str, index: int) -> str:
    """Annotation chunks go to temporary files: the images list comes first in the json."""
    chunk = f"{path}.ann{index:05d}"
    with open(chunk, "w", encoding="utf-8") as fh:
        fh.write(text)
    return chunk


def _jpeg(rng: np.random.Generator, width: int, height: int) -> bytes:
    """A smooth colour field with a few rectangles: decodes like a photo of that size."""
    low = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
    image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):
        x, y = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.rectangle(
            image, (x, y), (x + int(rng.integers(8, width // 3)), y + int(rng.integers(8, height // 3))), color, -1
        )
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return data.tobytes()


def _link(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # file systems without hard links (or across devices)
        os.symlink(os.path.abspath(source), target)


def _write_images(img_dir: str, sizes: np.ndarray, seed: int) -> None:
    """One file per image entry: a link to one of ``JPEGS_PER_SIZE`` JPEGs of its size."""
    rng = np.random.default_rng(seed + 1)
    source_dir = os.path.join(os.path.dirname(img_dir), "_sources")
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(source_dir, exist_ok=True)
    sources = []
    for width, height, _ in IMAGE_SIZES:
        files = []
        for k in range(JPEGS_PER_SIZE):
            files.append(os.path.join(source_dir, f"{width}x{height}_{k}.jpg"))
            with open(files[-1], "wb") as fh:
                fh.write(_jpeg(rng, width, height))
        sources.append(files)
    for index, size in enumerate(sizes.tolist()):
        _link(sources[size][index % JPEGS_PER_SIZE], os.path.join(img_dir, f"{index + 1:012d}.jpg"))


def generate_coco_like(root: str, num_images: int = 118287, seed: int = 0) -> str:
    """Writes the set under ``root`` (see the module docstring); returns the annotation file."""
    ann_file = os.path.join(root, ANN_FILE)
    sizes = _write_annotation_file(ann_file, int(num_images), int(seed))
    _write_images(os.path.join(root, IMG_DIR), sizes, int(seed))
    return ann_file


def ensure_coco_like(root: str, num_images: int = 118287, seed: int = 0) -> tuple[str, str]:
    """``generate_coco_like`` unless ``root`` already holds the set of these settings;
    returns ``(annotation file, image folder)``."""
    meta = dict(kind="coco_like", num_images=int(num_images), seed=int(seed), version=1)

    def clear() -> None:
        for name in (IMG_DIR, "_sources", "annotations"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)

    ensure_generated(
        root,
        meta,
        lambda: generate_coco_like(root, num_images, seed),
        clear,
        meta_path=os.path.join(root, "coco_like_meta.json"),
    )
    return os.path.join(root, ANN_FILE), os.path.join(root, IMG_DIR)


def ensure_imagefolder_like(
    root: str, num_images: int, num_classes: int = 1000, seed: int = 0, image_size: int = 32
) -> str:
    """An ImageFolder of ``num_images`` links to ``image_size``-pixel JPEGs spread over
    ``num_classes`` folders (``n00000000`` ...), reused when generated with these settings;
    returns the folder."""
    meta = dict(
        kind="imagefolder_like",
        num_images=int(num_images),
        num_classes=int(num_classes),
        seed=int(seed),
        image_size=int(image_size),
        version=1,
    )
    train = os.path.join(root, "train")

    def generate() -> None:
        rng = np.random.default_rng(seed)
        source_dir = os.path.join(root, "_sources")
        os.makedirs(source_dir, exist_ok=True)
        sources = []
        for k in range(8):
            sources.append(os.path.join(source_dir, f"{k}.jpg"))
            with open(sources[-1], "wb") as fh:
                fh.write(_jpeg(rng, image_size, image_size))
        for index in range(int(num_images)):
            folder = os.path.join(train, f"n{index % num_classes:08d}")
            if index < num_classes:
                os.makedirs(folder, exist_ok=True)
            _link(sources[index % len(sources)], os.path.join(folder, f"img_{index:08d}.JPEG"))

    def clear() -> None:
        for name in ("train", "_sources"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)

    ensure_generated(root, meta, generate, clear, meta_path=os.path.join(root, "imagefolder_like_meta.json"))
    return train
