"""A corpus of bad checkpoints and awkward resumes, generated at test time: each case asserts
the exact outcome (error class and the file named in its one-line message, the checkpoint
resumed from instead, the note or warning logged).

Damaged files are made the way disks and copies damage them: cut short, or 4 KB flipped in
the middle of a tensor's bytes with the size unchanged (``torch.load`` still reads those
without complaint; only the content checksum recorded in ``meta['checksum']`` tells).
"""

import os
import pickle
import struct
import sys
import zipfile

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "engine"))
from engine_tiny import Crash, CrashAfter, single_thread, tiny_config  # noqa: E402,F401 (autouse fixture)

from resdet.apis import init_model  # noqa: E402
from resdet.engine import Trainer  # noqa: E402
from resdet.engine.checkpoint import find_latest_valid, load_training_checkpoint  # noqa: E402
from resdet.engine.logger import config_differences  # noqa: E402
from resdet.utils import io as rio  # noqa: E402
from resdet.utils.errors import CheckpointError  # noqa: E402

HIDDEN = 64  # fc1.weight: 64 x 48 float32 = 12 KB, room for a 4 KB flip inside one tensor


def run_cfg(work, **kwargs):
    cfg = tiny_config(str(work), **kwargs)
    cfg["model"]["hidden"] = HIDDEN
    return cfg


def train(work, **kwargs):
    Trainer(**run_cfg(work, **kwargs)).train()
    return str(work)


def tensor_regions(path):
    """``(offset, size)`` of each tensor's bytes in a torch zip checkpoint, largest first."""
    with zipfile.ZipFile(path) as zf:
        entries = [i for i in zf.infolist() if "/data/" in i.filename]
    with open(path, "rb") as fh:
        data = fh.read()
    regions = []
    for info in entries:
        assert info.compress_type == zipfile.ZIP_STORED
        name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
        regions.append((info.header_offset + 30 + name_len + extra_len, info.file_size))
    return sorted(regions, key=lambda r: -r[1])


def flip_bytes(path, nbytes=4096):
    """XOR ``nbytes`` in the middle of the largest tensor's data: same size, still loadable."""
    offset, size = tensor_regions(path)[0]
    assert size >= nbytes
    start = offset + (size - nbytes) // 2
    with open(path, "r+b") as fh:
        fh.seek(start)
        chunk = fh.read(nbytes)
        fh.seek(start)
        fh.write(bytes(b ^ 0xFF for b in chunk))


def one_line(err):
    text = str(err.value)
    assert "\n" not in text, text
    return text


def log_of(work):
    with open(os.path.join(str(work), "train.log"), encoding="utf-8") as fh:
        return fh.read()


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_CHECKPOINT",))


# ------------------------------------------------------------------------------ the checksum
def test_checkpoints_record_a_checksum_and_stay_weights_only(tmp_path):
    work = train(tmp_path / "run", max_iters=3)
    path = os.path.join(work, "final.pth")
    ckpt = torch.load(path, weights_only=True)  # plain torch reads it: tensors and plain types only
    assert ckpt["meta"]["checksum"].startswith("sha256:") and len(ckpt["meta"]["checksum"]) == 7 + 64
    assert rio.content_checksum(ckpt) == ckpt["meta"]["checksum"] and rio.verify_checksum(ckpt, path) is True
    assert ckpt["meta"]["optimizer"] == "SGD"
    # atomic_save adds it to a copy: the caller's dict is unchanged
    obj = {"model": {"w": torch.arange(4.0)}, "meta": {"resdet_version": "x"}}
    rio.atomic_save(obj, str(tmp_path / "w.pth"))
    assert "checksum" not in obj["meta"] and rio.safe_load(str(tmp_path / "w.pth"))["meta"]["checksum"]


def test_bit_flipped_tensor_data_is_refused_as_damaged(tmp_path):
    work = train(tmp_path / "run", max_iters=3)
    path = os.path.join(work, "final.pth")
    before, size = torch.load(path, weights_only=True), os.path.getsize(path)
    flip_bytes(path)
    after = torch.load(path, weights_only=True)  # torch reads the damaged file without a word
    assert os.path.getsize(path) == size
    assert any(not torch.equal(before["model"][k], after["model"][k]) for k in before["model"]) or any(
        not torch.equal(a, b)
        for a, b in zip(before["optimizer"]["state"][0].values(), after["optimizer"]["state"][0].values())
    )
    with pytest.raises(CheckpointError, match=r"final\.pth is damaged") as err:
        load_training_checkpoint(path)
    assert path in one_line(err) and "another checkpoint" in str(err.value)
    with pytest.raises(CheckpointError, match=r"final\.pth is damaged") as err:  # init_model too
        init_model({"type": "EngineTinyNet", "hidden": HIDDEN}, checkpoint=path)
    one_line(err)


