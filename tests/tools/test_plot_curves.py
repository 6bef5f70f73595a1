"""tools/analysis/plot_curves.py (resdet.cli.plot_curves): the keys and axes it picks from
what each run's metrics.jsonl holds (classification: error curves; detection: training loss
and COCO mAP in percent), runs of different kinds together, runs with little or nothing
logged, unreadable files; then a real tiny detection run through the wrapper's defaults."""

import json
import math
import os
import subprocess
import sys

import pytest

from resdet.cli import plot_curves as cli
from resdet.engine.logger import read_metrics
from resdet.visualization import curves as pc

LOSS_AXIS, AP_AXIS, ERR_AXIS = "training loss", "COCO box mAP@[.5:.95] (%)", "error (%)"


def _write(path, records, tail=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
        fh.write(tail)
    return os.path.dirname(path)


def _det_records(iters=(20, 40, 60, 80), val_iters=(40, 80)):
    """As LoggerHook writes them for Faster R-CNN: the loss dict, roi_acc, timing; COCO keys
    with -1 for empty area ranges and NaN for a class without ground truth."""
    records = []
    for i in iters:
        records.append(
            {
                "mode": "train",
                "iter": i,
                "epoch": 0,
                "lr": 0.02,
                "loss": 3.0 - i / 40,
                "loss_bbox": 0.1,
                "loss_cls": 1.0,
                "loss_rpn_bbox": 0.01,
                "loss_rpn_cls": 0.6,
                "roi_acc": 0.9,
                "time": 1.2,
                "data_time": 0.01,
                "eta_s": 10.0,
                "num_skipped": 0,
            }
        )
        if i in val_iters:
            records.append(
                {
                    "mode": "val",
                    "iter": i,
                    "epoch": 0,
                    "bbox_AP": i / 200,
                    "bbox_AP50": i / 100,
                    "bbox_APm": -1.0,
                    "bbox_AP/cross": float("nan"),
                    "num_skipped": 0,
                    "num_images": 3,
                }
            )
    return records


def _cls_records(iters=(10, 20, 30), val_iters=(20, 30)):
    records = []
    for i in iters:
        records.append(
            {
                "mode": "train",
                "iter": i,
                "epoch": 0,
                "lr": 0.1,
                "loss": 2.0,
                "loss_cls": 2.0,
                "train_err": 0.5 - i / 100,
                "time": 0.1,
                "data_time": 0.0,
                "eta_s": 1.0,
                "num_skipped": 0,
            }
        )
        if i in val_iters:
            records.append(
                {
                    "mode": "val",
                    "iter": i,
                    "epoch": 0,
                    "top1_err": 0.6 - i / 100,
                    "top5_err": 0.2,
                    "topk_num_samples": 10,
                }
            )
    return records


def _curves(counts):
    return {(c["run"], c["mode"]): (c["key"], c["points"], c["ylabel"]) for c in counts.curves}


def _axes(counts):
    return [(a["panel"], a["side"], a["ylabel"]) for a in counts.axes]


def test_detection_run_plots_loss_and_coco_map_in_percent(tmp_path):
    run = _write(str(tmp_path / "frcnn" / "metrics.jsonl"), _det_records())
    out = str(tmp_path / "det.png")
    counts = pc.plot_curves([run], out)
    assert counts == {"frcnn": {"train": 4, "val": 2}} and os.path.getsize(out) > 5000
    assert _curves(counts) == {("frcnn", "train"): ("loss", 4, LOSS_AXIS), ("frcnn", "val"): ("bbox_AP", 2, AP_AXIS)}
    assert _axes(counts) == [(0, "left", LOSS_AXIS), (0, "right", AP_AXIS)]
    last = {c["mode"]: c["last"] for c in counts.curves}
    assert last["train"] == pytest.approx(1.0) and last["val"] == pytest.approx(40.0)  # 0.4 -> 40 %
    assert {a["xlabel"] for a in counts.axes} == {"iterations"} and not counts.warnings


def test_classification_run_keeps_the_error_curves(tmp_path):
    run = _write(str(tmp_path / "resnet20" / "metrics.jsonl"), _cls_records())
    counts = pc.plot_curves([run], str(tmp_path / "cls.png"))
    assert counts == {"resnet20": {"train": 3, "val": 2}}
    assert _curves(counts) == {
        ("resnet20", "train"): ("train_err", 3, ERR_AXIS),
        ("resnet20", "val"): ("top1_err", 2, ERR_AXIS),
    }
    assert _axes(counts) == [(0, "left", ERR_AXIS)]  # one axis, as the paper's figures
    assert [c["last"] for c in counts.curves] == pytest.approx([20.0, 30.0])
    # explicit keys and percent=False still work as before
    raw = pc.plot_curves([run], str(tmp_path / "raw.png"), train_key="train_err", val_key="top5_err", percent=False)
    assert raw == {"resnet20": {"train": 3, "val": 2}} and _axes(raw) == [(0, "left", "error")]
    assert [c["last"] for c in raw.curves] == pytest.approx([0.2, 0.2])


def test_runs_of_different_kinds_go_into_panels(tmp_path):
    """Classification, detection, detection without validation, validation only, and an
    empty log (a run that just started), in one call: nothing raises, each run joins the panel
    of what it logged, its colour and legend entry stay."""
    runs = [
        _write(str(tmp_path / "cls" / "metrics.jsonl"), _cls_records()),
        _write(str(tmp_path / "det" / "metrics.jsonl"), _det_records()),
        _write(str(tmp_path / "det_noval" / "metrics.jsonl"), _det_records(val_iters=())),
        _write(str(tmp_path / "det_valonly" / "metrics.jsonl"), [r for r in _det_records() if r["mode"] == "val"]),
        _write(str(tmp_path / "fresh" / "metrics.jsonl"), [], tail='{"mode": "train", "it'),
    ]
    counts = pc.plot_curves(runs, str(tmp_path / "mixed.png"), title="mixed")
    assert counts == {
        "cls": {"train": 3, "val": 2},
        "det": {"train": 4, "val": 2},
        "det_noval": {"train": 4, "val": 0},
        "det_valonly": {"train": 0, "val": 2},
        "fresh": {"train": 0, "val": 0},
    }
    assert _axes(counts) == [(0, "left", ERR_AXIS), (1, "left", LOSS_AXIS), (1, "right", AP_AXIS)]
    curves = _curves(counts)
    assert curves[("det_noval", "train")] == ("loss", 4, LOSS_AXIS)
    assert curves[("det_valonly", "val")] == ("bbox_AP", 2, AP_AXIS)
    assert set(curves) == {
        ("cls", "train"),
        ("cls", "val"),
        ("det", "train"),
        ("det", "val"),
        ("det_noval", "train"),
        ("det_valonly", "val"),
    }
    assert len(counts.warnings) == 1 and "fresh: nothing to plot" in counts.warnings[0]


def test_runs_with_one_kind_of_key_or_no_validation(tmp_path):
    # only losses logged (no train_err, no validation): the loss on one axis
    loss_only = _write(str(tmp_path / "a" / "metrics.jsonl"), _det_records(val_iters=()))
    counts = pc.plot_curves([loss_only], str(tmp_path / "a.png"))
    assert counts == {"a": {"train": 4, "val": 0}} and _axes(counts) == [(0, "left", LOSS_AXIS)]
    # only validation records, all COCO values undefined (-1) but one
    val_only = [
        {"mode": "val", "iter": 5, "bbox_AP": -1.0},
        {"mode": "val", "iter": 10, "bbox_AP": 0.25},
        {"mode": "val", "iter": 15, "bbox_AP": float("nan")},
        {"mode": "val", "bbox_AP": 0.3},
        {"mode": "val", "iter": "x", "bbox_AP": 0.3},
        [1, 2],
        {"mode": "test", "iter": 1},
    ]
    path = tmp_path / "b" / "metrics.jsonl"
    _write(str(path), [])
    path.write_text("\n".join(json.dumps(r) for r in val_only) + "\n")
    counts = pc.plot_curves([str(path)], str(tmp_path / "b.png"))  # the file itself works too
    assert counts == {"b": {"train": 0, "val": 1}} and _axes(counts) == [(0, "left", AP_AXIS)]
    assert counts.curves[0]["last"] == pytest.approx(25.0)
    # a classification run validated on top-5 only, with a segmentation-style key present
    top5 = [{"mode": "train", "iter": 1, "train_err": 0.5}, {"mode": "val", "iter": 1, "top5_err": 0.1}]
    counts = pc.plot_curves([_write(str(tmp_path / "c" / "metrics.jsonl"), top5)], str(tmp_path / "c.png"))
    assert _curves(counts) == {("c", "train"): ("train_err", 1, ERR_AXIS), ("c", "val"): ("top5_err", 1, ERR_AXIS)}


def test_explicit_keys_missing_in_some_runs_warn_missing_everywhere_fail(tmp_path, capsys):
    det = _write(str(tmp_path / "det" / "metrics.jsonl"), _det_records())
    cls = _write(str(tmp_path / "cls" / "metrics.jsonl"), _cls_records())
    counts = pc.plot_curves([det, cls], str(tmp_path / "k.png"), val_key="bbox_AP50")
    assert counts == {"det": {"train": 4, "val": 2}, "cls": {"train": 3, "val": 0}}
    assert counts.warnings == [
        f"cls: no val 'bbox_AP50' values in {os.path.join(cls, 'metrics.jsonl')} "
        "(val keys: top1_err, top5_err, topk_num_samples)"
    ]
    assert ("det", "val") in _curves(counts) and _curves(counts)[("det", "val")][2] == "COCO box mAP@0.5 (%)"
    with pytest.raises(
        ValueError,
        match="no run logged 'bbox_AP' in its val records; keys present: top1_err, top5_err, topk_num_samples",
    ):
        pc.plot_curves([cls], str(tmp_path / "x.png"), val_key="bbox_AP")
    assert cli.main([cls, "--val-key", "bbox_AP", "--out", str(tmp_path / "x.png")]) == 2
    assert "plot-curves: error: no run logged 'bbox_AP'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.png")


