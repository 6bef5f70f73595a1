"""The det and mask benchmarks run end to end on a tiny image (smoke test; the timings
themselves are figures for the README, never asserted)."""
import json

import pytest

from resdet.benchmarks import det, mask


@pytest.mark.parametrize("module", [det, mask])
def test_pair_benchmark_reports_agreeing_models_and_ratios(module, tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--device", "cpu", "--iters", "1", "--warmup", "0", "--train-iters", "1",
            "--height", "96", "--width", "128", "--threads", "1", "--json", str(out)]
    if module is det:
        argv.append("--bf16")
    assert module.main(argv) == 0
    (res,) = json.loads(out.read_text())
    tv_dets, our_dets = res["check_num_dets"]
    assert tv_dets == our_dets
    for key in ("inference_s", "train_step_s"):
        times = res[key]
        assert times["torchvision"] > 0 and times["resdet"] > 0
        assert times["ratio"] == pytest.approx(times["resdet"] / times["torchvision"])
    if module is det:
        assert res["inference_s"]["resdet_bf16"] > 0
    elif our_dets:
        assert res["check_masks_iou_ge_0.99"] >= 0.5