def test_flipped_byte_in_the_plain_part_is_refused(tmp_path):
    # the checksum covers plain values too: 'SGD' -> 'SGE' inside the pickled meta
    work = train(tmp_path / "run", max_iters=3)
    path = os.path.join(work, "final.pth")
    data = open(path, "rb").read()
    assert data.count(b"SGD") == 1
    open(path, "wb").write(data.replace(b"SGD", b"SGE"))
    assert torch.load(path, weights_only=True)["meta"]["optimizer"] == "SGE"
    with pytest.raises(CheckpointError, match="final.pth is damaged"):
        rio.safe_load(path)


def test_bit_flipped_newest_checkpoint_falls_back_to_the_previous_by_name(tmp_path):
    work = train(tmp_path / "run", max_iters=6, checkpoint_interval=2, keep_last=3)
    flip_bytes(os.path.join(work, "final.pth"))
    with pytest.warns(UserWarning, match=r"resuming from .*iter_4\.pth instead of final\.pth \(refused: .*damaged"):
        resumed = Trainer(**run_cfg(work, max_iters=8, checkpoint_interval=2), resume=True)
    assert resumed.iter == 4 and resumed.last_checkpoint.endswith("iter_4.pth")
    log = log_of(work)
    assert "refusing to resume from " + os.path.join(work, "final.pth") in log and "is damaged" in log
    assert "resuming from " + os.path.join(work, "iter_4.pth") + " instead of final.pth" in log
    assert resumed.train()["iter"] == 8  # and training goes on from there


def test_explicit_resume_of_a_damaged_checkpoint_is_an_error_and_all_damaged_too(tmp_path):
    work = train(tmp_path / "run", max_iters=4, checkpoint_interval=2)
    for name in ("final.pth", "iter_2.pth"):
        flip_bytes(os.path.join(work, name))
    with pytest.raises(CheckpointError, match="iter_2.pth is damaged") as err:
        Trainer(**run_cfg(work, max_iters=6), resume=os.path.join(work, "iter_2.pth"))
    one_line(err)
    with pytest.raises(CheckpointError, match=r"no usable checkpoint in .*final\.pth is damaged.*iter_2\.pth") as err:
        find_latest_valid(work)
    assert "new work dir" in one_line(err)


# ------------------------------------------------------------------------------ other bad files
def test_truncated_checkpoint_is_named(tmp_path):
    work = train(tmp_path / "run", max_iters=3)
    path = os.path.join(work, "final.pth")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"final\.pth is truncated or not a torch checkpoint") as err:
        init_model({"type": "EngineTinyNet", "hidden": HIDDEN}, checkpoint=path)
    assert path in one_line(err)
    with pytest.raises(CheckpointError, match=r"no usable checkpoint .*final\.pth is truncated"):
        Trainer(**run_cfg(work, max_iters=6), resume=True)


def test_pickled_code_is_refused_without_suggesting_weights_only_false(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "meta": {}, "payload": _RunsCode()}, str(evil))
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(_RunsCode(), protocol=2))
    for path in (evil, plain):
        with pytest.raises(CheckpointError) as err:
            init_model({"type": "EngineTinyNet"}, checkpoint=str(path))
        text = one_line(err)
        assert text.startswith(f"checkpoint {path} was refused: ") and "could run code" in text
        assert "weights_only" not in text and "trusted source" not in text
        # nor in the chained traceback that --debug would print
        assert err.value.__cause__ is None and err.value.__suppress_context__
    with pytest.raises(CheckpointError, match=r"refers to (posix|os)\.system"):
        rio.safe_load(str(evil))
    assert not (tmp_path / "PWNED_BY_CHECKPOINT").exists()


