"""Samples of the detection datasets are byte-identical to those captured before their
records moved into flat arrays (``golden_det_samples.json``, written by the code of commit
4f36223 with ``python tests/data/test_det_records_identical.py --write``).

Covered: the fixtures (``bccd_voc``, ``fruits_coco`` with and without masks and with a
class subset, ``coco_eval_fixture`` ground truth with its RLE crowds) and a generated shapes
set; per sample the image, boxes, labels, ignore flags, masks (bitmaps after the pipeline),
img_id and orig_size after a seeded random pipeline, plus ``get_ann``, ``describe``,
``img_ids``, ``aspect_ratios`` and ``stats``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden_det_samples.json")
FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures")
PIPELINE = [
    dict(type="ResizeShortestEdge", short_edge_length=(64, 80, 96), max_size=160, sample_mode="choice"),
    dict(type="DetRandomFlip", prob=0.5),
    dict(type="PhotometricDistortion"),
]


def _digest(value) -> str:
    if hasattr(value, "numpy"):
        value = value.numpy()
    arr = np.ascontiguousarray(np.asarray(value))
    return hashlib.sha1(f"{arr.dtype}{arr.shape}".encode() + arr.tobytes()).hexdigest()[:16]


def _describe_sample(sample: dict) -> dict:
    out = {key: _digest(sample[key]) for key in ("img", "boxes", "labels", "ignore") if key in sample}
    if "masks" in sample:
        out["masks"] = _digest(sample["masks"])
    out["img_id"] = repr(sample["img_id"])
    out["orig_size"] = [int(v) for v in sample["orig_size"]]
    return out


def _portable(text: str) -> str:
    text = text.replace(FIXTURES, "<fixtures>")
    return text[text.index("/shapes/") + 1 :] if "/shapes/" in text else text


def _describe_dataset(ds, with_images: bool) -> dict:
    out = dict(
        len=len(ds),
        img_ids=[repr(i) for i in ds.img_ids],
        aspect_ratios=list(map(float, ds.aspect_ratios)),
        class_names=list(ds.class_names),
        label_to_cat_id=[repr(c) for c in ds.label_to_cat_id],
        stats={k: int(v) for k, v in sorted(ds.stats.items()) if v},
        describe=[_portable(ds.describe(i)) for i in range(len(ds))],
        anns=[
            {
                k: (_digest(v) if k not in ("img_id", "orig_size") else repr(tuple(v) if k == "orig_size" else v))
                for k, v in sorted(ds.get_ann(i).items())
            }
            for i in range(len(ds))
        ],
    )
    if with_images:
        samples = []
        for i in range(len(ds)):
            np.random.seed(1000 + i)
            samples.append(_describe_sample(ds[i]))
        out["samples"] = samples
    return out


def _datasets(shapes_root: str):
    from resdet.data.datasets import CocoDataset, ShapesCocoDataset, VOCDataset

    fruits = os.path.join(FIXTURES, "fruits_coco")
    bccd = os.path.join(FIXTURES, "bccd_voc")
    evalfix = os.path.join(FIXTURES, "coco_eval_fixture", "instances_val2014_100.json")
    coco = lambda **kw: CocoDataset(
        os.path.join(fruits, "annotations.json"), os.path.join(fruits, "images"), pipeline=PIPELINE, **kw
    )  # noqa: E731
    yield "fruits", coco(), True
    yield "fruits_masks", coco(with_masks=True, filter_empty=False), True
    yield "fruits_subset", coco(classes=["fig", "date"]), True
    yield (
        "bccd_trainval",
        VOCDataset(bccd, split="trainval", classes=("Platelets", "RBC", "WBC"), pipeline=PIPELINE),
        True,
    )
    yield (
        "bccd_val_nodifficult",
        VOCDataset(bccd, split="val", classes=("Platelets", "RBC", "WBC"), keep_difficult=False, filter_empty=False),
        False,
    )
    img_dir = os.path.join(shapes_root, "eval_fixture_images")  # get_ann only: empty files do
    os.makedirs(img_dir, exist_ok=True)
    with open(evalfix) as fh:
        for image in json.load(fh)["images"]:
            open(os.path.join(img_dir, image["file_name"]), "wb").close()
    for masks in (False, True):
        yield f"eval_fixture_masks{masks}", CocoDataset(evalfix, img_dir, filter_empty=False, with_masks=masks), False
    yield (
        "shapes_masks",
        ShapesCocoDataset(
            data_root=shapes_root, num_images=10, image_size=96, seed=3, with_masks=True, pipeline=PIPELINE
        ),
        True,
    )


def capture(shapes_root: str) -> dict:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: _describe_dataset(ds, images) for name, ds, images in _datasets(shapes_root)}


def test_samples_identical_to_the_dict_records(tmp_path):
    with open(GOLDEN) as fh:
        golden = json.load(fh)
    got = json.loads(json.dumps(capture(str(tmp_path / "shapes"))))
    assert sorted(got) == sorted(golden)
    for name in golden:
        for key in golden[name]:
            assert got[name][key] == golden[name][key], f"{name}: {key} differs"


if __name__ == "__main__" and "--write" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = capture(os.path.join(tmp, "shapes"))
    with open(GOLDEN, "w") as fh:
        json.dump(data, fh, indent=0, sort_keys=True)
    print("wrote", GOLDEN)
