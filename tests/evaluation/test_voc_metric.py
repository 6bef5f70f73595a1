"""VOC AP: hand-computable cases, agreement with a loop-based devkit port, the Metric path."""

import numpy as np
import pytest
import torch

from resdet.evaluation import VOCMetric, build_metrics
from resdet.evaluation.voc import default_ap_method
from resdet.evaluation.voc_ap import average_precision, match_detections, pairwise_iou, voc_eval


def _eval(gt_boxes, gt_labels, gt_difficult, det_image, det_boxes, det_labels, det_scores, **kw):
    return voc_eval(
        [np.asarray(b, float).reshape(-1, 4) for b in gt_boxes],
        [np.asarray(lab, np.int64) for lab in gt_labels],
        [np.asarray(d, bool) for d in gt_difficult],
        np.asarray(det_image),
        np.asarray(det_boxes, float).reshape(-1, 4),
        np.asarray(det_labels),
        np.asarray(det_scores, float),
        **kw,
    )


@pytest.mark.parametrize("method", ["11point", "area"])
def test_one_gt_perfect_detection_is_ap_one(method):
    out = _eval(
        [[[10, 10, 50, 60]]], [[0]], [[False]], [0], [[10, 10, 50, 60]], [0], [0.9], num_classes=1, method=method
    )
    assert out["ap"][0] == pytest.approx(1.0)
    assert out["num_gts"][0] == 1 and out["recall"][0] == 1.0


def test_duplicate_detection_is_one_tp_one_fp():
    gt = [np.array([[10, 10, 50, 60]], float)]
    order, tp, fp = match_detections(
        gt,
        [np.array([0])],
        [np.array([False])],
        np.array([0, 0]),
        np.array([[11, 10, 50, 60], [10, 10, 50, 60]], float),
        np.array([0, 0]),
        np.array([0.3, 0.8]),
    )
    assert order.tolist() == [1, 0]  # ranked by score
    assert tp.tolist() == [True, False] and fp.tolist() == [False, True]
    # precision 1 then 1/2 at recall 1: AP stays 1 (both methods)
    for method in ("11point", "area"):
        out = _eval(
            gt,
            [[0]],
            [[False]],
            [0, 0],
            [[11, 10, 50, 60], [10, 10, 50, 60]],
            [0, 0],
            [0.3, 0.8],
            num_classes=1,
            method=method,
        )
        assert out["ap"][0] == pytest.approx(1.0)
    # a duplicate ranked *above* the true positive halves the precision: area AP = 0.5
    out = _eval(
        gt,
        [[0]],
        [[False]],
        [0, 0],
        [[100, 100, 120, 120], [10, 10, 50, 60]],
        [0, 0],
        [0.9, 0.8],
        num_classes=1,
        method="area",
    )
    assert out["ap"][0] == pytest.approx(0.5)


def test_detection_on_difficult_object_is_neither_tp_nor_fp():
    gt_boxes = [[[10, 10, 50, 60], [100, 100, 150, 140]]]
    order, tp, fp = match_detections(
        [np.array(gt_boxes[0], float)],
        [np.array([0, 0])],
        [np.array([False, True])],
        np.array([0, 0]),
        np.array([[100, 100, 150, 140], [10, 10, 50, 60]], float),
        np.array([0, 0]),
        np.array([0.9, 0.5]),
    )
    assert tp.tolist() == [False, True] and fp.tolist() == [False, False]
    out = _eval(
        gt_boxes,
        [[0, 0]],
        [[False, True]],
        [0, 0],
        [[100, 100, 150, 140], [10, 10, 50, 60]],
        [0, 0],
        [0.9, 0.5],
        num_classes=1,
        method="area",
    )
    assert out["num_gts"][0] == 1  # the difficult box is not counted
    assert out["ap"][0] == pytest.approx(1.0)  # not penalised by the top-ranked hit on it


def test_eleven_point_vs_area_on_known_curve():
    recall = np.array([0.25, 0.25, 0.5, 0.5, 0.75])
    precision = np.array([1.0, 0.5, 2 / 3, 0.5, 0.6])
    assert average_precision(recall, precision, "area") == pytest.approx(0.25 * (1 + 2 / 3 + 0.6))
    assert average_precision(recall, precision, "11point") == pytest.approx((3 * 1 + 3 * 2 / 3 + 2 * 0.6) / 11)
    # the same curve from detections: TP FP TP FP TP with 4 GT boxes
    gt = [[[0, 0, 10, 10]], [[0, 0, 10, 10]], [[0, 0, 10, 10]], [[0, 0, 10, 10]]]
    hit, miss = [0, 0, 10, 10], [50, 50, 60, 60]
    out = _eval(
        gt,
        [[0]] * 4,
        [[False]] * 4,
        [0, 0, 1, 1, 2],
        [hit, miss, hit, miss, hit],
        [0] * 5,
        [0.9, 0.8, 0.7, 0.6, 0.5],
        num_classes=1,
        method="11point",
    )
    assert out["ap"][0] == pytest.approx((3 + 2 + 1.2) / 11)


