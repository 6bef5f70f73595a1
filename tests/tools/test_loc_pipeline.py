"""The localization configs build, train through the engine and evaluate with tools/eval.py."""

import importlib.util
import json
import os

import pytest
import torch

from resdet.engine import Trainer
from resdet.registry import MODELS
from resdet.utils.config import load_config
from resdet.utils.io import atomic_save


def test_paper_config_builds_the_per_class_heads(repo_root):
    cfg = load_config(os.path.join(repo_root, "configs", "loc_r101_imagenet.py"))
    assert cfg.train_dataloader.collate == "loc_collate" and cfg.model.rpn.batch_size_per_image == 8
    with torch.device("meta"):
        model = MODELS.build(cfg.model.to_dict())
    assert model.rpn.head.cls_logits.out_channels == 12 * 1000  # 4 sizes x 3 ratios x classes
    assert model.rpn.head.bbox_pred.out_channels == 12 * 1000 * 4
    assert model.roi_heads.box_predictor.bbox_pred.out_features == 4 * 1000
    assert len(model.backbone.layer3) == 23 and model.classifier.num_classes == 1000


def test_shapes_config_trains_and_evaluates(repo_root, tmp_path, capsys):
    torch.manual_seed(0)
    cfg = load_config(os.path.join(repo_root, "configs", "loc_shapes.py"))
    classifier = MODELS.build(cfg.model.classifier.to_dict())
    cls_ckpt = str(tmp_path / "cls.pth")
    atomic_save({"model": classifier.state_dict()}, cls_ckpt)
    data_root = str(tmp_path / "shapes_loc")
    cfg.merge_from_dict(
        {
            "model.init_cfg": dict(classifier=cls_ckpt, backbone=cls_ckpt, src="resdet_cls"),
            "model.cls_input_size": 32,
            "train_dataloader": dict(
                batch_size=2, num_workers=0, dataset=dict(data_root=data_root, num_images=6, image_size=64)
            ),
            "val_dataloader": dict(
                batch_size=4, num_workers=0, dataset=dict(data_root=data_root, num_images=4, image_size=64)
            ),
            "train_cfg": dict(max_iters=2, val_interval=2, checkpoint_interval=2, log_interval=1),
            "work_dir": str(tmp_path / "work"),
        }
    )
    cfg.test_dataloader = cfg.val_dataloader
    trainer = Trainer.from_config(cfg)
    assert torch.equal(trainer.model.classifier.head.fc.weight, classifier.head.fc.weight)  # init_weights ran
    results = trainer.train()
    assert results["loc_num_samples"] == 4 and 0.0 <= results["loc_top5_err"] <= 1.0
    assert results["cls_top5_err"] == 0.0  # 5 classes: top-5 is every class
    config_path = str(tmp_path / "loc_tiny.py")
    cfg.dump(config_path)
    os.remove(cls_ckpt)  # evaluation builds the model without the classification checkpoint
    spec = importlib.util.spec_from_file_location("eval_tool", os.path.join(repo_root, "tools", "eval.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out_json = str(tmp_path / "metrics.json")
    model_out = str(tmp_path / "model_loc.json")
    rc = tool.main([config_path, results["checkpoint"], "--metric", "loc-err", "--json", out_json, "--out", model_out])
    printed = capsys.readouterr().out
    assert rc == 0 and "top-5 loc error" in printed and "GT-class-known error" in printed
    numbers = json.load(open(out_json))
    for key in ("loc_top1_err", "loc_top5_err", "loc_oracle_err"):
        assert numbers[key] == pytest.approx(results[key])
    assert numbers["loc_oracle_err"] == pytest.approx(numbers["loc_top5_err"])  # every class guessed

    # --out wrote the model's top-5 guesses per image; scoring that file gives the same errors
    written = json.load(open(model_out))
    assert len(written) == 4 * 5 and {r["category_id"] for r in written} <= set(cfg.classes)
    rc = tool.main(
        ["--ann", data_root, "--split", "val", "--results", model_out, "--metric", "loc-err", "--json", out_json]
    )
    again = json.load(open(out_json))
    assert rc == 0
    for key in ("loc_top1_err", "loc_top5_err", "cls_top1_err"):
        assert again[key] == pytest.approx(numbers[key])

    # results-file mode: ground-truth boxes of the val split as the predictions -> no error
    from resdet.data.datasets import ShapesLocDataset
    from resdet.evaluation.localization import predictions_to_loc_results

    val = ShapesLocDataset(data_root, "val", num_images=4, image_size=64)
    anns = [val.get_ann(i) for i in range(len(val))]
    rows = predictions_to_loc_results(
        [{"labels": a["labels"][:1], "scores": [0.9], "boxes": a["boxes"][:1]} for a in anns],
        val.img_ids,
        val.class_names,
    )
    (tmp_path / "loc.json").write_text(json.dumps(rows))
    rc = tool.main(
        [
            "--ann",
            data_root,
            "--split",
            "val",
            "--results",
            str(tmp_path / "loc.json"),
            "--metric",
            "loc-err",
            "--json",
            out_json,
        ]
    )
    assert rc == 0 and json.load(open(out_json))["loc_top1_err"] == 0.0
