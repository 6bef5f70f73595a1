"""Every classification sample (ImageFolder, flat val, CIFAR-10, proxy32, shapes, ILSVRC
CLS-LOC, shapes loc) is identical to the one the list-of-tuples storage gave, augmentation
included (numpy's RNG seeded per sample, read in a shuffled order): the golden digests in
``tests/fixtures/cls_samples_golden.json`` were written by ``tests/data/cls_golden.py``
before the storage became arrays."""

import json
import os
import sys
import warnings

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cls_golden import GOLDEN, build_all, dataset_digest  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_all(str(tmp_path_factory.mktemp("golden")))


@pytest.mark.parametrize(
    "name",
    [
        "imagefolder_train",
        "imagefolder_val",
        "flat_val",
        "cifar_train",
        "cifar_test",
        "proxy32",
        "shapes_cls",
        "ilsvrc_train",
        "ilsvrc_val",
        "shapes_loc",
    ],
)
def test_samples_identical_to_the_list_storage(built, name):
    with open(GOLDEN) as fh:
        golden = json.load(fh)[name]
    ds, root = built[name]
    got = json.loads(json.dumps(dataset_digest(ds, root)))
    assert got["len"] == golden["len"] and got["classes"] == golden["classes"]
    assert got["labels"] == golden["labels"]
    for index, sample in golden["samples"].items():
        assert got["samples"][index] == sample, f"{name}[{index}] differs"


def test_samples_identical_when_read_from_the_cache(built, tmp_path):
    """The second start maps the cached index: the same samples as the scan gave."""
    from cls_golden import AUG

    from resdet.data.datasets import ImageFolder, ImageNetLocDataset

    with open(GOLDEN) as fh:
        golden = json.load(fh)
    folder = built["imagefolder_train"][1]
    ilsvrc = built["ilsvrc_train"][1]
    makers = {
        "imagefolder_train": lambda: ImageFolder(os.path.join(folder, "train"), pipeline=AUG, cache_dir=str(tmp_path)),
        "ilsvrc_train": lambda: ImageNetLocDataset(
            ilsvrc, "train", strict=False, cache_dir=str(tmp_path), pipeline=[dict(type="BoxRandomCrop", size=24)]
        ),
    }
    for name, make in makers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make()
            cached = make()
        store = cached.index if name == "imagefolder_train" else cached._store
        assert store.path is not None and store.path.startswith(str(tmp_path))
        root = folder if name == "imagefolder_train" else ilsvrc
        assert json.loads(json.dumps(dataset_digest(cached, root))) == golden[name], name