def _devkit_reference(
    gt_boxes, gt_labels, gt_difficult, det_image, det_boxes, det_labels, det_scores, num_classes, method, plus_one
):
    """Straightforward loop port of the devkit's voc_eval (detections in devkit coordinates)."""
    aps = []
    for c in range(num_classes):
        npos = sum(int(((lab == c) & ~d).sum()) for lab, d in zip(gt_labels, gt_difficult))
        taken = [np.zeros(len(lab), bool) for lab in gt_labels]
        idx = [i for i in range(len(det_scores)) if det_labels[i] == c]
        idx.sort(key=lambda i: -det_scores[i])
        tp, fp = [], []
        for i in idx:
            img = det_image[i]
            bb = det_boxes[i] + (np.array([1, 1, 0, 0]) if plus_one else 0)
            one = 1.0 if plus_one else 0.0
            best, jbest = -np.inf, -1
            for j in range(len(gt_labels[img])):
                if gt_labels[img][j] != c:
                    continue
                g = gt_boxes[img][j] + (np.array([1, 1, 0, 0]) if plus_one else 0)
                iw = max(min(bb[2], g[2]) - max(bb[0], g[0]) + one, 0.0)
                ih = max(min(bb[3], g[3]) - max(bb[1], g[1]) + one, 0.0)
                inter = iw * ih
                area_b = (bb[2] - bb[0] + one) * (bb[3] - bb[1] + one)
                union = area_b + (g[2] - g[0] + one) * (g[3] - g[1] + one) - inter
                if inter / union > best:
                    best, jbest = inter / union, j
            if best > 0.5:
                if gt_difficult[img][jbest]:
                    continue
                if not taken[img][jbest]:
                    taken[img][jbest] = True
                    tp.append(1), fp.append(0)
                else:
                    tp.append(0), fp.append(1)
            else:
                tp.append(0), fp.append(1)
        if npos == 0:
            aps.append(np.nan)
            continue
        tpc, fpc = np.cumsum(tp), np.cumsum(fp)
        rec = tpc / npos
        prec = tpc / np.maximum(tpc + fpc, 1e-12)
        if method == "11point":
            ap = 0.0
            for t in np.arange(0.0, 1.1, 0.1):
                ap += (max(prec[rec >= t]) if np.sum(rec >= t) else 0.0) / 11.0
        else:
            mrec = [0.0] + list(rec) + [1.0]
            mpre = [0.0] + list(prec) + [0.0]
            for i in range(len(mpre) - 2, -1, -1):
                mpre[i] = max(mpre[i], mpre[i + 1])
            ap = sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])
        aps.append(ap)
    return np.array(aps)


@pytest.mark.parametrize("method", ["11point", "area"])
@pytest.mark.parametrize("plus_one", [True, False])
def test_agrees_with_loop_reference_on_random_data(method, plus_one):
    rng = np.random.default_rng(3)
    num_images, num_classes = 40, 4
    gt_boxes, gt_labels, gt_difficult = [], [], []
    det_image, det_boxes, det_labels = [], [], []
    for img in range(num_images):
        n = rng.integers(0, 6)
        xy = rng.uniform(0, 200, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 80, (n, 2))], 1)
        labels = rng.integers(0, num_classes, n)
        gt_boxes.append(boxes), gt_labels.append(labels), gt_difficult.append(rng.random(n) < 0.15)
        for b, lab in zip(boxes, labels):  # jittered copies (some duplicates), some with a wrong class
            for _ in range(rng.integers(0, 3)):
                det_image.append(img), det_boxes.append(b + rng.normal(0, 6, 4))
                det_labels.append(lab if rng.random() < 0.85 else rng.integers(0, num_classes))
        for _ in range(rng.integers(0, 4)):  # background
            xy = rng.uniform(0, 200, 2)
            det_image.append(img), det_boxes.append(np.r_[xy, xy + rng.uniform(5, 60, 2)])
            det_labels.append(rng.integers(0, num_classes))
    det_scores = rng.random(len(det_image))
    det_image, det_boxes, det_labels = np.array(det_image), np.array(det_boxes), np.array(det_labels)
    ours = voc_eval(
        gt_boxes,
        gt_labels,
        gt_difficult,
        det_image,
        det_boxes,
        det_labels,
        det_scores,
        num_classes=num_classes,
        method=method,
        plus_one=plus_one,
    )["ap"]
    ref = _devkit_reference(
        gt_boxes, gt_labels, gt_difficult, det_image, det_boxes, det_labels, det_scores, num_classes, method, plus_one
    )
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    assert 0.2 < np.nanmean(ours) < 0.95


