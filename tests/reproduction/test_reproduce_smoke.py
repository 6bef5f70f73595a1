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
from resdet.data.datasets.proxy32 import Proxy32Dataset
from resdet.data.synthetic.proxy32 import PROXY32_CLASSES, render_proxy32_image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_smoke_run_writes_results_and_figures(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "reproduce.py"), "--smoke", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["degradation"]) == {"plain20", "plain56", "resnet20", "resnet56"}
    for errors in list(results["degradation"].values()) + list(results["shortcuts"].values()):
        assert 0.0 <= errors["train_err"] <= 100.0 and 0.0 <= errors["test_err"] <= 100.0
    assert set(results["shortcuts"]) == {"A", "B", "C"}
    # option A is the degradation run's ResNet-20 (same config, schedule and seed)
    assert results["shortcuts"]["A"] == results["degradation"]["resnet20"]
    # one std per 3x3 layer: 6n + 1 of a 6n + 2-layer net (the last layer is the fc)
    assert {k: len(v) for k, v in results["layer_response"].items()} == {
        "plain20": 19,
        "resnet20": 19,
        "plain56": 55,
        "resnet56": 55,
    }
    assert all(s > 0 for v in results["layer_response"].values() for s in v)
    assert results["meta"]["iterations"] == 2 and results["meta"]["seed"] == 0
    for name in ("degradation.png", "layer_response.png", "shortcuts.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(data) < 300_000
    assert "degradation  plain56" in proc.stdout
    assert "smoke run: results.json and the three figures written" in proc.stdout


def test_proxy32_is_deterministic_balanced_and_seeded_per_split(tmp_path):
    first, label = render_proxy32_image(seed=5, index=13)
    again, _ = render_proxy32_image(seed=5, index=13)
    other, _ = render_proxy32_image(seed=6, index=13)
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert label == 13 % len(PROXY32_CLASSES) == 3
    train = Proxy32Dataset(data_root=str(tmp_path), split="train", num_images=30)
    test = Proxy32Dataset(data_root=str(tmp_path), split="test", num_images=30)
    assert np.bincount(train.labels, minlength=10).tolist() == [3] * 10
    assert not np.array_equal(train.images, test.images)  # split_seed: test uses seed + 2
    assert np.array_equal(train.load_image(4), render_proxy32_image(0, 4)[0])
    assert train.pixel_mean().shape == (3, 32, 32)
    assert len(PROXY32_CLASSES) >= 10


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
