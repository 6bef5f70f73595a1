"""Expected failures met through the ``resdet`` command: a device this machine lacks, fp16 on a
CPU, outputs that cannot be written (checked before the work runs), a full disk, ``_base_``
cycles, JSON nested too deeply, damaged safetensors headers, an annotation file given as the
config, and config values torch would reject in its own words. Each ends in ONE line on stderr
naming the thing and the way out, exit code 2, no traceback.

Run in-process through ``resdet.cli.main`` (what the installed command calls) for speed; the
checkpoints named in cases that must fail before anything is loaded do not exist, so a check
that came too late would fail with another message.
"""

import errno
import json
import os
import struct

import pytest
import torch
from safetensors.torch import save as save_safetensors

from resdet.cli import main as resdet_main
from resdet.cli._errors import command
from resdet.utils import io as rio
from resdet.utils import outputs

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
MISSING_GPU = "cuda" if GPUS == 0 else f"cuda:{GPUS}"  # a GPU this machine does not have
FAR_GPU = f"cuda:{max(7, GPUS)}"
# the model of tiny_cfg: a CIFAR ResNet-8 on 4 x 4 images ends in 1 x 1 maps, where BatchNorm
# needs 2+ samples in a batch
TINY_CFG = """_base_ = ["resdet::_base_/models/cifar_resnet.py"]
model = dict(num_classes=2, mean=(128.0,) * 3, std=(64.0,) * 3, backbone=dict(depth=8))
train_dataloader = dict(batch_size={batch_size}, num_workers=0, collate="cls_collate",
                        dataset=dict(type="ImageFolder", data_root="{root}"))
optimizer = dict(type="SGD", lr=0.01, momentum=0.9)
train_cfg = dict(max_iters={iters}, log_interval=1, checkpoint_interval={ckpt}, seed=0, threads=1)
"""


def run(capsys, *argv):
    """``resdet ARGV...`` in this process: ``(exit code, stderr, stdout)``."""
    rc = resdet_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.err, captured.out


