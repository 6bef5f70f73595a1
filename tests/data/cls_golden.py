"""Digests of the classification samples, to check that a change of storage leaves every
sample identical: run ``python tests/data/cls_golden.py`` to write
``tests/fixtures/cls_samples_golden.json`` (it was written with the list-of-tuples storage,
before the array storage; ``test_cls_samples_identical.py`` compares against it)."""

import hashlib
import importlib.util
import json
import os
import sys
import tempfile

import numpy as np

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "fixtures", "cls_samples_golden.json")
AUG = [
    dict(type="Resize", size=40),
    dict(type="RandomCrop", size=32, padding=2),
    dict(type="RandomHorizontalFlip"),
    dict(type="PCALighting"),
]


def _digest(sample, root):
    if sample is None:
        return None
    out = {}
    for key, value in sorted(sample.items()):
        if isinstance(value, np.ndarray):
            out[key] = [list(value.shape), str(value.dtype), hashlib.sha1(np.ascontiguousarray(value)).hexdigest()]
        elif key in ("img_path", "file"):
            out[key] = os.path.relpath(str(value), root)
        elif isinstance(value, (list, tuple)):
            out[key] = [float(v) if isinstance(v, (float, np.floating)) else v for v in value]
        elif isinstance(value, (np.integer, np.floating, np.bool_)):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def dataset_digest(ds, root, seed=0):
    """Per sample: every field (images hashed), read in a shuffled order with numpy's RNG
    seeded per sample as the loader does; plus the metric-facing labels."""
    order = np.random.default_rng(seed).permutation(len(ds))
    samples = {}
    for i in order.tolist():
        np.random.seed(1000 + i)
        samples[str(i)] = _digest(ds[i], root)
    return dict(
        len=len(ds),
        classes=list(ds.class_names),
        samples=samples,
        labels=[int(v) for v in (ds.labels if hasattr(ds, "labels") else ds.image_labels)],
    )


def build_all(tmp):
    """Every classification dataset of the suite's fixtures, built in ``tmp``."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
    # tests/conftest.py by its path: the name ``conftest`` may already be another folder's
    spec = importlib.util.spec_from_file_location(
        "resdet_tests_root_conftest", os.path.join(os.path.dirname(os.path.dirname(__file__)), "conftest.py")
    )
    root_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root_conftest)
    write_imagefolder = root_conftest.write_imagefolder
    from data.test_cls_datasets import write_fake_cifar
    from data.test_imagenet_loc import make_ilsvrc

    from resdet.data.datasets import (
        CIFAR10,
        ImageFolder,
        ImageNetLocDataset,
        Proxy32Dataset,
        ShapesClsDataset,
        ShapesLocDataset,
    )

    folder = write_imagefolder(os.path.join(tmp, "imagefolder"))
    write_fake_cifar(os.path.join(tmp, "cifar", "cifar-10-batches-py"))
    ilsvrc = make_ilsvrc(os.path.join(tmp, "ilsvrc"))
    built = {
        "imagefolder_train": (ImageFolder(os.path.join(folder, "train"), pipeline=AUG), folder),
        "imagefolder_val": (ImageFolder(os.path.join(folder, "val")), folder),
        "cifar_train": (CIFAR10(os.path.join(tmp, "cifar"), split="train", val_size=10, pipeline=AUG), tmp),
        "cifar_test": (CIFAR10(os.path.join(tmp, "cifar"), split="test"), tmp),
        "proxy32": (Proxy32Dataset(os.path.join(tmp, "proxy32"), num_images=12, pipeline=AUG), tmp),
        "shapes_cls": (ShapesClsDataset(os.path.join(tmp, "shapes"), num_images=10, image_size=24, pipeline=AUG), tmp),
        "ilsvrc_train": (
            ImageNetLocDataset(ilsvrc, "train", strict=False, pipeline=[dict(type="BoxRandomCrop", size=24)]),
            ilsvrc,
        ),
        "ilsvrc_val": (ImageNetLocDataset(ilsvrc, "val", strict=False), ilsvrc),
        "shapes_loc": (
            ShapesLocDataset(
                os.path.join(tmp, "shapes_loc"),
                num_images=6,
                image_size=48,
                pipeline=[dict(type="BoxRandomCrop", size=32)],
            ),
            tmp,
        ),
    }
    # the flat ILSVRC val layout with a label file
    names = sorted(os.listdir(os.path.join(folder, "val", "bees")))
    with open(os.path.join(tmp, "val.txt"), "w") as fh:
        fh.write("".join(f"{n} {k % 3}\n" for k, n in enumerate(names)))
    built["flat_val"] = (
        ImageFolder(
            os.path.join(folder, "val", "bees"), ann_file=os.path.join(tmp, "val.txt"), classes=["x", "y", "z"]
        ),
        folder,
    )
    return built


def all_digests(tmp):
    return {name: dataset_digest(ds, root) for name, (ds, root) in build_all(tmp).items()}


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        digests = all_digests(tmp)
    with open(GOLDEN, "w") as fh:
        json.dump(digests, fh, sort_keys=True, separators=(",", ":"))
        fh.write("\n")
    print({k: v["len"] for k, v in digests.items()})