def test_checkpoint_of_another_architecture_is_named(tmp_path):
    torch.manual_seed(0)
    classifier = init_model("resnet20_cifar")
    path = str(tmp_path / "cls.pth")
    rio.atomic_save({"model": classifier.state_dict(), "meta": {"config": "", "resdet_version": "0"}}, path)
    with pytest.raises(CheckpointError, match="another architecture") as err:
        init_model("shapes_frcnn", checkpoint=path)
    text = one_line(err)
    assert f"from {path} into FasterRCNN" in text and "its modules: backbone, head, preprocessor" in text
    assert len(text) < 1200 and "strict=False" in text


def test_a_folded_fast_path_model_gives_no_checkpoint(tmp_path):
    """The inference fast path (BN folded into the convolutions) refuses to give a state_dict,
    naming the way out; its tensors saved by hand (or a file saved by an older resdet, whose
    init_model folded) are refused by the loader, naming the BN keys it lacks."""
    from resdet.apis import optimize_for_inference

    torch.manual_seed(0)
    model = init_model("shapes_frcnn")
    fast = optimize_for_inference(model)
    with pytest.raises(CheckpointError, match="optimised for inference") as err:
        fast.state_dict()
    assert "save the state_dict of the model you passed to optimize_for_inference" in one_line(err)
    path = str(tmp_path / "folded.pth")
    rio.atomic_save({"model": {**dict(fast.named_parameters()), **dict(fast.named_buffers())}}, path)
    with pytest.raises(CheckpointError, match="missing keys: .*bn1.weight") as err:
        init_model("shapes_frcnn", checkpoint=path)
    assert "unexpected keys: " in one_line(err) and "conv1.bias" in one_line(err)
    rio.atomic_save({"model": model.state_dict()}, path)
    init_model("shapes_frcnn", checkpoint=path)  # the model optimised from still saves its own layout


# ------------------------------------------------------------------------------ resume vs config
def test_resume_after_changing_the_depth_names_checkpoint_and_ways_out(tmp_path):
    def cfg(depth, max_iters):
        out = tiny_config(str(tmp_path / "run"), max_iters=max_iters)
        out["model"] = dict(type="ImageClassifier", num_classes=3, backbone=dict(type="CifarResNet", depth=depth))
        out["train_dataloader"]["dataset"] = dict(type="EngineTinyDataset", num=16, size=8)
        return out

    Trainer(**cfg(8, 2)).train()
    path = str(tmp_path / "run" / "final.pth")
    with pytest.raises(CheckpointError) as err:
        Trainer(**cfg(14, 4), resume=True)
    text = one_line(err)
    assert text.startswith(f"checkpoint {path} does not match the config: the model's weights differ: ")
    assert "missing keys (backbone.layer1.1." in text
    assert "new work dir" in text and f"load_from='{path}'" in text


@pytest.mark.parametrize("saved,configured", [("AdamW", "SGD"), ("SGD", "AdamW")])
def test_resume_after_switching_the_optimizer(tmp_path, saved, configured):
    def cfg(opt, max_iters):
        out = run_cfg(tmp_path / "run", max_iters=max_iters)
        out["optimizer"] = dict(type=opt, lr=1e-3)
        return out

    Trainer(**cfg(saved, 2)).train()
    with pytest.raises(CheckpointError) as err:
        Trainer(**cfg(configured, 4), resume=True)
    text = one_line(err)
    assert (
        f"final.pth does not match the config: the checkpoint's optimizer is {saved}, "
        f"the config's is {configured}" in text
    )
    assert "new work dir" in text and "load_from=" in text


def test_old_checkpoint_without_checksum_loads_with_a_note(tmp_path):
    work = train(tmp_path / "run", max_iters=3)
    path = os.path.join(work, "final.pth")
    old = torch.load(path, weights_only=True)
    del old["meta"]["checksum"], old["meta"]["optimizer"]  # as written before both were recorded
    torch.save(old, path)
    with pytest.warns(UserWarning, match=r"final\.pth has no checksum .*loaded without checking"):
        resumed = Trainer(**run_cfg(work, max_iters=5), resume=True)
    assert resumed.iter == 3 and "final.pth has no checksum" in log_of(work)
    assert resumed.train()["iter"] == 5
    # an old AdamW checkpoint resumed under SGD: told apart by its hyperparameters
    work2 = str(tmp_path / "adamw")
    cfg = run_cfg(work2, max_iters=2)
    cfg["optimizer"] = dict(type="AdamW", lr=1e-3)
    Trainer(**cfg).train()
    old = torch.load(os.path.join(work2, "final.pth"), weights_only=True)
    del old["meta"]["checksum"], old["meta"]["optimizer"]
    torch.save(old, os.path.join(work2, "final.pth"))
    with pytest.warns(UserWarning, match="no checksum"):
        with pytest.raises(
            CheckpointError,
            match=r"optimizer has hyperparameters .*betas.*not the config's SGD "
            r"\(.*momentum",
        ):
            Trainer(**run_cfg(work2, max_iters=4), resume=True)


