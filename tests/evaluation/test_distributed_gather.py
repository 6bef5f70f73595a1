"""Two real gloo ranks: predictions gathered, a padded duplicate counted once, same numbers
on every rank (CocoMetric on the COCO fixture, TopKError with sample indices)."""

import json
import os
import socket
from collections import defaultdict

import numpy as np
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, fixture_dir, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        from resdet.evaluation import CocoMetric, TopKError, load_coco_gt

        class Dataset:  # the metric-facing part of a COCO dataset
            def __init__(self, coco):
                self.coco = coco
                cats = sorted(coco.cats.values(), key=lambda c: c["id"])
                self.class_names = [c["name"] for c in cats]
                self.label_to_cat_id = [c["id"] for c in cats]
                self.img_ids = sorted(coco.getImgIds())

        dataset = Dataset(load_coco_gt(os.path.join(fixture_dir, "instances_val2014_100.json")))
        with open(os.path.join(fixture_dir, "instances_val2014_fakebbox100_results.json")) as fh:
            results = json.load(fh)
        per_image = defaultdict(list)
        for r in results:
            per_image[r["image_id"]].append(r)
        # padded shards: rank 0 gets images 0..49, rank 1 gets 50..99 plus image 0 again
        ids = dataset.img_ids
        mine = ids[:50] if rank == 0 else ids[50:] + ids[:1]
        metric = CocoMetric(iou_type="bbox", backend="pycocotools").bind(dataset)
        for img_id in mine:
            dets = per_image.get(img_id, [])
            xywh = np.array([d["bbox"] for d in dets], np.float64).reshape(-1, 4)
            metric.process(
                [
                    dict(
                        boxes=torch.tensor(np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]),
                        scores=torch.tensor([d["score"] for d in dets]),
                        labels=torch.tensor(
                            [dataset.label_to_cat_id.index(d["category_id"]) for d in dets], dtype=torch.long
                        ),
                    )
                ],
                [dict(img_id=img_id)],
            )
        topk = TopKError(topk=(1,))
        # samples 0..3, rank 1 repeats sample 1 (padding); only sample 3 is wrong -> 1 error in 4
        logits = torch.eye(4)
        if rank == 0:
            topk.process(logits[:2], {"labels": torch.tensor([0, 1]), "indices": torch.tensor([0, 1])})
        else:
            topk.process(logits[1:], {"labels": torch.tensor([1, 2, 0]), "indices": torch.tensor([1, 2, 3])})
        out = dict(metric.compute(), **topk.compute())
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in out.items()}, fh)
    finally:
        tdist.destroy_process_group()


def test_two_gloo_ranks_gather_and_dedupe(coco_eval_root, tmp_path):
    fixture_dir = coco_eval_root
    # fork: the workers inherit the imported modules (spawn would re-import torch twice)
    mp.start_processes(
        _worker, args=(2, _free_port(), fixture_dir, str(tmp_path)), nprocs=2, join=True, start_method="fork"
    )
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert rank0 == rank1
    expected = json.load(open(os.path.join(fixture_dir, "expected_stats.json")))
    got = [rank0[f"bbox_{k}"] for k in expected["keys"]]
    np.testing.assert_allclose(got, expected["bbox"], atol=1e-4)
    assert rank0["top1_err"] == 0.25 and rank0["topk_num_samples"] == 4
