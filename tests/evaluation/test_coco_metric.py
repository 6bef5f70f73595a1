"""COCO AP: parity with pycocotools on the official fixture, through the Metric interface
(bind/process/compute with a fake detection dataset, rank gathering with a duplicate)."""

import contextlib
import io
import json
import os
from collections import defaultdict

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval

from resdet.evaluation import CocoMetric, build_metrics, evaluate_coco, load_coco_gt
from resdet.evaluation.coco_api import faster_available, format_coco_summary
from resdet.utils import dist

BACKENDS = ["pycocotools"] + (["faster"] if faster_available() else [])


@pytest.fixture(scope="module")
def fixture_dir(coco_eval_root):
    return coco_eval_root


@pytest.fixture(scope="module")
def expected(fixture_dir):
    with open(os.path.join(fixture_dir, "expected_stats.json")) as fh:
        return json.load(fh)


def _load(fixture_dir, name):
    with open(os.path.join(fixture_dir, name)) as fh:
        return json.load(fh)


class FakeCocoDataset:
    """The CONTRACTS detection-dataset interface over a pycocotools COCO (no images)."""

    def __init__(self, coco):
        self.coco = coco
        cats = sorted(coco.cats.values(), key=lambda c: c["id"])
        self.class_names = [c["name"] for c in cats]
        self.label_to_cat_id = [c["id"] for c in cats]
        self.img_ids = sorted(coco.getImgIds())

    def __len__(self):
        return len(self.img_ids)

    def get_ann(self, idx):
        img = self.coco.imgs[self.img_ids[idx]]
        anns = self.coco.imgToAnns[img["id"]]
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        return dict(
            img_id=img["id"],
            orig_size=(img["height"], img["width"]),
            boxes=boxes,
            labels=np.array([self.label_to_cat_id.index(a["category_id"]) for a in anns], np.int64),
            ignore=np.array([a["iscrowd"] for a in anns], bool),
        )


def _predictions_by_image(results, label_to_cat_id):
    """COCO results -> the detector's per-image output dicts (torch tensors, xyxy, labels)."""
    per_image = defaultdict(list)
    for r in results:
        per_image[r["image_id"]].append(r)
    out = {}
    for img_id, dets in per_image.items():
        xywh = torch.tensor([d["bbox"] for d in dets], dtype=torch.float64)
        out[img_id] = dict(
            boxes=torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1).float(),
            scores=torch.tensor([d["score"] for d in dets]),
            labels=torch.tensor([label_to_cat_id.index(d["category_id"]) for d in dets]),
        )
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_fixture_stats_match_pycocotools(fixture_dir, expected, backend, iou_type):
    gt = load_coco_gt(os.path.join(fixture_dir, "instances_val2014_100.json"))
    results = _load(fixture_dir, f"instances_val2014_fake{iou_type}100_results.json")
    out = evaluate_coco(gt, results, iou_type=iou_type, backend=backend)
    assert out["backend"] == backend
    np.testing.assert_allclose(out["stats"], expected[iou_type], rtol=0, atol=1e-6)
    # per-category AP averages back to the overall AP (the classes that have GT)
    per_class = np.array(list(out["per_class_ap"].values()))
    assert per_class.shape == (80,)
    assert np.nanmean(per_class) == pytest.approx(expected[iou_type][0], abs=1e-9)


def test_pycocotools_split_over_processes_is_identical(fixture_dir):
    gt = load_coco_gt(os.path.join(fixture_dir, "instances_val2014_100.json"))
    results = _load(fixture_dir, "instances_val2014_fakebbox100_results.json")
    single = evaluate_coco(gt, results, backend="pycocotools")
    split = evaluate_coco(gt, results, backend="pycocotools", workers=3)
    assert split["stats"] == single["stats"]
    np.testing.assert_array_equal(list(split["per_class_ap"].values()), list(single["per_class_ap"].values()))


def test_summary_has_the_twelve_lines(expected):
    text = format_coco_summary(expected["bbox"], "bbox").splitlines()
    assert len(text) == 13
    assert text[1] == " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.505"
    assert text[-1].endswith("maxDets=100 ] = 0.564")


def _run_metric(metric, preds, img_ids):
    for start in range(0, len(img_ids), 7):  # batches of 7 images
        chunk = img_ids[start : start + 7]
        metric.process(
            [
                preds.get(
                    i, dict(boxes=torch.zeros(0, 4), scores=torch.zeros(0), labels=torch.zeros(0, dtype=torch.long))
                )
                for i in chunk
            ],
            [dict(img_id=i) for i in chunk],
        )