# ------------------------------------------------------------------------------ the work dir
def test_stale_temporary_files_are_removed_when_a_run_resumes(tmp_path):
    work = train(tmp_path / "run", max_iters=3)
    fd, ours = rio.create_temporary(work, "iter_6.pth")  # what a kill during a write leaves
    with os.fdopen(fd, "wb") as fh:
        fh.write(b"\0" * (1 << 20))
    fd, writing = rio.create_temporary(work, "final.pth")  # a write still in progress
    os.close(fd)
    others = [".tmp-notours.pth", ".tmp-0123456789ab", "x.tmp-0123456789abfinal.pth", "notes.txt"]
    for name in others:
        open(os.path.join(work, name), "wb").close()
    os.mkdir(os.path.join(work, ".tmp-0123456789abdir"))
    hour_ago = os.path.getmtime(ours) - 3600
    for name in [os.path.basename(ours)] + others + [".tmp-0123456789abdir"]:
        os.utime(os.path.join(work, name), (hour_ago, hour_ago))
    resumed = Trainer(**run_cfg(work, max_iters=5), resume=True)
    assert resumed.iter == 3
    assert not os.path.exists(ours) and os.path.exists(writing)
    assert all(os.path.exists(os.path.join(work, name)) for name in others + [".tmp-0123456789abdir"])
    assert f"removed {ours} (1.0 MB), a temporary file left by an interrupted write" in log_of(work)


def test_resume_keeps_config_py_and_saves_the_changed_config(tmp_path):
    work = str(tmp_path / "run")
    first = (
        "model = dict(type='EngineTinyNet', dropout=0.0)\n"
        "optimizer = dict(type='SGD', lr=0.1, momentum=0.9)\ntrain_cfg = dict(max_iters=3, seed=0)\n"
    )
    changed = first.replace("lr=0.1", "lr=0.05").replace("max_iters=3", "max_iters=6")
    Trainer(**run_cfg(work, max_iters=3), config_text=first).train()
    crashed = Trainer(
        **run_cfg(work, max_iters=6, checkpoint_interval=4),
        config_text=changed,
        resume=True,
        custom_hooks=[CrashAfter(5)],
    )
    with pytest.raises(Crash):
        crashed.train()
    assert open(os.path.join(work, "config.py")).read() == first
    assert open(os.path.join(work, "config.resumed-3.py")).read() == changed
    log = log_of(work)
    assert (
        "resuming with a changed config: 2 keys differ from config.py (optimizer.lr, "
        "train_cfg.max_iters); kept it, saved this run's config as config.resumed-3.py"
    ) in log
    # resuming again with the same (changed) config writes nothing new and warns nothing more
    Trainer(**run_cfg(work, max_iters=6), config_text=changed, resume=True)
    assert sorted(n for n in os.listdir(work) if n.startswith("config")) == ["config.py", "config.resumed-3.py"]
    assert log_of(work).count("changed config") == 1
    # a fresh (not resumed) run in the work dir starts over with its own config.py
    Trainer(**run_cfg(work, max_iters=1), config_text=changed)
    assert open(os.path.join(work, "config.py")).read() == changed


def test_config_differences_reads_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = "model = dict(type='A', backbone=dict(depth=20))\nsteps = [dict(type='S', m=[1, 2])]\nx = 1\n"
    new = (
        "model = dict(type='A', backbone=dict(depth=32))\nsteps = [dict(type='S', m=[1, 3])]\n"
        "y = __import__('os').system('touch PWNED')\n"
    )
    assert config_differences(old, new) == ["model.backbone.depth", "steps.0.m", "y", "x"]
    assert not os.path.exists("PWNED")
    assert config_differences("a = (\n", "a = 1\n") == ["line 1"]
