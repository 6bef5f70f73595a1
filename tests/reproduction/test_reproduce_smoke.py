"""``tools/reproduce.py --smoke``: every experiment of the CPU-proxy reproduction for two
iterations on tiny generated data, as a user runs it; plus the pieces its numbers rest on
(the proxy generator's determinism, the last-10% training error)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from resdet.apis.reproduce import schedule, summarise_metrics
from resdet.apis.reproduce_summary import add_seed, degradation_findings, paired_test, relative_improvement
from resdet.data.datasets.proxy32 import Proxy32Dataset
from resdet.data.synthetic.proxy32 import PROXY32_CLASSES, render_proxy32_image, shape_mask

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _smoke(tmp_path, out, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "reproduce.py"), "--smoke", "--out", str(out), *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def test_smoke_run_writes_results_and_figures(tmp_path):
    out = tmp_path / "out"
    proc = _smoke(tmp_path, out)
    results = json.loads((out / "results.json").read_text())
    degradation = results["degradation"]
    assert set(degradation["by_seed"]) == {"0"}
    assert set(degradation["by_seed"]["0"]) == {"plain20", "plain56", "resnet20", "resnet56"}
    assert degradation["settings"]["warmup"] is True and degradation["settings"]["batch_size"] == 8
    for errors in list(degradation["by_seed"]["0"].values()) + list(results["shortcuts"]["by_seed"]["0"].values()):
        assert 0.0 <= errors["train_err"] <= 100.0 and 0.0 <= errors["test_err"] <= 100.0
    # one seed: the summary's mean is that seed's number, with no spread
    plain20 = degradation["by_seed"]["0"]["plain20"]
    assert degradation["summary"]["plain20"]["train_err"] == dict(
        mean=round(plain20["train_err"], 3), min=plain20["train_err"], max=plain20["train_err"], n=1
    )
    assert len(degradation["findings"]) == 7 and all(set(v) == {"0"} for v in degradation["findings"].values())
    # the paired tests count the same mistakes as the trainer's test error (20 test images)
    paired = degradation["paired_tests"]["0"]
    assert len(paired) == 3
    for text, lower, higher in (
        ("ResNet-56 has a lower test error than ResNet-20", "resnet56", "resnet20"),
        ("ResNet-20 has a lower test error than plain-20", "resnet20", "plain20"),
        ("ResNet-56 has a lower test error than plain-56", "resnet56", "plain56"),
    ):
        test = paired[text]
        errors = degradation["by_seed"]["0"]
        assert test["only_lower_wrong"] + test["both_wrong"] == round(errors[lower]["test_err"] * 20 / 100)
        assert test["only_higher_wrong"] + test["both_wrong"] == round(errors[higher]["test_err"] * 20 / 100)
        assert 0.0 < test["mcnemar_p"] <= 1.0
    assert set(results["shortcuts"]["by_seed"]["0"]) == {"A", "B", "C"}
    # option A is the degradation run's ResNet-20 (same config, schedule and seed)
    assert results["shortcuts"]["by_seed"]["0"]["A"] == degradation["by_seed"]["0"]["resnet20"]
    # one std per 3x3 layer: 6n + 1 of a 6n + 2-layer net (the last layer is the fc)
    assert {k: len(v) for k, v in results["layer_response"].items()} == {
        "plain20": 19,
        "resnet20": 19,
        "plain56": 55,
        "resnet56": 55,
    }
    assert all(s > 0 for v in results["layer_response"].values() for s in v)
    detection = results["detection"]
    assert set(detection["by_seed"]["0"]) == {"vgg16", "r50_c4"}
    for key in ("vgg16", "r50_c4"):
        assert {"mAP", "mAP50"} <= set(detection["by_seed"]["0"][key])
        assert all(0.0 <= v <= 100.0 for v in detection["by_seed"]["0"][key].values())
        assert detection["models"][key]["ms_per_image"] > 0 and detection["models"][key]["input_size"] == [128, 128]
    # multiply-adds at 128 x 128 with 50 RoIs: VGG-16's trunk is the heavier, but ResNet-50's conv5
    # runs once per RoI (the C4 head), so its detector is the heavier in total
    vgg, r50 = detection["models"]["vgg16"], detection["models"]["r50_c4"]
    assert 8 < vgg["gflops"] < 15 and 30 < r50["gflops"] < 45 and vgg["params_m"] > 3 * r50["params_m"]
    assert set(detection["summary"]["relative_improvement"]) == {"mAP", "mAP50"}
    # meta: how each experiment was last produced
    assert set(results["meta"]) == {"degradation", "response", "shortcuts", "detection"}
    assert results["meta"]["degradation"]["iterations"] == 2 and results["meta"]["degradation"]["seed"] == 0
    assert "iterations" not in results["meta"]["detection"] and results["meta"]["detection"]["minutes"] > 0
    for name in ("degradation.png", "layer_response.png", "shortcuts.png", "detection.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(data) < 300_000
    assert "degradation  plain56" in proc.stdout and "detection    VGG-16" in proc.stdout
    assert "smoke run: results.json and 4 figure(s) written" in proc.stdout
    # a later call of one experiment reuses the finished runs and leaves the others' records
    _smoke(tmp_path, out, "--only", "shortcuts")
    later = json.loads((out / "results.json").read_text())
    assert later["meta"]["detection"] == results["meta"]["detection"]
    assert later["meta"]["degradation"] == results["meta"]["degradation"]
    assert later["shortcuts"]["by_seed"] == results["shortcuts"]["by_seed"]
    assert max(later["meta"]["shortcuts"]["run_minutes"].values()) < 0.5 * max(
        results["meta"]["shortcuts"]["run_minutes"].values()
    )
    # another fine-tuning budget, both backbones in two worker processes: the pretraining runs
    # (their stamps hold only the classification settings) are reused, the detectors retrained
    runs = out / "runs" / "detection"
    pretrained = {key: (runs / f"cls_{key}_it2" / "final.pth").stat().st_mtime_ns for key in ("vgg16", "r50_c4")}
    _smoke(tmp_path, out, "--only", "detection", "--workers", "2", "--det-iterations", "3")
    again = json.loads((out / "results.json").read_text())["detection"]
    assert again["settings"]["det_iterations"] == 3 and set(again["by_seed"]) == {"0"}
    assert again["pretrain"] == detection["pretrain"]
    # training minutes come from the runs' logs: a reused pretraining keeps its own
    for key in ("vgg16", "r50_c4"):
        assert set(again["minutes"]["0"][key]) == {"pretrain", "finetune"}
        assert again["minutes"]["0"][key]["pretrain"] == detection["minutes"]["0"][key]["pretrain"]
    for key, mtime in pretrained.items():
        assert (runs / f"cls_{key}_it2" / "final.pth").stat().st_mtime_ns == mtime
        assert not (runs / f"cls_{key}_it2.stale1").exists()
        assert (runs / f"det_{key}_it3_s0" / "final.pth").is_file()
        assert "fine-tuning Faster R-CNN" in (runs / f"{key}_s0.log").read_text()  # the worker's log


def test_smoke_run_without_out_keeps_only_results_and_figures(tmp_path):
    """Without --out the smoke run works in a temporary folder nobody reuses: its runs
    (checkpoints: 4 GB with the detection stage's VGG-16) and data are deleted at the end."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "reproduce.py"), "--smoke", "--only", "response"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (scratch,) = tmp_path.glob("resdet_reproduce_smoke_*")
    assert f"results: {scratch / 'results.json'}" in proc.stdout
    assert sorted(p.name for p in scratch.iterdir()) == ["layer_response.png", "results.json"]
    assert json.loads((scratch / "results.json").read_text())["layer_response"]["resnet56"]


def test_proxy32_is_deterministic_balanced_and_seeded_per_split(tmp_path):
    first, label = render_proxy32_image(seed=5, index=13)
    again, _ = render_proxy32_image(seed=5, index=13)
    other, _ = render_proxy32_image(seed=6, index=13)
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert label == 13 % len(PROXY32_CLASSES) == 13
    train = Proxy32Dataset(data_root=str(tmp_path), split="train", num_images=40)
    test = Proxy32Dataset(data_root=str(tmp_path), split="test", num_images=40)
    assert np.bincount(train.labels, minlength=20).tolist() == [2] * 20
    assert not np.array_equal(train.images, test.images)  # split_seed: test uses seed + 2
    assert np.array_equal(train.load_image(4), render_proxy32_image(0, 4)[0])
    assert train.pixel_mean().shape == (3, 32, 32)
    assert len(PROXY32_CLASSES) == len(set(PROXY32_CLASSES)) == 20


def test_proxy32_classes_have_distinct_silhouettes():
    """Each class's shape, drawn alone at one pose, differs from every other class's in at least
    3 % of the canvas (the fine-grained pairs are near, not equal)."""
    masks = {name: shape_mask(name, 64, 32, 32, 26, 0.0) for name in PROXY32_CLASSES}
    for a in PROXY32_CLASSES:
        assert masks[a].sum() > 0.1 * 64 * 64, a
        for b in PROXY32_CLASSES:
            if a < b:
                assert np.abs(masks[a] - masks[b]).mean() > 0.03, (a, b)


def test_train_error_is_the_mean_over_the_last_tenth(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [
        dict(mode="train", iter=i, train_err=0.5 if i <= 90 else (0.2 if i <= 95 else 0.1)) for i in range(5, 101, 5)
    ]
    lines += [dict(mode="val", iter=50, top1_err=0.4), dict(mode="val", iter=100, top1_err=0.3)]
    path.write_text("\n".join(json.dumps(x) for x in lines))
    summary = summarise_metrics(str(path), iterations=100)
    assert summary["train_err"] == pytest.approx(15.0)  # iterations 91..100: half at 20%, half at 10%
    assert summary["test_err"] == pytest.approx(30.0)
    assert summary["curves"]["test"] == [(50, 40.0), (100, 30.0)]
    assert schedule(64000) == [32000, 48000] and schedule(1200) == [600, 900]


def test_seeds_gather_while_the_settings_match_and_the_claims_are_checked_per_seed():
    settings = dict(iterations=1600, batch_size=128, warmup=True)
    seed0 = dict(
        plain20=dict(train_err=30.0, test_err=28.0),
        plain56=dict(train_err=40.0, test_err=39.0),
        resnet20=dict(train_err=20.0, test_err=18.0),
        resnet56=dict(train_err=15.0, test_err=14.0),
    )
    seed1 = {k: dict(v) for k, v in seed0.items()}
    seed1["resnet56"] = dict(train_err=22.0, test_err=17.0)  # loses to ResNet-20 in training error here
    entry = add_seed(None, settings, 0, seed0)
    entry = add_seed(entry, settings, 1, seed1)
    assert list(entry["by_seed"]) == ["0", "1"]
    assert entry["summary"]["resnet56"]["train_err"] == dict(mean=18.5, min=15.0, max=22.0, n=2)
    findings = degradation_findings(entry["by_seed"])
    assert findings["ResNet-56 has a lower training error than ResNet-20"] == {"0": True, "1": False}
    assert findings["ResNet-56 has a lower test error than ResNet-20"] == {"0": True, "1": True}
    assert findings["plain-56 has a higher training error than plain-20 (degradation)"] == {"0": True, "1": True}
    # other settings: the old seeds are not mixed in
    fresh = add_seed(entry, dict(settings, iterations=800), 1, seed1)
    assert list(fresh["by_seed"]) == ["1"] and fresh["summary"]["resnet56"]["train_err"]["n"] == 1
    # the paper's relative improvement: (ResNet - VGG) / VGG, of the means and per seed
    det = add_seed(None, {}, 0, dict(vgg16=dict(mAP=20.0), r50_c4=dict(mAP=25.0)))
    det = add_seed(det, {}, 1, dict(vgg16=dict(mAP=22.0), r50_c4=dict(mAP=27.5)))
    rel = relative_improvement(det["by_seed"], det["summary"], "r50_c4", "vgg16", ["mAP"])
    assert rel == {"mAP": {"of_means": 25.0, "per_seed": {"0": 25.0, "1": 25.0}}}


def test_paired_test_is_the_exact_mcnemar_test_on_the_disagreements():
    lower = np.array([0, 0, 0, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    higher = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 0], dtype=bool)
    # disagreements: 6 images only "higher" gets wrong, 1 only "lower"; both wrong on 1
    got = paired_test(lower, higher)
    assert got == dict(only_lower_wrong=1, only_higher_wrong=6, both_wrong=1, mcnemar_p=round(2 * 8 / 128, 4))
    assert paired_test(higher, lower)["mcnemar_p"] == got["mcnemar_p"]  # two-sided
    assert paired_test(np.zeros(5, bool), np.zeros(5, bool))["mcnemar_p"] == 1.0  # no disagreement: a tie
    assert paired_test(np.zeros(7, bool), np.ones(7, bool))["mcnemar_p"] == round(2 / 128, 4)
    with pytest.raises(ValueError, match="different image counts"):
        paired_test(np.zeros(3, bool), np.zeros(4, bool))


def test_shipped_proxy_configs_name_the_generators_classes():
    """The configs' class names (inference output) and class count are the generator's."""
    from resdet.utils.config import load_config

    for name in ("plain20", "plain56", "resnet20", "resnet56", "resnet20_b", "resnet20_c"):
        cfg = load_config(f"repro_{name}")
        assert list(cfg.classes) == list(PROXY32_CLASSES), name
        assert cfg.model.num_classes == len(PROXY32_CLASSES), name