def test_unreadable_metrics_give_one_error_naming_the_file(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=f"{missing}/metrics.jsonl does not exist"):
        pc.plot_curves([str(missing)], str(tmp_path / "o.png"))
    folder = tmp_path / "odd"
    (folder / "metrics.jsonl").mkdir(parents=True)  # unreadable even as root
    with pytest.raises(OSError, match=f"cannot read {folder}/metrics.jsonl"):
        read_metrics(str(folder))
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "metrics.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff binary\n")
    with pytest.raises(ValueError, match=f"{garbage}/metrics.jsonl holds no JSON records"):
        read_metrics(str(garbage))
    good = _write(str(tmp_path / "good" / "metrics.jsonl"), _cls_records())
    for bad, text in ((missing, "does not exist"), (folder, "cannot read"), (garbage, "no JSON records")):
        assert cli.main([good, str(bad), "--out", str(tmp_path / "o.png")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("plot-curves: error: ") and text in err[0]
        assert f"{bad}/metrics.jsonl" in err[0]
    assert not os.path.exists(tmp_path / "o.png")  # every file is read before anything is drawn


def test_labels_stay_unique_and_cut_lines_are_skipped(tmp_path):
    a = _write(str(tmp_path / "x" / "work" / "metrics.jsonl"), _cls_records(), tail='{"mode": "train", "ite')
    b = _write(str(tmp_path / "y" / "work" / "metrics.jsonl"), _det_records())
    counts = pc.plot_curves([a, b], str(tmp_path / "u.png"))
    assert counts == {"work": {"train": 3, "val": 2}, "work (2)": {"train": 4, "val": 2}}
    with pytest.raises(ValueError, match="2 work dirs but 1 labels"):
        pc.plot_curves([a, b], str(tmp_path / "u.png"), labels=["one"])


def test_extract_curve_keeps_the_newest_value_of_a_repeated_iteration():
    records = [
        {"mode": "train", "iter": 2, "loss": 1.0},
        {"mode": "train", "iter": 1, "loss": 2.0},
        {"mode": "train", "iter": 2, "loss": 0.5},
        {"mode": "train", "iter": 3, "loss": math.inf},
        {"mode": "train", "iter": 4, "loss": True},
        {"mode": "val", "iter": 5, "loss": 9.0},
    ]
    assert pc.extract_curve(records, "train", "loss") == ([1, 2], [2.0, 0.5])
    assert pc.choose_keys(records) == ("loss", None)


def test_real_tiny_detection_run_through_the_wrapper_defaults(repo_root, tmp_path):
    """tools/train_det.py on 4 generated 96 x 96 shapes images (2 iterations, validation at 1
    and 2), then ``python tools/analysis/plot_curves.py WORK --out PNG`` from another folder."""
    from resdet.cli import train_det

    root, work = str(tmp_path / "shapes"), str(tmp_path / "work")
    rc = train_det.main(
        [
            os.path.join(repo_root, "configs", "shapes_frcnn.py"),
            "--work-dir",
            work,
            "--cfg-options",
            "pretrain=None",
            "model.init_cfg=None",
            f"train_dataloader.dataset.data_root={root}",
            f"val_dataloader.dataset.data_root={root}",
            "train_dataloader.dataset.num_images=4",
            "val_dataloader.dataset.num_images=2",
            "train_dataloader.dataset.image_size=96",
            "val_dataloader.dataset.image_size=96",
            "train_dataloader.num_workers=0",
            "val_dataloader.num_workers=0",
            "train_cfg.max_iters=2",
            "train_cfg.val_interval=1",
            "train_cfg.log_interval=1",
            "param_scheduler.0.warmup_iters=1",
            "demo.num_images=0",
        ]
    )
    assert rc == 0
    png = str(tmp_path / "curves.png")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [sys.executable, os.path.join(repo_root, "tools", "analysis", "plot_curves.py"), work, "--out", png],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("work: 2 training points (loss, last ")
    assert "2 validation points (bbox_AP, last " in lines[0]
    assert lines[1:] == [f"panel 0 left axis: {LOSS_AXIS}", f"panel 0 right axis: {AP_AXIS}", f"wrote {png}"]
    assert proc.stderr == "" and os.path.getsize(png) > 5000
    counts = pc.plot_curves([work], png)  # the same through the function
    assert counts == {"work": {"train": 2, "val": 2}}
    assert _axes(counts) == [(0, "left", LOSS_AXIS), (0, "right", AP_AXIS)]
    records = [json.loads(line) for line in open(os.path.join(work, "metrics.jsonl"))]
    last_ap = [r["bbox_AP"] for r in records if r["mode"] == "val"][-1]
    assert [c["last"] for c in counts.curves] == pytest.approx(
        [[r["loss"] for r in records if r["mode"] == "train"][-1], 100 * last_ap]
    )
