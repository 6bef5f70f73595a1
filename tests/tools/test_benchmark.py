"""The det and mask benchmarks run end to end on a tiny image (smoke test; the timings
themselves are figures for the README, never asserted)."""

import json

import pytest

from resdet.benchmarks import det, mask
from resdet.utils.malloc import describe as describe_malloc


@pytest.mark.parametrize("module", [det, mask])
def test_pair_benchmark_reports_agreeing_models_and_ratios(module, tmp_path, monkeypatch):
    from resdet.benchmarks import _pair
    from resdet.models.detectors import compile_for_training

    # --compile-train with one small part compiled: the whole R50-FPN graph takes minutes to compile
    monkeypatch.setattr(
        _pair, "compile_for_training", lambda model: compile_for_training(model, ("roi_heads.box_head",))
    )
    out = tmp_path / "bench.json"
    argv = [
        "--device",
        "cpu",
        "--iters",
        "1",
        "--warmup",
        "0",
        "--train-iters",
        "1",
        "--height",
        "96",
        "--width",
        "128",
        "--threads",
        "1",
        "--json",
        str(out),
    ]
    if module is det:
        argv += ["--bf16", "--efficiency", "--compile-train"]
    else:
        argv.append("--no-memory")
    assert module.main(argv) == 0
    (res,) = json.loads(out.read_text())
    tv_dets, our_dets = res["check_num_dets"]
    assert tv_dets == our_dets
    assert res["check_unpaired"] == 0
    for key in ("inference_s", "train_step_s"):
        times = res[key]
        assert times["torchvision"] > 0 and times["resdet"] > 0
        assert times["ratio"] == pytest.approx(times["resdet"] / times["torchvision"])
    summary = res["summary"]
    assert summary["infer_ratio"] == res["inference_s"]["ratio"]
    assert summary["allocator"] == res["allocator"] == describe_malloc() and res["allocator"].startswith("glibc")
    assert summary["train_ratio"] == res["train_step_s"]["ratio"]
    assert 0 <= summary["max_box_diff"] < 0.01 and 0 <= summary["max_score_diff"] < 1e-3
    if module is det:
        assert res["inference_s"]["resdet_bf16"] > 0 and summary["bf16_ratio"] > 0
        train = res["train_step_s"]
        assert train["compile_failed"] == {} and train["compile_first_step_s"] > 0
        assert summary["compiled_train_ratio"] == pytest.approx(train["resdet_compiled"] / train["torchvision"])
        rss = res["peak_rss"]
        for mode in ("infer", "train"):
            assert rss[mode]["torchvision"]["peak_mb"] > 100 and rss[mode]["resdet"]["peak_mb"] > 100
        # training holds activations for backward: its peak is above inference's
        assert rss["train"]["resdet"]["peak_mb"] > rss["infer"]["resdet"]["base_mb"]
        assert summary["peak_rss_ratio"] == pytest.approx(max(rss["infer"]["ratio"], rss["train"]["ratio"]))
        eff = res["efficiency"]
        assert eff["backbone_gmacs"] > 0.1 and eff["conv_peak_gflops"] > 0
        assert summary["backbone_efficiency"] == pytest.approx(eff["backbone_gflops"] / eff["conv_peak_gflops"])
        assert eff["model_gmacs"] > eff["backbone_gmacs"]  # the RPN head and the box head come on top
        assert summary["floor_ms"] == pytest.approx(1000 * 2 * eff["model_gmacs"] / eff["conv_peak_gflops"])
        assert summary["floor_ratio"] == pytest.approx(eff["floor_ms"] / 1000 / res["inference_s"]["torchvision"])
    else:
        assert "peak_rss" not in res
        if our_dets:
            assert res["check_masks_iou_ge_0.99"] >= 0.5
