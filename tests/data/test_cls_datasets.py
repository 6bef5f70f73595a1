"""Classification datasets: ImageNet folder layout (a drawn ImageFolder fixture; the full
hymenoptera photos as an optional check), flat ILSVRC val with a label file, unreadable images,
CIFAR-10 python batches, the synthetic shapes set."""

import os
import pickle
import shutil
import warnings

import numpy as np
import pytest

from resdet.data.datasets import CIFAR10, ImageFolder, ShapesClsDataset
from resdet.data.image_io import ImageReadError
from resdet.data.problems import Skipped


def test_imagefolder_layout(imagefolder_root):
    train = ImageFolder(os.path.join(imagefolder_root, "train"))
    val = ImageFolder(os.path.join(imagefolder_root, "val"))
    assert train.class_names == ["ants", "bees"] and len(train) == 12 and len(val) == 9
    assert train.labels == [0] * 7 + [1] * 5 and val.labels == [0] * 5 + [1] * 4
    gif = [i for i, (path, _) in enumerate(train.samples) if path.endswith(".gif")]
    assert gif == [2]
    sample = train[gif[0]]  # decoded like any other image (palette GIF -> RGB)
    assert sample["img"].dtype == np.uint8 and sample["img"].shape == (75, 100, 3)
    assert sample["label"] == 0 and sample["img_id"] == gif[0]
    gray = train[5]  # a grayscale JPEG comes back with three equal channels
    assert gray["img"].shape == (90, 150, 3) and (gray["img"][..., 0] == gray["img"][..., 2]).all()
    assert train[4]["img_path"].endswith(".png") and val[6]["img_path"].endswith(".jpeg")
    first = val[0]
    assert first["orig_size"] == first["img"].shape[:2] == (90, 150) and first["img_path"].endswith(".jpg")


def test_hymenoptera_folder_layout(shared_data):
    """Optional larger check on the full hymenoptera photos (no licence: never in the repo)."""
    root = os.path.join(shared_data, "hymenoptera")
    train = ImageFolder(os.path.join(root, "train"))
    val = ImageFolder(os.path.join(root, "val"))
    assert train.class_names == ["ants", "bees"] and len(train) == 245 and len(val) == 153
    assert sorted(set(train.labels)) == [0, 1] and 100 < sum(train.labels) < 145
    gif = [i for i, (path, _) in enumerate(train.samples) if path.endswith(".gif")]
    assert len(gif) == 1
    sample = train[gif[0]]  # decoded like any other image
    assert sample["img"].dtype == np.uint8 and sample["img"].ndim == 3 and sample["img"].shape[2] == 3
    assert sample["label"] == 0 and sample["img_id"] == gif[0]
    first = val[0]
    assert first["orig_size"] == first["img"].shape[:2] and first["img_path"].endswith(".jpg")


def _copy_images(imagefolder_root, dst, count=3):
    src = os.path.join(imagefolder_root, "val", "bees")
    names = sorted(os.listdir(src))[:count]
    for name in names:
        shutil.copy(os.path.join(src, name), os.path.join(dst, name))
    return names