def error_line(rc, err, *expected):
    """The one error line (log lines of a started run may precede it), checked for exit code
    2, no traceback and every ``expected`` text."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("resdet ") and ": error: " in line]
    assert rc == 2 and len(lines) == 1, (rc, err)
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def tiny_images(root, bad=None):
    """Two classes of four 4 x 4 PNGs under ``root``; ``bad`` replaces a/0.png with a 0-byte
    file (``zero``), text (``text``), a link to nowhere (``dangling``) or to itself (``loop``)."""
    import cv2
    import numpy as np

    for cls, value in (("a", 60), ("b", 200)):
        os.makedirs(os.path.join(root, cls), exist_ok=True)
        for i in range(4):
            cv2.imwrite(os.path.join(root, cls, f"{i}.png"), np.full((4, 4, 3), value, np.uint8))
    if bad:
        path = os.path.join(root, "a", "0.png")
        os.remove(path)
        if bad == "zero":
            open(path, "wb").close()
        elif bad == "text":
            with open(path, "w") as fh:
                fh.write("<html>404</html>")
        elif bad == "dangling":
            os.symlink(os.path.join(root, "gone.png"), path)
        elif bad == "loop":
            os.symlink(path, path)
    return str(root)


def tiny_cfg(tmp_path, batch_size=2, iters=1, bad=None, ckpt=0):
    root = tiny_images(tmp_path / "imgs", bad)
    path = tmp_path / "tiny.py"
    path.write_text(TINY_CFG.format(batch_size=batch_size, root=root, iters=iters, ckpt=ckpt))
    return str(path)


def coco_pair(tmp_path):
    """A tiny COCO ground truth and a results file for ``resdet eval --ann/--results``."""
    gt = dict(
        images=[dict(id=1, file_name="1.png", height=40, width=50)],
        annotations=[dict(id=1, image_id=1, category_id=7, bbox=[5, 5, 20, 15], iscrowd=0, area=300.0)],
        categories=[dict(id=7, name="a")],
    )
    results = [dict(image_id=1, category_id=7, bbox=[5, 5, 20, 15], score=0.9)]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    return str(tmp_path / "gt.json"), str(tmp_path / "res.json")


def tiny_checkpoint(tmp_path):
    path = str(tmp_path / "tiny.pth")
    torch.save({"model": {"fc.weight": torch.zeros(2, 3)}, "meta": {"classes": ["a", "b"]}}, path)
    return path


# ------------------------------------------------------------------ devices
DEVICES = [
    ("gpu0", "is not a device name: use cpu, cuda, cuda:N"),
    ("cuda:x", "is not a device name"),
    (FAR_GPU, "CUDA GPU"),
    (MISSING_GPU, "CUDA GPU"),
]


@pytest.mark.parametrize("device,says", DEVICES, ids=[d for d, _ in DEVICES])
def test_eval_device_that_is_malformed_or_missing(capsys, device, says):
    rc, err, _ = run(capsys, "eval", "shapes_cls", "never_loaded.pth", "--device", device)
    error_line(rc, err, f"--device '{device}'", says)


@pytest.mark.parametrize("device,says", DEVICES[::2], ids=[d for d, _ in DEVICES[::2]])
def test_demo_device_that_is_malformed_or_missing(tmp_path, capsys, device, says):
    image = tiny_images(tmp_path / "imgs") + "/a/1.png"
    rc, err, _ = run(
        capsys, "demo", "shapes_cls", "never_loaded.pth", image, "--out", tmp_path / "out", "--device", device
    )
    error_line(rc, err, f"--device '{device}'", says)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ AMP, config values
def test_fp16_training_on_a_cpu_is_refused_before_anything_is_built(tmp_path, capsys):
    if GPUS:
        pytest.skip("this machine has a GPU: the trainer would run fp16 there")
    rc, err, _ = run(
        capsys, "train-cls", tiny_cfg(tmp_path), "--work-dir", tmp_path / "w", "--cfg-options", "train_cfg.amp=fp16"
    )
    error_line(
        rc, err, "train_cfg.amp='fp16' needs a CUDA GPU but this run is on cpu", "--cfg-options train_cfg.amp=bf16"
    )
    assert not (tmp_path / "w" / "train.log").exists()  # refused before the logger, the model, the data


def test_fp16_evaluation_on_a_cpu_is_refused_like_training(capsys):
    rc, err, _ = run(capsys, "eval", "shapes_cls", "never_loaded.pth", "--amp", "fp16", "--device", "cpu")
    error_line(rc, err, "--amp='fp16' needs a CUDA GPU but this run is on cpu; use --amp bf16 on the CPU")


BAD_VALUES = [
    ("optimizer.lr=inf", "optimizer.lr = inf (float) is not valid: expected a finite number > 0"),
    ("optimizer.lr=nan", "optimizer.lr = nan (float) is not valid"),
    ("optimizer.momentum=inf", "optimizer.momentum = inf (float) is not valid: expected a finite number"),
    ("train_dataloader.num_workers=-1", "train_dataloader.num_workers = -1 (int) is not valid"),
    ("train_dataloader.prefetch_factor=0", "train_dataloader.prefetch_factor = 0 (int) is not valid"),
    (
        "train_dataloader.pin_memory=yes",
        "train_dataloader.pin_memory = 'yes' (str) is not valid: expected True or False",
    ),
    ("train_dataloader.max_skipped_fraction=2", "train_dataloader.max_skipped_fraction = 2 (int)"),
]


@pytest.mark.parametrize("option,says", BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_bad_training_value_is_named_by_the_config_check(tmp_path, capsys, option, says):
    rc, err, _ = run(capsys, "train-cls", tiny_cfg(tmp_path), "--work-dir", tmp_path / "w", "--cfg-options", option)
    error_line(rc, err, says)


@pytest.mark.parametrize("subcommand", ["eval", "layer-response"])
def test_evaluation_loader_value_is_named_not_left_to_torch(tmp_path, capsys, subcommand):
    rc, err, _ = run(
        capsys,
        subcommand,
        "shapes_cls",
        "never_loaded.pth",
        "--cfg-options",
        "val_dataloader.num_workers=-1",
        *(["--out", tmp_path / "f.png"] if subcommand != "eval" else []),
    )
    error_line(rc, err, "val_dataloader.num_workers = -1 (int) is not valid: expected an integer >= 0")


@pytest.mark.parametrize("mode", ["results", "model"])
def test_metric_in_the_wrong_case_gets_a_suggestion(tmp_path, capsys, mode):
    gt, res = coco_pair(tmp_path)
    argv = ["--ann", gt, "--results", res] if mode == "results" else ["shapes_cls", "never_loaded.pth"]
    rc, err, _ = run(capsys, "eval", *argv, "--metric", "TOP1")
    error_line(rc, err, "unknown metric 'TOP1'; did you mean 'top1'")


def test_non_finite_loss_is_one_line_with_the_last_checkpoint(tmp_path, capsys):
    rc, err, _ = run(
        capsys,
        "train-cls",
        tiny_cfg(tmp_path, iters=4, ckpt=1),
        "--work-dir",
        tmp_path / "w",
        "--cfg-options",
        "optimizer.lr=1e30",
    )
    error_line(rc, err, "non-finite loss at iteration", "Last good checkpoint", "iter_1.pth", "--resume")


# ------------------------------------------------------------------ outputs checked up front
def _under_a_file(tmp_path, name):
    (tmp_path / "a_file").write_text("x")
    return str(tmp_path / "a_file" / name)


def _read_only(monkeypatch):
    """This suite runs as root, for whom permission bits do not stop a write: a read-only
    file system is simulated where the probe meets it (``os.open`` of the probe file)."""
    real_open = os.open

    def open_(path, flags, *args, **kwargs):
        if ".write-probe-" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(outputs.os, "open", open_)


WORK_DIRS = ["is_a_file", "under_a_file", "under_proc", "read_only"]


@pytest.mark.parametrize("case", WORK_DIRS)
def test_work_dir_that_cannot_be_written_is_named_before_training(tmp_path, capsys, monkeypatch, case):
    cfg = tiny_cfg(tmp_path)
    work = {
        "is_a_file": str(tmp_path / "imgs" / "a" / "1.png"),
        "under_a_file": _under_a_file(tmp_path, "w"),
        "under_proc": "/proc/resdet_work",
        "read_only": str(tmp_path / "ro" / "w"),
    }[case]
    says = {
        "is_a_file": "is a file, not a folder",
        "under_a_file": "a_file is a file, not a folder",
        "under_proc": "a system pseudo file system",
        "read_only": "is read-only",
    }[case]
    if case == "read_only":
        _read_only(monkeypatch)
    rc, err, _ = run(capsys, "train-cls", cfg, "--work-dir", work)
    error_line(rc, err, f"work dir {work}", says)


OUTPUTS = [  # (subcommand argv, the bad output, text)
    ("eval_json_is_a_folder", ["eval", "shapes_cls", "never_loaded.pth", "--json", "{dir}"], "is a folder"),
    (
        "eval_json_under_a_file",
        ["eval", "shapes_cls", "never_loaded.pth", "--json", "{file}/m.json"],
        "is a file, not a folder",
    ),
    ("eval_json_in_proc", ["eval", "shapes_cls", "never_loaded.pth", "--json", "/proc/m.json"], "pseudo file system"),
    (
        "eval_out_under_a_file",
        ["eval", "shapes_frcnn", "never_loaded.pth", "--out", "{file}/dets.json"],
        "is a file, not a folder",
    ),
    ("eval_json_read_only", ["eval", "shapes_cls", "never_loaded.pth", "--json", "{ro}/m.json"], "is read-only"),
    (
        "export_under_a_file",
        ["export", "shapes_cls", "never_loaded.pth", "--out", "{file}/m.onnx"],
        "is a file, not a folder",
    ),
    ("export_in_sys", ["export", "shapes_cls", "never_loaded.pth", "--out", "/sys/m.onnx"], "pseudo file system"),
    (
        "demo_folder_under_a_file",
        ["demo", "shapes_cls", "never_loaded.pth", "{image}", "--out", "{file}/demo"],
        "is a file, not a folder",
    ),
    (
        "demo_file_under_a_file",
        ["demo", "shapes_cls", "never_loaded.pth", "{image}", "--out", "{file}/r.png"],
        "is a file, not a folder",
    ),
    ("publish_under_a_file", ["publish", "never_loaded.pth", "{file}/shared"], "is a file, not a folder"),
    ("publish_in_proc", ["publish", "never_loaded.pth", "/proc/shared"], "pseudo file system"),
    (
        "layer_response_read_only",
        ["layer-response", "shapes_cls", "never_loaded.pth", "--out", "{ro}/f.png"],
        "is read-only",
    ),
]


@pytest.mark.parametrize("name,argv,says", OUTPUTS, ids=[o[0] for o in OUTPUTS])
def test_output_that_cannot_be_written_is_named_before_the_work(tmp_path, capsys, monkeypatch, name, argv, says):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir").mkdir()
    image = tiny_images(tmp_path / "imgs") + "/a/1.png"
    values = dict(file=tmp_path / "a_file", dir=tmp_path / "a_dir", ro=tmp_path / "ro", image=image)
    if "{ro}" in argv[-1]:
        _read_only(monkeypatch)
    argv = [a.format(**values) for a in argv]
    rc, err, _ = run(capsys, *argv)
    error_line(rc, err, argv[-1], says)  # the output is the last argument of every case
    assert not list((tmp_path / "a_dir").iterdir())


# ------------------------------------------------------------------ a full disk
def _disk_full(monkeypatch):
    """Writes through resdet.utils.io go to /dev/full: the kernel's own ENOSPC."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")

    def full(directory, name):
        return os.open("/dev/full", os.O_WRONLY), os.path.join(directory, ".tmp-000000000000" + name)

    monkeypatch.setattr(rio, "create_temporary", full)


