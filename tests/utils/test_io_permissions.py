"""Files resdet writes get ordinary permissions (0666 less the umask: 0644 under umask 022),
not mkstemp's 0600, while the writes stay atomic (temporary file in the folder, fsync, rename);
a tiny classification run leaves every file of its work dir readable by others."""

import json
import os
import stat

import pytest
import torch

from resdet.utils import io as rio


@pytest.fixture
def set_umask():
    """``set_umask(mask)`` for the rest of the test; the previous umask comes back after it."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    return fig


WRITERS = {
    "atomic_write_bytes": (
        lambda path: rio.atomic_write_bytes(b"\x00\x01resdet", path),
        lambda path: open(path, "rb").read() == b"\x00\x01resdet",
    ),
    "atomic_write_text": (
        lambda path: rio.atomic_write_text("iter_4.pth\n", path),
        lambda path: open(path, encoding="utf-8").read() == "iter_4.pth\n",
    ),
    "atomic_write_json": (
        lambda path: rio.atomic_write_json({"bbox_AP": 0.5}, path),
        lambda path: json.load(open(path)) == {"bbox_AP": 0.5},
    ),
    "atomic_save": (
        lambda path: rio.atomic_save({"model": {"w": torch.arange(3)}, "iter": 4}, path),
        lambda path: rio.safe_load(path)["model"]["w"].tolist() == [0, 1, 2],
    ),
    "atomic_save_figure": (
        lambda path: rio.atomic_save_figure(_figure(), path),
        lambda path: open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n",
    ),
}
SUFFIX = {"atomic_save": ".pth", "atomic_save_figure": ".png", "atomic_write_json": ".json"}


def test_every_public_atomic_writer_is_covered():
    public = {name for name in dir(rio) if name.startswith("atomic_") and callable(getattr(rio, name))}
    assert public == set(WRITERS)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077, 0o002])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_atomic_writers_give_0666_less_the_umask(writer, umask, set_umask, tmp_path):
    write, check = WRITERS[writer]
    path = tmp_path / "out" / f"file{SUFFIX.get(writer, '.txt')}"
    set_umask(umask)
    write(str(path))  # the folder is created too
    assert _mode(path) == 0o666 & ~umask
    assert check(str(path))
    assert os.listdir(path.parent) == [path.name]  # the temporary file is gone
    assert os.umask(umask) == umask  # the writer left the process umask as it was


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_overwrite_replaces_a_private_file_with_a_readable_one(writer, set_umask, tmp_path):
    """A file written by an earlier version (0600) becomes 0644 when resdet rewrites it."""
    write, check = WRITERS[writer]
    path = tmp_path / f"file{SUFFIX.get(writer, '.txt')}"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    set_umask(0o022)
    write(str(path))
    assert _mode(path) == 0o644 and check(str(path))
    assert os.listdir(tmp_path) == [path.name]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(set_umask, tmp_path, monkeypatch):
    path = tmp_path / "last_checkpoint"
    rio.atomic_write_text("iter_2.pth\n", str(path))

    def no_rename(src, dst):
        assert os.path.dirname(src) == str(tmp_path) and _mode(src) == 0o644  # same folder, final mode
        raise OSError(28, "No space left on device")

    set_umask(0o022)
    monkeypatch.setattr(rio.os, "replace", no_rename)
    with pytest.raises(OSError, match="(?i)no space left"):
        rio.atomic_write_text("iter_4.pth\n", str(path))
    assert path.read_text() == "iter_2.pth\n" and os.listdir(tmp_path) == ["last_checkpoint"]


def test_write_is_flushed_and_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(rio.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(rio.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    rio.atomic_write_bytes(b"x" * 1000, str(tmp_path / "f.bin"))
    assert events[:2] == ["fsync", "replace"]  # then the folder's fsync
    assert (tmp_path / "f.bin").read_bytes() == b"x" * 1000


def test_tiny_classification_run_leaves_a_readable_work_dir(repo_root, tmp_path, set_umask, capsys):
    """tools/train_cls.py (a CIFAR ResNet-8 on 8 generated 16 x 16 shapes, 2 iterations with
    validation and checkpoints), then the curves picture of the run, all under umask 022:
    every file of the work dir and of the generated data set is readable by others."""
    from resdet.cli import plot_curves, train_cls

    data, work = tmp_path / "data", tmp_path / "work"
    cfg = tmp_path / "tiny_cls.py"
    base = os.path.join(repo_root, "configs", "_base_")
    cfg.write_text(f"""
_base_ = [{base + "/models/cifar_resnet.py"!r}, {base + "/datasets/shapes_cls.py"!r},
          {base + "/schedules/shapes_cls.py"!r}]
model = dict(num_classes=5, mean=(128.0, 128.0, 128.0), std=(64.0, 64.0, 64.0), backbone=dict(depth=8))
train_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(
    data_root={str(data)!r}, num_images=8, image_size=16, pipeline=[]))
val_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(data_root={str(data)!r}, num_images=4,
                                                               image_size=16))
param_scheduler = [dict(type="LinearWarmupLR", warmup_iters=1, start_factor=0.1), dict(type="CosineLR", min_lr=0.0)]
train_cfg = dict(max_iters=2, val_interval=1, checkpoint_interval=1, keep_last=2, log_interval=1,
                 amp=None, channels_last=False)
""")
    set_umask(0o022)
    assert train_cls.main([str(cfg), "--work-dir", str(work)]) == 0
    assert plot_curves.main([str(work), "--out", str(work / "curves.png")]) == 0
    capsys.readouterr()
    names = set(os.listdir(work))
    assert {
        "config.py",
        "env.json",
        "metrics.jsonl",
        "train.log",
        "last_checkpoint",
        "iter_1.pth",
        "best.pth",
        "final.pth",
        "curves.png",
    } <= names, names
    private = []
    for root in (work, data):
        for folder, dirs, files in os.walk(root):
            private += [os.path.join(folder, f) for f in files if _mode(os.path.join(folder, f)) & 0o044 != 0o044]
            private += [os.path.join(folder, d) for d in dirs if _mode(os.path.join(folder, d)) & 0o055 != 0o055]
    assert not private, f"not readable by group/others: {private}"
    assert all(_mode(work / n) == 0o644 for n in names if (work / n).is_file())
    assert not [n for n in names if n.startswith(".tmp-")]
