"""Top-k error and ImageNet localization error on hand-made cases; metric strings."""

import numpy as np
import pytest
import torch

from resdet.evaluation import LocalizationError, TopKError, build_metrics, canonical_metric
from resdet.evaluation.classification import label_ranks


def test_topk_error_hand_case():
    logits = torch.tensor(
        [
            [5.0, 1, 0, 0, 0, 0],  # label 0: rank 0
            [5.0, 4, 3, 2, 1, 0],  # label 2: rank 2
            [0.0, 1, 2, 3, 4, 5],  # label 0: rank 5 (last)
            [1.0, 1, 1, 1, 1, 1],
        ]
    )  # tie everywhere: worst rank
    labels = torch.tensor([0, 2, 0, 3])
    assert label_ranks(logits, labels).tolist() == [0, 2, 5, 5]
    metric = TopKError(topk=(1, 5))
    metric.process(logits[:2], {"labels": labels[:2]})
    metric.process(logits[2:], {"labels": labels[2:]})
    results = metric.compute()
    assert results == {"top1_err": 0.75, "top5_err": 0.5, "topk_num_samples": 4}
    assert "top-1 error 75.00%" in metric.format_table(results)
    metric.reset()
    with pytest.raises(ValueError, match="labels must be in 0..5"):
        metric.process(logits, {"labels": torch.tensor([0, 1, 2, 6])})


def test_metric_strings_merge_and_errors():
    metrics = build_metrics(["top1", "top5"])
    assert len(metrics) == 1 and metrics[0].topk == (1, 5)
    assert build_metrics("top1")[0].topk == (1,)
    assert canonical_metric("mAP50") == "mAP@0.5"
    with pytest.raises(ValueError, match=r"unknown metric 'mAP@\.5:\.95'.*did you mean 'mAP@\[\.5:\.95\]'"):
        build_metrics("mAP@.5:.95")
    assert isinstance(build_metrics("loc-err")[0], LocalizationError)


def _pred(labels, scores, boxes, class_boxes=None):
    out = dict(
        labels=torch.tensor(labels),
        scores=torch.tensor(scores, dtype=torch.float32),
        boxes=torch.tensor(boxes, dtype=torch.float32),
    )
    if class_boxes is not None:
        out["class_boxes"] = torch.tensor(class_boxes, dtype=torch.float32)
    return out


def test_localization_error_hand_cases():
    gt_box = [[10, 10, 50, 50]]
    good, bad = [10, 10, 50, 50], [60, 60, 90, 90]
    half = [10, 10, 50, 30]  # IoU exactly 0.5 counts as correct (>= 0.5)
    preds = [
        _pred([3, 1, 2], [0.9, 0.5, 0.1], [good, bad, bad]),  # top-1 correct
        _pred([1, 3, 2], [0.9, 0.5, 0.1], [bad, half, bad]),  # correct at rank 2
        _pred([3, 1], [0.9, 0.5], [bad, good]),  # class right, box wrong
        _pred([0, 1, 2, 4, 5, 3], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [bad] * 5 + [good]),  # 6th guess
        _pred([1], [0.9], [bad], class_boxes=[bad, bad, bad, good, bad]),  # oracle box right
    ]
    targets = [dict(img_id=i, labels=torch.tensor([3]), boxes=torch.tensor(gt_box)) for i in range(5)]
    metric = LocalizationError()
    metric.process(preds[:3], targets[:3])
    metric.process(preds[3:], targets[3:])
    r = metric.compute()
    # loc top-1: only image 0; loc top-5: images 0, 1; oracle: images 0, 1, 3 (best guess of
    # class 3 is good), 4 (class_boxes) -> 4/5; cls top-1: 0, 2; cls top-5: 0, 1, 2
    assert r["loc_top1_err"] == pytest.approx(4 / 5)
    assert r["loc_top5_err"] == pytest.approx(3 / 5)
    assert r["loc_oracle_err"] == pytest.approx(1 / 5)
    assert r["cls_top1_err"] == pytest.approx(3 / 5)
    assert r["cls_top5_err"] == pytest.approx(2 / 5)
    assert r["loc_num_samples"] == 5
    assert "top-5 loc error 60.00%" in metric.format_table(r)


def test_localization_ground_truth_from_bound_dataset():
    class LocDataset:
        img_ids = ["n01_1", "n01_2"]

        def __len__(self):
            return 2

        def get_ann(self, idx):  # two boxes of class 7 in the second image
            boxes = [[[0, 0, 20, 20]], [[0, 0, 20, 20], [50, 50, 100, 100]]][idx]
            return dict(
                img_id=self.img_ids[idx],
                orig_size=(100, 100),
                boxes=np.array(boxes, np.float32),
                labels=np.full(len(boxes), 7),
            )

    metric = build_metrics("loc-err", LocDataset())[0]
    metric.process(
        [_pred([7], [1.0], [[0, 0, 20, 21]]), _pred([7], [1.0], [[52, 50, 100, 100]])],
        [dict(img_id="n01_1"), dict(img_id="n01_2")],
    )
    assert metric.compute()["loc_top1_err"] == 0.0