def test_plus_one_iou_equals_continuous_iou_for_continuous_boxes():
    rng = np.random.default_rng(0)
    a = np.concatenate([xy := rng.uniform(0, 100, (20, 2)), xy + rng.uniform(1, 50, (20, 2))], 1)
    b = np.concatenate([xy := rng.uniform(0, 100, (30, 2)), xy + rng.uniform(1, 50, (30, 2))], 1)
    np.testing.assert_allclose(pairwise_iou(a, b, plus_one=True), pairwise_iou(a, b), atol=1e-12)
    assert pairwise_iou(np.array([[0, 0, 10, 10.0]]), np.array([[5, 0, 15, 10.0]]))[0, 0] == pytest.approx(1 / 3)


class TinyVOC:
    class_names = ["cell", "platelet"]
    img_ids = ["img0", "img1", "img2"]
    root = "/data/VOCdevkit/VOC2007"

    def __len__(self):
        return 3

    def get_ann(self, idx):
        boxes = [[[10, 10, 40, 40], [50, 50, 90, 80]], [[0, 0, 30, 20]], [[5, 5, 25, 25]]][idx]
        labels = [[0, 1], [0], [1]][idx]
        ignore = [[False, False], [False], [True]][idx]
        return dict(
            img_id=self.img_ids[idx],
            orig_size=(100, 100),
            boxes=np.array(boxes, np.float32),
            labels=np.array(labels),
            ignore=np.array(ignore),
        )


def test_voc_metric_interface_with_duplicate_rank_sample(monkeypatch):
    from resdet.utils import dist

    ds = TinyVOC()
    assert default_ap_method(ds) == "11point"
    metrics = [build_metrics("mAP@0.5", ds)[0] for _ in range(2)]
    assert isinstance(metrics[0], VOCMetric) and metrics[0].ap_method == "11point"

    def pred(boxes, labels, scores):
        return dict(
            boxes=torch.tensor(boxes, dtype=torch.float32), labels=torch.tensor(labels), scores=torch.tensor(scores)
        )

    metrics[0].process(
        [pred([[10, 10, 40, 40], [50, 50, 90, 80]], [0, 1], [0.9, 0.8]), pred([[60, 60, 90, 90]], [0], [0.95])],
        [dict(img_id="img0"), dict(img_id="img1")],
    )
    # rank 1 repeats img1 (sampler padding) with the same output, and sees img2 (difficult only)
    metrics[1].process(
        [pred([[60, 60, 90, 90]], [0], [0.95]), pred([[5, 5, 25, 25]], [1], [0.7])],
        [dict(img_id="img1"), dict(img_id="img2")],
    )
    monkeypatch.setattr(dist, "all_gather_object", lambda obj: [metrics[0]._records, metrics[1]._records])
    results = metrics[0].compute()
    # cell: FP (0.95) then TP (0.9) of 2 GT -> recall 0.5 at precision 0.5: 11-point = 6 * 0.5 / 11
    assert results["voc_AP50/cell"] == pytest.approx(6 * 0.5 / 11)
    assert results["voc_num_dets/cell"] == 2  # the padded duplicate counted once
    assert results["voc_AP50/platelet"] == pytest.approx(1.0)  # the hit on a difficult box is ignored
    assert results["voc_mAP50"] == pytest.approx((3 / 11 + 1) / 2)
    assert "mAP@0.50 = 63.64" in metrics[0].format_table(results)


def test_results_file_ground_truth_reads_fields_like_the_dataset(tmp_path):
    """load_voc_gt (results-file evaluation) follows the dataset's rules: <difficult> is 0 or 1
    (``yes`` is refused, not read as 0) and an id listed twice in the split is refused."""
    import pytest

    from resdet.evaluation.results import ResultsError
    from resdet.evaluation.voc import load_voc_gt

    (tmp_path / "Annotations").mkdir()
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)

    def write(stem, difficult):
        (tmp_path / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><object><name>dog</name><difficult>{difficult}</difficult><bndbox><xmin>1</xmin>"
            "<ymin>1</ymin><xmax>10</xmax><ymax>10</ymax></bndbox></object></annotation>"
        )

    write("a", "1")
    write("b", "0")
    (tmp_path / "ImageSets" / "Main" / "test.txt").write_text("a\nb\n")
    gt = load_voc_gt(str(tmp_path))
    assert [d.tolist() for d in gt.difficult] == [[True], [False]]
    write("b", "yes")
    with pytest.raises(ResultsError, match=r"b\.xml.*<difficult> 'yes'"):
        load_voc_gt(str(tmp_path))
    write("b", "0")
    (tmp_path / "ImageSets" / "Main" / "test.txt").write_text("a\nb\na\n")
    with pytest.raises(ResultsError, match=r"test\.txt lists 1 id\(s\) more than once"):
        load_voc_gt(str(tmp_path))
