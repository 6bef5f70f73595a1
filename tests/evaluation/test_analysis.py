"""The TIDE-style error types and their oracle fixes on hand-built cases, the AP / PR helpers
against COCOeval, and the confusion matrix."""

import numpy as np
import pytest

from resdet.evaluation.analysis import (
    analyze_detections,
    confusion_matrix,
    interpolated_precision,
    pr_curves,
    precision_recall,
)
from resdet.evaluation.analysis_errors import analyze_errors, ap50, error_breakdown, fix_errors
from resdet.evaluation.coco_api import coco_from_dict, evaluate_coco

A, B = 1, 2
G1, G2, G3 = [10, 10, 40, 40], [120, 120, 40, 40], [10, 120, 40, 40]  # A, A, B (xywh)
SHIFTED_G2 = [135, 135, 40, 40]  # IoU with G2 = 25*25 / (2*1600 - 625) = 0.2427
P = 51 / 101  # COCO 101-point AP of one TP found before the other half of recall


def _gt(extra=()):
    anns = [
        dict(id=1, image_id=1, category_id=A, bbox=G1, area=1600, iscrowd=0),
        dict(id=2, image_id=1, category_id=A, bbox=G2, area=1600, iscrowd=0),
        dict(id=3, image_id=1, category_id=B, bbox=G3, area=1600, iscrowd=0),
        *extra,
    ]
    return coco_from_dict(
        {
            "images": [{"id": 1, "width": 200, "height": 200}],
            "annotations": anns,
            "categories": [{"id": A, "name": "A"}, {"id": B, "name": "B"}],
        }
    )


def _det(cat, box, score):
    return {"image_id": 1, "category_id": cat, "bbox": [float(v) for v in box], "score": score}


BASE = [_det(A, G1, 0.8), _det(B, G3, 0.85)]  # true positives on G1 and G3; G2 is not found

