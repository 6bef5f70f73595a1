"""A closed standard output (``| head``, a ``tee`` that exits, ``> /dev/full``) never stops a
run nor prints a traceback; a second run on a busy work dir is refused by the command."""

import os
import subprocess
import sys

import pytest

from resdet.utils.console import EXIT_BROKEN_PIPE


def _read(path) -> str:
    with open(path) as fh:
        return fh.read()


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), RESDET_NO_PROGRESS="1")


def _resdet(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "resdet", *args], env=_env(), text=True, **kwargs)


@pytest.fixture
def tiny_cls(tmp_path, repo_root):
    """A CIFAR ResNet-8 on 8 generated 16 x 16 shapes: 12 iterations, a line each."""
    path, base = tmp_path / "tiny_cls.py", os.path.join(repo_root, "configs", "_base_")
    path.write_text(f"""
_base_ = [{base + "/models/cifar_resnet.py"!r}, {base + "/datasets/shapes_cls.py"!r},
          {base + "/schedules/shapes_cls.py"!r}]
model = dict(num_classes=5, mean=(128.0, 128.0, 128.0), std=(64.0, 64.0, 64.0), backbone=dict(depth=8))
train_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(
    data_root={str(tmp_path / "data")!r}, num_images=8, image_size=16, pipeline=[]))
val_dataloader = None
param_scheduler = [dict(type="LinearWarmupLR", warmup_iters=1, start_factor=0.1), dict(type="CosineLR", min_lr=0.0)]
train_cfg = dict(max_iters=12, checkpoint_interval=5, keep_last=1, log_interval=1, amp=None, channels_last=False)
""")
    return str(path)


def test_training_goes_on_when_its_reader_goes_away(tiny_cls, tmp_path):
    work = str(tmp_path / "work")
    # ``resdet train-cls ... | head -n 2``: the reader takes two lines and leaves
    proc = _resdet("train-cls", tiny_cls, "--work-dir", work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = [proc.stdout.readline() for _ in range(2)]
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    assert all(lines), lines
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err and "Logging error" not in err, err
    log = _read(os.path.join(work, "train.log"))
    stopped = [line for line in log.splitlines() if "console output stopped" in line]
    assert len(stopped) == 1 and "BrokenPipeError" in stopped[0] and "the run goes on" in stopped[0]
    assert "iter 12/12" in log and os.path.join(work, "final.pth") in log  # it finished, and says so
    assert log.index("console output stopped") < log.index("iter 12/12")


def test_print_config_into_a_closed_pipe_is_quiet(tiny_cls):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte (| head -n 0)
    proc = _resdet("print-config", tiny_cls, stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_BROKEN_PIPE == 141  # what cat or grep report there
    assert err == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_eval_into_a_full_device_is_one_line(repo_root):
    fixture = os.path.join(repo_root, "tests", "fixtures", "coco_eval_fixture")
    with open("/dev/full", "w") as full:
        proc = _resdet(
            "eval",
            "--ann",
            os.path.join(fixture, "instances_val2014_100.json"),
            "--results",
            os.path.join(fixture, "instances_val2014_fakebbox100_results.json"),
            "--metric",
            "bbox",
            stdout=full,
            stderr=subprocess.PIPE,
        )
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert err.count("\n") == 1 and err.startswith(
        "resdet eval: error: cannot write to standard output (No space left on device)"
    ), err
