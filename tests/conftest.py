"""Shared fixtures. The suite runs on the small real sets in tests/fixtures/ (see its README)
and on images drawn here; ``shared_data`` (../shared/data, or $RESDET_SHARED_DATA) only feeds
optional larger checks and skips when it is absent."""

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

# the record cache of the detection datasets (resdet.data.record_cache) goes to a folder of
# this session, never the user's ~/.cache; subprocesses (CLI tests) inherit it
_CACHE = tempfile.mkdtemp(prefix="resdet-test-cache-")
os.environ["RESDET_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")
SHARED_DATA = os.environ.get("RESDET_SHARED_DATA", os.path.join(os.path.dirname(REPO_ROOT), "shared", "data"))


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data():
    """Path of ../shared/data (the full real sets), for optional larger checks only."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(
            f"optional larger check: full data sets not found at {SHARED_DATA} "
            "(set RESDET_SHARED_DATA to a folder holding bccd_voc/, fruits_coco/, hymenoptera/)"
        )
    return SHARED_DATA


_FRESH = """import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("measured_test_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(getattr(module, sys.argv[2])(*sys.argv[3:])))
"""


@pytest.fixture(scope="session")
def fresh_interpreter():
    """``run(test_file, function, *args)``: ``function(*args)`` of that test module in a new
    Python process, its JSON result back. For memory measurements: forked workers copy the
    parent's heap pages as they allocate into their free slots, and this process's heap, after
    hundreds of tests, adds megabytes of such copies that have nothing to do with the code
    measured."""

    def run(test_file, function, *args):
        command = [sys.executable, "-c", _FRESH, os.path.abspath(test_file), function, *map(str, args)]
        out = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"{function} in a new process failed:\n{out.stderr[-3000:]}"
        return json.loads(out.stdout.strip().splitlines()[-1])

    return run


def _fixture_dir(name):
    path = os.path.join(FIXTURES, name)
    assert os.path.isdir(path), f"test fixture {path} is missing (part of the repository: tests/fixtures/)"
    return path


@pytest.fixture(scope="session")
def bccd_root():
    """BCCD blood-cell photos in VOC layout: 3 train + 4 val, one zero-area box in each split."""
    return _fixture_dir("bccd_voc")


@pytest.fixture(scope="session")
def fruits_root():
    """Fruits photos (800 x 600) with COCO polygons: image ids 0, 1, 2, 12, 15; 43 objects."""
    return _fixture_dir("fruits_coco")


@pytest.fixture(scope="session")
def coco_eval_root():
    """The cocoapi evaluation fixture: 100 val2014 images, fake bbox / segm results, expected stats."""
    return _fixture_dir("coco_eval_fixture")


# ----------------------------------------------------------------------------- ImageFolder
# (split, class) -> file names; sizes (h, w) vary, one GIF (train/ants), one .jpeg (val/bees),
# one PNG and one grayscale JPEG, like a folder of photos gathered from the web.
IMAGEFOLDER_FILES = {
    ("train", "ants"): ["a00.jpg", "a01.jpg", "a02.gif", "a03.jpg", "a04.png", "a05.jpg", "a06.jpg"],
    ("train", "bees"): ["b00.jpg", "b01.jpg", "b02.jpg", "b03.jpg", "b04.jpg"],
    ("val", "ants"): ["a10.jpg", "a11.jpg", "a12.jpg", "a13.jpg", "a14.jpg"],
    ("val", "bees"): ["b10.jpg", "b11.jpeg", "b12.jpg", "b13.jpg"],
}
_SIZES = [(60, 80), (96, 64), (75, 100), (120, 90), (64, 64), (90, 150), (110, 82)]


def _draw_insect(rng, cls, height, width):
    """An RGB picture: ants are dark red-brown three-segment bodies on green, bees are
    black-striped yellow bodies on a pale sky/flower background."""
    yy, xx = np.mgrid[0:height, 0:width]
    if cls == "ants":
        base = np.array([70, 120, 50], np.float64)
    else:
        base = np.array([200, 205, 230], np.float64)
    shade = (0.75 + 0.25 * np.sin(xx / (5 + 10 * rng.random()) + yy / 17.0))[..., None]
    img = np.clip(base * shade + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    scale = min(height, width)
    for _ in range(int(rng.integers(1, 3))):
        cx, cy = int(rng.uniform(0.3, 0.7) * width), int(rng.uniform(0.3, 0.7) * height)
        angle = float(rng.uniform(0, 180))
        if cls == "ants":
            colour = tuple(int(v) for v in rng.integers(40, 110, 3) * np.array([1.6, 0.6, 0.4]))
            step = scale * 0.12
            direction = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
            for k, size in zip((-1, 0, 1), (0.10, 0.07, 0.13)):
                centre = tuple(int(v) for v in np.array([cx, cy]) + k * step * direction)
                axes = (max(2, int(size * scale)), max(2, int(size * scale * 0.7)))
                cv2.ellipse(img, centre, axes, angle, 0, 360, colour, -1)
        else:
            axes = (max(4, int(0.22 * scale)), max(3, int(0.13 * scale)))
            cv2.ellipse(img, (cx, cy), axes, angle, 0, 360, (235, 190, 30), -1)
            body = np.zeros((height, width), np.uint8)
            cv2.ellipse(body, (cx, cy), axes, angle, 0, 360, 1, -1)
            along = (xx - cx) * np.cos(np.radians(angle)) + (yy - cy) * np.sin(np.radians(angle))
            stripes = (body > 0) & ((along // max(2, axes[0] // 3)) % 2 == 0)
            img[stripes] = (25, 20, 10)
            wing = (cx + int(0.05 * scale), cy - axes[1])
            cv2.ellipse(img, wing, (axes[1], max(2, axes[1] // 2)), angle + 30, 0, 360, (240, 240, 250), -1)
    return img


def write_imagefolder(root, seed=0):
    """Write the ImageFolder fixture (``root/{train,val}/{ants,bees}/``); returns ``root``."""
    from PIL import Image  # torchvision's dependency; writes the GIF that OpenCV cannot

    rng = np.random.default_rng(seed)
    count = 0
    for (split, cls), names in IMAGEFOLDER_FILES.items():
        folder = os.path.join(root, split, cls)
        os.makedirs(folder, exist_ok=True)
        for name in names:
            height, width = _SIZES[count % len(_SIZES)]
            count += 1
            img = _draw_insect(rng, cls, height, width)
            path = os.path.join(folder, name)
            if name.endswith(".gif"):
                Image.fromarray(img).quantize(colors=64).save(path)
            elif name == "a05.jpg":  # a grayscale JPEG
                cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
            else:
                assert cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR)), path
    return root


@pytest.fixture(scope="session")
def imagefolder_root(tmp_path_factory):
    """A small ImageFolder set drawn at test time: train 7 ants + 5 bees, val 5 ants + 4 bees."""
    return write_imagefolder(str(tmp_path_factory.mktemp("imagefolder")))