def test_unreadable_images_are_skipped_and_counted(imagefolder_root, tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
    _copy_images(imagefolder_root, str(tmp_path / "a"), 2)
    good = (tmp_path / "a").iterdir().__next__().read_bytes()
    (tmp_path / "b" / "empty.jpg").write_bytes(b"")
    (tmp_path / "b" / "cut.jpg").write_bytes(good[: len(good) // 3])
    (tmp_path / "b" / "notes.png").write_bytes(b"not an image at all")
    ds = ImageFolder(str(tmp_path))
    assert len(ds) == 5 and ds.labels == [0, 0, 1, 1, 1]
    results = []
    for i in range(len(ds)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results.append(ds[i])
        if isinstance(results[-1], Skipped):
            assert any(os.path.basename(ds.samples[i][0]) in str(w.message) for w in caught)
            assert results[-1].index == i and results[-1].file == ds.samples[i][0]
    assert [isinstance(r, Skipped) for r in results] == [False, False, True, True, True]
    assert ds.num_skipped == 3
    strict = ImageFolder(str(tmp_path), strict=True)
    with pytest.raises(ImageReadError, match="empty.jpg"):
        strict[3]


def test_flat_val_folder_with_label_files(imagefolder_root, tmp_path):
    flat = tmp_path / "val"
    flat.mkdir()
    names = _copy_images(imagefolder_root, str(flat), 3)
    (tmp_path / "synsets.txt").write_text("n01\nn02\nn03\n")
    (tmp_path / "val.txt").write_text(f"{names[0]} 2\n{names[1]} 0\n{names[2]} 1\n")
    ds = ImageFolder(str(flat), ann_file=str(tmp_path / "val.txt"), classes=str(tmp_path / "synsets.txt"))
    assert ds.class_names == ["n01", "n02", "n03"] and ds.labels == [2, 0, 1]
    assert ds[0]["label"] == 2 and ds[0]["img"].shape[2] == 3
    (tmp_path / "names.txt").write_text(f"{names[0]} n03\n{names[1]} n01\n{names[2]} n02\n")
    by_name = ImageFolder(str(flat), ann_file=str(tmp_path / "names.txt"), classes=["n01", "n02", "n03"])
    assert by_name.labels == [2, 0, 1]
    # devkit style: one 1-based label per line for the sorted image files
    (tmp_path / "gt.txt").write_text("3\n1\n2\n")
    devkit = ImageFolder(str(flat), ann_file=str(tmp_path / "gt.txt"), classes=["x", "y", "z"], label_offset=1)
    assert devkit.labels == [2, 0, 1] and devkit.samples[0][0].endswith(sorted(names)[0])
    (tmp_path / "bad.txt").write_text(f"{names[0]} 7\n")
    with pytest.raises(ValueError, match="outside 0..2"):
        ImageFolder(str(flat), ann_file=str(tmp_path / "bad.txt"), classes=["x", "y", "z"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolder(str(tmp_path / "nowhere"))


def write_fake_cifar(root, per_batch=20, test=10, seed=0):
    """CIFAR-10 python batches in the official format (dicts of bytes keys)."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    for name, count in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, count)],
            b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            b"filenames": [f"{i}.png".encode() for i in range(count)],
        }
        with open(os.path.join(root, name), "wb") as fh:
            pickle.dump(batch, fh)
    meta = {
        b"label_names": [
            n.encode()
            for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
        ],
        b"num_vis": 3072,
    }
    with open(os.path.join(root, "batches.meta"), "wb") as fh:
        pickle.dump(meta, fh)


def test_cifar10_batches_and_split(tmp_path):
    root = str(tmp_path / "cifar-10-batches-py")
    write_fake_cifar(root)
    train = CIFAR10(str(tmp_path), split="train")
    test = CIFAR10(str(tmp_path), split="test")
    assert len(train) == 100 and len(test) == 10 and train.class_names[9] == "truck"
    with open(os.path.join(root, "data_batch_1"), "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    first = raw[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)  # channel planes -> HWC
    sample = train[0]
    np.testing.assert_array_equal(sample["img"], first)
    assert sample["label"] == raw[b"labels"][0] and sample["img"].shape == (32, 32, 3)
    part = CIFAR10(str(tmp_path), split="train", val_size=10)
    held = CIFAR10(str(tmp_path), split="val", val_size=10)
    assert len(part) == 90 and len(held) == 10
    together = np.concatenate([part.images, held.images]).reshape(100, -1)
    assert len({row.tobytes() for row in together}) == 100  # disjoint, nothing lost
    np.testing.assert_allclose(train.pixel_mean(), train.images.mean(0).transpose(2, 0, 1), rtol=1e-6)
    with pytest.raises(ValueError, match="val_size"):
        CIFAR10(str(tmp_path), split="val")
    with open(os.path.join(root, "test_batch"), "wb") as fh:  # a pickle that would run code
        pickle.dump({b"data": os.system}, fh)
    with pytest.raises(ValueError, match="refusing"):
        CIFAR10(str(tmp_path), split="test")


def test_shapes_cls_dataset_generates_once(tmp_path):
    ds = ShapesClsDataset(str(tmp_path), split="train", num_images=15, image_size=32)
    assert len(ds) == 15 and ds.class_names == ["circle", "square", "triangle", "star", "cross"]
    assert np.bincount(ds.labels).tolist() == [3, 3, 3, 3, 3]
    sample = ds[4]
    assert sample["img"].shape == (32, 32, 3) and sample["label"] == 4
    stamp = os.path.getmtime(ds.samples[0][0])
    again = ShapesClsDataset(str(tmp_path), split="train", num_images=15, image_size=32)
    assert os.path.getmtime(again.samples[0][0]) == stamp  # not regenerated
    val = ShapesClsDataset(str(tmp_path), split="val", num_images=5, image_size=32)
    assert not np.array_equal(val[0]["img"], ds[0]["img"])
    smaller = ShapesClsDataset(str(tmp_path), split="train", num_images=10, image_size=32)
    assert len(smaller) == 10  # regenerated without stale files


def test_generation_lock_waits_for_another_run_and_breaks_stale_locks(tmp_path):
    import time

    from resdet.data.synthetic.cache import generation_lock as _generation_lock

    split = str(tmp_path / "train")
    lock = split + ".lock"
    open(lock, "w").close()  # another run is generating
    calls = []
    done = lambda: calls.append(1) or len(calls) >= 3  # noqa: E731 - finishes on the 3rd poll
    start = time.time()
    with _generation_lock(split, done, poll_s=0.01):
        pass
    assert len(calls) == 3 and os.path.exists(lock) and time.time() - start < 5  # waited, left its lock
    os.utime(lock, (time.time() - 3600, time.time() - 3600))  # a lock left by a killed run
    with _generation_lock(split, lambda: False, poll_s=0.01):
        assert open(lock).read() == str(os.getpid())
    assert not os.path.exists(lock)
