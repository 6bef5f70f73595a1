"""The optional compiled fast path: same detections as eager, a clean fallback when compiling
fails, eager under autograd, and ``strip_compiled`` restores the eager forwards."""

import copy

import pytest
import torch
from test_faster_rcnn import images_and_targets, tiny_cfg

from resdet.models.detectors import (
    compile_cost_s,
    compile_for_inference,
    fast_inference,
    optimize_for_inference,
    strip_compiled,
)
from resdet.registry import MODELS


def _fast_model(repo_root):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg("frcnn_r50_fpn", repo_root)).eval()
    return optimize_for_inference(model)


def test_compiled_backbone_keeps_the_detections(repo_root):
    model = _fast_model(repo_root)
    images, _ = images_and_targets()
    with torch.inference_mode():
        expected = model(images)
    compiled = compile_for_inference(model, parts=("backbone",))  # one part keeps the test short
    assert list(compiled) == ["backbone"]
    with torch.inference_mode():
        got = model(images)  # first call compiles; the two images have different sizes (dynamic)
        again = model(images)
    assert compiled["backbone"].failed is None, compiled["backbone"].failed
    assert compiled["backbone"].first_call_s > 0 and compile_cost_s(model) == compiled["backbone"].first_call_s
    for a, b, c in zip(expected, got, again):
        assert len(a["boxes"]) == len(b["boxes"]) == len(c["boxes"]) > 0
        assert torch.allclose(a["boxes"], b["boxes"], atol=1e-2) and torch.allclose(b["boxes"], c["boxes"])
        assert torch.allclose(a["scores"], b["scores"], atol=1e-4)


def test_failed_compile_falls_back_to_eager_once(repo_root, monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("no C++ compiler found")

        return run

    monkeypatch.setattr(fast_inference.torch, "compile", broken_compile)
    model = _fast_model(repo_root)
    images, _ = images_and_targets()
    with torch.inference_mode():
        expected = copy.deepcopy(model)(images)
        parts = compile_for_inference(model)
        assert set(parts) == {"backbone", "neck", "rpn.head", "roi_heads.box_head"}
        warnings = []
        monkeypatch.setattr(fast_inference.log, "warning", lambda msg, *args: warnings.append(msg % args))
        got = model(images)
        model(images)
    assert all("no C++ compiler found" in p.failed for p in parts.values())
    assert len(warnings) == len(parts)  # one warning per part, not one per call
    assert all(w.startswith("torch.compile of") and "no C++ compiler found" in w for w in warnings)
    for a, b in zip(expected, got):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])


def test_gradients_and_strip_use_the_eager_forward(repo_root, monkeypatch):
    calls = []

    def counting_compile(fn, **kwargs):
        def run(*args, **kw):
            calls.append(1)
            return fn(*args, **kw)

        return run

    monkeypatch.setattr(fast_inference.torch, "compile", counting_compile)
    model = _fast_model(repo_root)
    compile_for_inference(model, parts=("backbone",))
    x = torch.zeros(1, 3, 64, 64)
    model.backbone(x)  # autograd on: the frozen-weight graph is never used
    assert calls == []
    with torch.no_grad():
        model.backbone(x)
    assert calls == [1]
    assert strip_compiled(model) == 1 and "forward" not in model.backbone.__dict__
    with torch.no_grad():
        model.backbone(x)
    assert calls == [1]


def test_environment_variable_turns_compiling_on(monkeypatch):
    monkeypatch.setenv("RESDET_COMPILE", "1")
    assert fast_inference.compile_requested(None) is True
    assert fast_inference.compile_requested(False) is False
    monkeypatch.setenv("RESDET_COMPILE", "0")
    assert fast_inference.compile_requested(None) is False


def test_pairing_tolerates_order_and_a_near_tie_at_the_cut():
    from resdet.structures.matching import pair_detections

    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 40], [5, 5, 50, 50], [60, 0, 90, 30]])
    expected = {"boxes": boxes, "scores": torch.tensor([0.9, 0.8, 0.8, 0.30]), "labels": torch.tensor([1, 2, 2, 0])}
    swapped = {
        "boxes": boxes[[0, 2, 1, 3]] + 0.004,
        "scores": torch.tensor([0.9, 0.8, 0.8, 0.30]),
        "labels": torch.tensor([1, 2, 2, 0]),
    }
    pairs = pair_detections(expected, swapped)
    assert pairs["order"] == [0, 2, 1, 3] and pairs["max_box_diff"] == pytest.approx(0.004, abs=1e-5)
    assert pairs["count"] == (4, 4) and pairs["unpaired"] == 0 and pairs["max_score_diff"] == 0
    # the last one differs: another box at (almost) the same lowest score made the cut
    cut = dict(
        swapped,
        boxes=torch.cat([swapped["boxes"][:3], torch.tensor([[0.0, 60, 30, 90]])]),
        scores=torch.tensor([0.9, 0.8, 0.8, 0.3004]),
    )
    pairs = pair_detections(expected, cut)
    assert pairs["boundary_swaps"] == 1 and pairs["max_box_diff"] < 0.01
    # the same difference far above the cut is a real disagreement
    moved = dict(swapped, boxes=torch.cat([swapped["boxes"][:1] + 5, swapped["boxes"][1:]]))
    assert pair_detections(expected, moved)["max_box_diff"] == pytest.approx(5.004, abs=1e-4)
    wrong_label = dict(swapped, labels=torch.tensor([1, 2, 2, 1]))
    assert pair_detections(expected, wrong_label)["unpaired"] == 1