def test_full_disk_while_publishing_names_the_file_and_the_disk(tmp_path, capsys, monkeypatch):
    checkpoint = tiny_checkpoint(tmp_path)
    _disk_full(monkeypatch)
    rc, err, _ = run(capsys, "publish", checkpoint, tmp_path / "shared.pth")
    error_line(rc, err, f"cannot write {tmp_path}/shared-", "no space left on the disk holding", "MB free")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("shared")] == []


def test_full_disk_while_writing_eval_json_names_it(tmp_path, capsys, monkeypatch):
    gt, res = coco_pair(tmp_path)
    _disk_full(monkeypatch)
    rc, err, out = run(
        capsys, "eval", "--ann", gt, "--results", res, "--metric", "mAP@[.5:.95]", "--json", tmp_path / "m.json"
    )
    error_line(rc, err, f"cannot write {tmp_path}/m.json: no space left on the disk")


def test_full_disk_while_training_names_the_file(tmp_path, capsys, monkeypatch):
    cfg = tiny_cfg(tmp_path)
    _disk_full(monkeypatch)
    rc, err, _ = run(capsys, "train-cls", cfg, "--work-dir", tmp_path / "w")
    error_line(rc, err, f"cannot write {tmp_path}/w/", "no space left on the disk holding")


def test_full_disk_outside_resdet_io_is_one_line_too(capsys):
    @command("fake")
    def main(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/run/metrics.jsonl")

    rc = main([])
    error_line(rc, capsys.readouterr().err, "no space left on device writing /data/run/metrics.jsonl")


# ------------------------------------------------------------------ configs that are not configs
def _write(path, text):
    path.write_text(text)
    return str(path)


CYCLES = {
    "self": {"a.py": "_base_ = ['./a.py']\n"},
    "pair": {"a.py": "_base_ = ['./b.py']\n", "b.py": "_base_ = './a.py'\nx = 1\n"},
    "three": {"a.py": "_base_ = ['./b.py']\n", "b.py": "_base_ = ['./c.py']\n", "c.py": "_base_ = ['./a.py']\n"},
}


@pytest.mark.parametrize("cycle", sorted(CYCLES))
def test_base_cycle_names_the_chain_of_files(tmp_path, capsys, cycle, time_limit):
    for name, text in CYCLES[cycle].items():
        _write(tmp_path / name, text)
    with time_limit(10):
        rc, err, _ = run(capsys, "print-config", tmp_path / "a.py")
    chain = {"self": "a.py -> ", "pair": "a.py -> ", "three": "b.py -> "}[cycle]
    line = error_line(rc, err, "config _base_ cycle:", chain, "remove one of these _base_ entries")
    assert line.count("a.py") == 2 if cycle != "three" else line.count("c.py") == 1


def _deep(tmp_path, name, depth=100_000):
    return _write(tmp_path / name, "[" * depth + "]" * depth)


def test_deep_json_given_as_config(tmp_path, capsys):
    path = _deep(tmp_path, "deep.json")
    rc, err, _ = run(capsys, "print-config", path)
    error_line(rc, err, f"config {path} is nested too deeply")


@pytest.mark.parametrize("which", ["--results", "--ann"])
def test_deep_json_given_as_results_or_ground_truth(tmp_path, capsys, which):
    gt, res = coco_pair(tmp_path)
    deep = _deep(tmp_path, "deep.json")
    rc, err, _ = run(
        capsys,
        "eval",
        "--ann",
        deep if which == "--ann" else gt,
        "--results",
        deep if which == "--results" else res,
        "--metric",
        "mAP@[.5:.95]",
    )
    error_line(rc, err, deep, "nested too deeply")


@pytest.mark.parametrize("subcommand", ["train-cls", "print-config", "eval"])
def test_annotation_file_given_as_the_config(tmp_path, capsys, subcommand):
    gt, _ = coco_pair(tmp_path)
    rc, err, _ = run(capsys, subcommand, gt, *(["never_loaded.pth"] if subcommand == "eval" else []))
    error_line(
        rc,
        err,
        f"{gt} is a COCO annotation file (it has 'images', 'annotations', 'categories'), not a config",
        "ann_file=",
    )


def test_results_file_given_as_the_config(tmp_path, capsys):
    _, res = coco_pair(tmp_path)
    rc, err, _ = run(capsys, "print-config", res)
    error_line(rc, err, f"{res} is a json list (a results or annotation file), not a config")


# ------------------------------------------------------------------ damaged safetensors headers
def _safetensors(tmp_path, damage):
    data = save_safetensors({"fc.weight": torch.zeros(2, 3)})
    if damage == "header_cut":
        data = data[:20]
    elif damage == "claims_2GiB":
        data = struct.pack("<Q", 2**31) + data[8:]
    elif damage == "length_cut":
        data = data[:5]
    path = tmp_path / "w.safetensors"
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    "damage,says",
    [
        ("header_cut", "its header length field says"),
        ("claims_2GiB", "says 2147483648 bytes"),
        ("length_cut", "is truncated or not a torch checkpoint"),
    ],
)
def test_damaged_safetensors_header_names_the_file(tmp_path, capsys, damage, says):
    path = _safetensors(tmp_path, damage)
    rc, err, _ = run(capsys, "publish", path, tmp_path / "out")
    error_line(rc, err, f"checkpoint {path}", says, "copy this one again")