def test_metric_interface_matches_fixture_with_rank_duplicate(fixture_dir, expected, monkeypatch, tmp_path):
    gt = load_coco_gt(os.path.join(fixture_dir, "instances_val2014_100.json"))
    dataset = FakeCocoDataset(gt)
    preds = _predictions_by_image(
        _load(fixture_dir, "instances_val2014_fakebbox100_results.json"), dataset.label_to_cat_id
    )
    out_file = tmp_path / "dets.json"
    rank0, rank1 = [
        build_metrics("mAP@[.5:.95]", dataset, backend="pycocotools", results_file=str(out_file))[0] for _ in range(2)
    ]
    assert isinstance(rank0, CocoMetric) and rank0.primary_key == "bbox_AP"
    ids = dataset.img_ids
    _run_metric(rank0, preds, ids[:51])  # image ids[50] seen by both "ranks"
    _run_metric(rank1, preds, ids[50:])
    monkeypatch.setattr(dist, "all_gather_object", lambda obj: [rank0._records, rank1._records])
    results = rank0.compute()
    got = [results[f"bbox_{k}"] for k in expected["keys"]]
    # results go through the --out format (boxes rounded to 1e-3 px): same numbers to 1e-4
    np.testing.assert_allclose(got, expected["bbox"], atol=1e-4)
    assert results["bbox_AP/person"] == pytest.approx(0.533, abs=2e-3)
    written = json.loads(out_file.read_text())
    assert len(written) == sum(len(p["scores"]) for p in preds.values())  # duplicate counted once
    assert {w["category_id"] for w in written} <= set(dataset.label_to_cat_id)
    table = rank0.format_table(results)
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.50" in table
    assert "person" in table


def test_segm_metric_equals_pycocotools_on_same_predictions(fixture_dir):
    gt = load_coco_gt(os.path.join(fixture_dir, "instances_val2014_100.json"))
    dataset = FakeCocoDataset(gt)
    segm = [
        r
        for r in _load(fixture_dir, "instances_val2014_fakesegm100_results.json")
        if r["image_id"] in set(dataset.img_ids[:12])
    ]
    metric = CocoMetric(iou_type="segm", backend="pycocotools").bind(dataset)
    by_image = defaultdict(list)
    for r in segm:
        by_image[r["image_id"]].append(r)
    reference = []
    for img_id, dets in by_image.items():
        masks = mask_utils.decode([d["segmentation"] for d in dets]).transpose(2, 0, 1)
        boxes = mask_utils.toBbox([d["segmentation"] for d in dets])
        boxes[:, 2:] += boxes[:, :2]
        metric.process(
            [
                dict(
                    boxes=torch.tensor(boxes),
                    scores=torch.tensor([d["score"] for d in dets]),
                    labels=torch.tensor([dataset.label_to_cat_id.index(d["category_id"]) for d in dets]),
                    masks=torch.tensor(masks[:, None], dtype=torch.float32),
                )
            ],
            [dict(img_id=img_id)],
        )
        for d, box in zip(dets, boxes):
            reference.append(
                dict(
                    d,
                    bbox=[round(v, 3) for v in [box[0], box[1], box[2] - box[0], box[3] - box[1]]],
                    score=round(d["score"], 5),
                )
            )
    results = metric.compute()
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(reference), "segm")
        ev.params.imgIds = dataset.img_ids
        ev.evaluate(), ev.accumulate(), ev.summarize()
    got = [results[f"segm_{k}"] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")]
    np.testing.assert_allclose(got, ev.stats[:6], atol=1e-9)
    assert results["segm_AP"] > 0.05  # 12 of the 100 images have predictions


def test_coco_metric_from_dataset_without_coco_index():
    """A dataset without ``coco`` (e.g. VOC-style, string ids) gets a COCO index built from get_ann."""

    class TinyDataset:
        class_names = ["cat", "dog"]
        img_ids = ["a", "b"]

        def __len__(self):
            return 2

        def get_ann(self, idx):
            boxes = [
                np.array([[10, 10, 50, 50], [60, 60, 90, 100]], np.float32),
                np.array([[0, 0, 20, 30]], np.float32),
            ][idx]
            labels = [np.array([0, 1]), np.array([1])][idx]
            return dict(
                img_id=self.img_ids[idx],
                orig_size=(120, 100),
                boxes=boxes,
                labels=labels,
                ignore=np.zeros(len(labels), bool),
            )

    ds = TinyDataset()
    metric = build_metrics(["mAP@[.5:.95]"], ds, backend="pycocotools")[0]
    for idx in range(2):
        ann = ds.get_ann(idx)
        metric.process(
            [
                dict(
                    boxes=torch.tensor(ann["boxes"]),
                    scores=torch.ones(len(ann["labels"])),
                    labels=torch.tensor(ann["labels"]),
                )
            ],
            [dict(img_id=ann["img_id"])],
        )
    results = metric.compute()
    assert results["bbox_AP"] == pytest.approx(1.0)
    assert results["bbox_AP/dog"] == pytest.approx(1.0)
    metric.reset()  # no detections at all -> 0 AP
    metric.process([dict(boxes=torch.zeros(0, 4), scores=torch.zeros(0), labels=torch.zeros(0))], [dict(img_id="a")])
    assert metric.compute()["bbox_AP"] == 0.0
