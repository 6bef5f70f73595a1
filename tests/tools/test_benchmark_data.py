"""``resdet benchmark data`` end to end at a tiny size, run as users run it (the installed
command, from another folder): the JSON holds real measurements whose ratios agree with the
raw figures (the figures themselves are for docs/data_at_scale.md, never asserted)."""

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="benchmark data reads /proc (Linux only)")
def test_benchmark_data_reports_builds_loader_memory_and_throughput(tmp_path):
    out, data_dir = tmp_path / "data.json", tmp_path / "sets"
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    argv = [
        "resdet",
        "benchmark",
        "data",
        "--images",
        "300",
        "--cls-images",
        "2000",
        "--workers",
        "2",
        "--pass-fraction",
        "0.1",
        "--throughput-images",
        "4",
        "--data-dir",
        str(data_dir),
        "--json",
        str(out),
    ]
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "index build (fresh process)" in proc.stdout and "resdet_mask_vs_torchvision_cpu" in proc.stdout
    (res,) = json.loads(out.read_text())
    images = json.loads((data_dir / "coco_like" / "annotations" / "instances_train2017.json").read_text())
    assert len(images["images"]) == 300 and [c["id"] for c in images["categories"]][-3:] == [88, 89, 90]
    assert 5.0 < len(images["annotations"]) / 300 < 10.0
    builds, summary = res["builds"], res["summary"]
    assert set(builds) == {
        "json",
        "pycocotools",
        "torchvision",
        "resdet_det",
        "resdet_mask",
        "resdet_mask_again",
        "torchvision_cls",
        "resdet_cls",
    }
    for name, row in builds.items():
        assert row["cpu_s"] > 0 and row["wall_s"] > 0 and row["peak_mb"] >= row["base_mb"] > 50, name
    assert builds["torchvision"]["items"] == 300 and builds["torchvision_cls"]["items"] == 2000
    assert 290 <= builds["resdet_mask"]["items"] <= 300  # images without annotations are filtered
    assert builds["resdet_cls"]["items"] == 2000
    for ours, peer in (
        ("resdet_mask", "torchvision"),
        ("resdet_det", "torchvision"),
        ("resdet_cls", "torchvision_cls"),
    ):
        assert summary[f"{ours}_vs_{peer}_cpu"] == pytest.approx(builds[ours]["cpu_s"] / builds[peer]["cpu_s"])
        assert summary[f"{ours}_vs_{peer}_peak"] == pytest.approx(builds[ours]["peak_mb"] / builds[peer]["peak_mb"])
    for name, dataset_images in (("resdet_mask", builds["resdet_mask"]["items"]), ("resdet_cls", 2000)):
        loader = res["loaders"][name]
        assert loader["dataset_images"] == dataset_images and loader["workers"] == 2
        rows = loader["rows"]
        assert len(rows) == 5  # the first batch, then each quarter of the (partial) pass
        assert [r["images"] for r in rows] == sorted(r["images"] for r in rows)
        assert rows[-1]["images"] >= round(0.1 * dataset_images)
        for row in rows:
            assert len(row["worker_private_mb"]) == 2 and min(row["worker_private_mb"]) > 0
            assert row["total_pss_mb"] == pytest.approx(row["main_pss_mb"] + row["workers_pss_mb"])
            assert row["main_pss_mb"] > 50
        assert summary[f"{name}_loader_pss_growth"] == pytest.approx(rows[-1]["total_pss_mb"] / rows[0]["total_pss_mb"])
    through = res["throughput"]
    for name in ("resdet", "torchvision"):
        assert through[name]["images"] == 4
        assert through[name]["images_per_s"] == pytest.approx(4 / through[name]["cpu_s"])
    assert summary["throughput_ratio"] == pytest.approx(
        through["resdet"]["images_per_s"] / through["torchvision"]["images_per_s"]
    )