# (extra detection(s), expected type of the first one, AP before, AP after fixing that type)
CASES = {
    "bkg": ([_det(A, [70, 60, 20, 20], 0.9)], (25.5 / 101 + 1) / 2, (P + 1) / 2),
    "loc": ([_det(A, SHIFTED_G2, 0.9)], (25.5 / 101 + 1) / 2, 1.0),
    "cls": ([_det(B, G2, 0.9)], (P + 0.5) / 2, 1.0),
    "both": ([_det(B, SHIFTED_G2, 0.9)], (P + 0.5) / 2, (P + 1) / 2),
    # a second box on G1 scoring between the TP on G1 and a TP on G2
    "dupe": ([_det(A, [12, 12, 40, 40], 0.7), _det(A, G2, 0.6)], ((51 + 50 * 2 / 3) / 101 + 1) / 2, 1.0),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_each_error_type_is_found_and_fixing_it_gives_the_hand_computed_ap(kind):
    extra, before, after = CASES[kind]
    gt, dets = _gt(), BASE + extra
    analysis = analyze_errors(gt, dets)
    assert list(analysis.det_type) == ["tp", "tp", kind] + ["tp"] * (len(extra) - 1)
    counts = analysis.counts()
    assert counts[kind] == 1 and sum(counts.values()) == 1 + (kind in ("bkg", "both"))  # G2 missed there
    assert counts["miss"] == int(kind in ("bkg", "both"))
    assert ap50(gt, dets) == pytest.approx(before, abs=1e-6)
    fixed_gt, fixed = fix_errors(gt, dets, analysis, kind)
    assert ap50(fixed_gt, fixed) == pytest.approx(after, abs=1e-6)
    breakdown = error_breakdown(gt, dets, analysis)
    assert breakdown["dAP"][kind] == pytest.approx(after - before, abs=1e-6)
    untouched = [t for t in ("cls", "loc", "both", "dupe", "bkg") if t != kind]
    assert all(breakdown["dAP"][t] == pytest.approx(0.0, abs=1e-9) for t in untouched)
    assert len(dets) == len(BASE) + len(extra) and dets[2] == extra[0]  # inputs untouched


def test_a_missed_object_is_removed_by_its_fix_and_covered_ones_are_not_missed():
    gt = _gt()
    analysis = analyze_errors(gt, BASE)
    assert analysis.gt_missed.tolist() == [False, True, False] and analysis.counts()["miss"] == 1
    assert ap50(gt, BASE) == pytest.approx((P + 1) / 2, abs=1e-6)
    fixed_gt, _ = fix_errors(gt, BASE, analysis, "miss")
    assert [a["id"] for a in fixed_gt.dataset["annotations"]] == [1, 3]
    assert error_breakdown(gt, BASE, analysis)["dAP"]["miss"] == pytest.approx(1 - (P + 1) / 2, abs=1e-6)
    # a localisation error on G2 covers it: G2 is not also counted missed
    assert analyze_errors(gt, BASE + CASES["loc"][0]).gt_missed.tolist() == [False, False, False]


def test_two_fixes_aiming_at_one_object_keep_only_the_best():
    gt = _gt()
    dets = BASE + [_det(A, SHIFTED_G2, 0.9), _det(A, [105, 105, 40, 40], 0.7)]  # both localisation errors on G2
    analysis = analyze_errors(gt, dets)
    assert list(analysis.det_type) == ["tp", "tp", "loc", "loc"] and list(analysis.det_target[2:]) == [1, 1]
    _, fixed = fix_errors(gt, dets, analysis, "loc")
    assert [d["score"] for d in fixed] == [0.9, 0.85, 0.8] and fixed[0]["bbox"] == [float(v) for v in G2]


def test_crowd_matches_are_ignored_and_max_dets_follows_cocoeval():
    crowd = dict(id=4, image_id=1, category_id=A, bbox=[100, 10, 80, 80], area=6400, iscrowd=1)
    gt = _gt([crowd])
    dets = BASE + [_det(A, [110, 20, 30, 30], 0.95)]  # inside the crowd region
    analysis = analyze_errors(gt, dets)
    assert analysis.det_type[2] == "ignored" and analysis.counts()["bkg"] == 0
    many = BASE + [_det(A, [60 + i, 60, 5, 5], 0.1 + i / 1000) for i in range(3)]
    # 4 detections of A in the image, 3 kept: the lowest-scoring one is left out, as COCOeval does
    assert list(analyze_errors(gt, many, max_dets=3).det_type) == ["tp", "tp", "dropped", "bkg", "bkg"]


def test_pr_curves_and_interpolated_ap_agree_with_cocoeval():
    rng = np.random.default_rng(0)
    images, anns, dets = [], [], []
    for image_id in range(1, 9):
        images.append({"id": image_id, "width": 300, "height": 300})
        for _ in range(int(rng.integers(1, 5))):
            box = [float(v) for v in rng.uniform(0, 200, 2)] + [float(v) for v in rng.uniform(20, 80, 2)]
            cat = int(rng.integers(1, 3))
            anns.append(
                dict(id=len(anns) + 1, image_id=image_id, category_id=cat, bbox=box, area=box[2] * box[3], iscrowd=0)
            )
            for _ in range(int(rng.integers(0, 3))):  # jittered copies, sometimes the wrong class
                jitter = (np.asarray(box) + np.r_[rng.normal(0, 8, 2), rng.normal(0, 6, 2)]).tolist()
                jitter[2:] = [max(v, 1.0) for v in jitter[2:]]
                dets.append(_det(cat if rng.random() < 0.8 else 3 - cat, jitter, float(rng.random())))
                dets[-1]["image_id"] = image_id
    gt = coco_from_dict(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "x"}, {"id": 2, "name": "y"}]}
    )
    curves = pr_curves(dets, analyze_errors(gt, dets), [1, 2])
    for cat in (1, 2):
        coco = evaluate_coco(gt, dets, "bbox", cat_ids=[cat])["stats"][1]
        assert curves[cat]["ap50"] == pytest.approx(coco, abs=1e-9)
    precision, recall = precision_recall(np.array([True, False, True]), np.array([0.3, 0.9, 0.5]), num_gt=4)
    assert precision.tolist() == [0.0, 0.5, 2 / 3] and recall.tolist() == [0.0, 0.25, 0.5]
    assert interpolated_precision(precision, recall)[0].mean() == pytest.approx(51 * (2 / 3) / 101)  # COCO's AP
    curve, thresholds = interpolated_precision(precision, recall, np.array([0.9, 0.5, 0.3]))
    assert curve[[0, 25, 26, 50, 51]].tolist() == [2 / 3, 2 / 3, 2 / 3, 2 / 3, 0.0]
    assert thresholds[[0, 25, 26, 50]].tolist() == [0.9, 0.5, 0.3, 0.3] and np.isnan(thresholds[51:]).all()
    assert len(curves[1]["precision"]) == len(curves[1]["score"]) == 101 and curves[1]["recall"][-1] == 1.0


def test_confusion_matrix_counts_confusions_misses_and_false_positives():
    gt = _gt()
    dets = BASE + [_det(B, G2, 0.9), _det(A, [70, 60, 20, 20], 0.7), _det(A, [72, 60, 20, 20], 0.2)]
    matrix = confusion_matrix(gt, dets, [A, B], score_thr=0.5)
    assert matrix.tolist() == [
        [1, 1, 0],  # A: one found, one taken for a B
        [0, 1, 0],  # B: found
        [1, 0, 0],
    ]  # background: one A false positive (0.2 is under the threshold)
    assert confusion_matrix(gt, BASE, [A, B]).tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]  # G2 missed


def test_analyze_detections_reports_everything_json_ready():
    import json

    gt = _gt()
    report = analyze_detections(gt, BASE + CASES["cls"][0] + CASES["bkg"][0])
    report.pop("analysis")
    text = json.dumps(report)
    assert json.loads(text)["errors"]["counts"] == {"cls": 1, "loc": 0, "both": 0, "dupe": 0, "bkg": 1, "miss": 0}
    assert report["confusion"]["labels"] == ["A", "B", "background"]
    assert report["worst_images"] == [{"image_id": 1, "errors": 2, "cls": 1, "bkg": 1}]
    assert report["pr_curves"]["A"]["num_gt"] == 2 and report["pr_curves"]["B"]["num_dets"] == 2
