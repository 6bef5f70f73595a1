"""reproduce's run bookkeeping: a finished run is reused, an interrupted one resumes only under the
same settings, and a folder left by other settings is moved aside (never resumed, never deleted)."""

import json
import os

from resdet.apis.reproduce import train_once


def _fake_trainer(work_dir, calls, finish=True):
    def train():
        calls.append(sorted(os.listdir(work_dir)))
        with open(os.path.join(work_dir, "iter_5.pth"), "w") as fh:
            fh.write("partial")
        if not finish:
            raise KeyboardInterrupt
        with open(os.path.join(work_dir, "final.pth"), "w") as fh:
            fh.write("done")

    return train


def test_reuse_resume_and_stale_runs(tmp_path):
    work_dir = str(tmp_path / "resnet56_it1600_s0")
    wanted = dict(iterations=1600, recipe="abc")
    calls = []
    # interrupted: the stamp says which settings the partial run has, and that it is unfinished
    try:
        train_once(work_dir, wanted, _fake_trainer(work_dir, calls, finish=False))
    except KeyboardInterrupt:
        pass
    with open(os.path.join(work_dir, "reproduce_settings.json")) as fh:
        assert json.load(fh) == dict(wanted, finished=False)
    # the same settings resume in place: the partial checkpoint is still there for the trainer
    assert train_once(work_dir, wanted, _fake_trainer(work_dir, calls)) is True
    assert calls[-1] == ["iter_5.pth", "reproduce_settings.json"]
    with open(os.path.join(work_dir, "reproduce_settings.json")) as fh:
        assert json.load(fh)["finished"] is True
    # finished under the same settings: reused, not trained
    assert train_once(work_dir, wanted, _fake_trainer(work_dir, calls)) is False
    assert len(calls) == 2
    # another recipe: the old run is moved aside and the new one starts from an empty folder
    logged = []
    other = dict(wanted, recipe="xyz")
    assert train_once(work_dir, other, _fake_trainer(work_dir, calls), log=logged.append) is True
    assert calls[-1] == ["reproduce_settings.json"]
    assert sorted(os.listdir(work_dir + ".stale1")) == ["final.pth", "iter_5.pth", "reproduce_settings.json"]
    assert logged == [f"[reproduce] {work_dir} holds a run with other settings: moved to {work_dir}.stale1"]
    # a folder without any record (an older version's partial run) is not resumed either
    os.remove(os.path.join(work_dir, "reproduce_settings.json"))
    os.remove(os.path.join(work_dir, "final.pth"))
    assert train_once(work_dir, other, _fake_trainer(work_dir, calls), log=logged.append) is True
    assert calls[-1] == ["reproduce_settings.json"] and os.path.isdir(work_dir + ".stale2")


def test_a_run_is_the_same_run_in_another_folder():
    """Where the runs and the data are, and how many processes train them, are not part of what
    a run's stamp compares: a work root named by an absolute path, or moved, is reused."""
    from resdet.apis.reproduce import ReproduceSettings, trained_settings
    from resdet.apis.reproduce_det import DetectionSettings

    here = ReproduceSettings()
    there = ReproduceSettings(work_root="/elsewhere/runs", data_root="/elsewhere/proxy32", workers=1, threads=2)
    assert trained_settings(here) == trained_settings(there)
    assert "data_root" not in trained_settings(here) and "iterations" in trained_settings(here)
    assert trained_settings(ReproduceSettings(iterations=100)) != trained_settings(here)
    assert trained_settings(ReproduceSettings(seed=1)) != trained_settings(here)
    det = trained_settings(DetectionSettings(cls_data_root="/x", data_root="/y", timing_images=3))
    assert det == trained_settings(DetectionSettings()) and det["cls_iterations"] == DetectionSettings().cls_iterations