def test_safetensors_claiming_2GiB_through_eval(tmp_path, capsys):
    path = _safetensors(tmp_path, "claims_2GiB")
    rc, err, _ = run(capsys, "eval", "shapes_cls", path)
    error_line(rc, err, f"checkpoint {path} is not a readable safetensors file")


# ------------------------------------------------------------------ as the user runs it
def test_installed_command_from_another_folder(tmp_path):
    """The installed ``resdet`` script (``python -m resdet`` where it is not on PATH), run from
    a folder of the user's: one line, exit 2, nothing written there."""
    import shutil
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    (tmp_path / "a_file").write_text("x")
    exe = [shutil.which("resdet")] if shutil.which("resdet") else [sys.executable, "-m", "resdet"]
    result = subprocess.run(
        exe + ["eval", "shapes_cls", "never_loaded.pth", "--json", "a_file/metrics.json"],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=repo),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"resdet eval: error: --json a_file/metrics.json cannot be created: "
        f"{tmp_path}/a_file is a file, not a folder; choose another path"
    )
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


def test_debug_shows_the_traceback_of_a_device_error(capsys):
    from resdet.utils.errors import DeviceError

    with pytest.raises(DeviceError, match="gpu0"):
        resdet_main(
            ["demo", "shapes_cls", "never_loaded.pth", __file__, "--out", "/tmp/x.png", "--device", "gpu0", "--debug"]
        )
