"""Every shipped torchvision-compatible config (``resdet/configs/*_tv.py``) leaves the resizing to
the model (no resize in any test pipeline, so nothing resizes twice) and names torchvision's 80
COCO classes in category-id order, the order of the 91-slot converter's labels."""

import glob
import json
import os

import pytest
from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights, MaskRCNN_ResNet50_FPN_Weights

from resdet.apis.detect import inference_pipeline_of as effective_test_pipeline
from resdet.models.converters.torchvision_det import COCO_CATEGORY_IDS
from resdet.utils.config import CONFIG_DIR, load_config

TV_CONFIGS = sorted(glob.glob(os.path.join(CONFIG_DIR, "*_tv.py")))


def _plain(value):
    return value.to_dict() if hasattr(value, "to_dict") else value


def dataset_pipelines(dataset: dict) -> list[list]:
    """The pipelines of a dataset config, through ``ConcatDataset``-style ``datasets``."""
    dataset = _plain(dataset) or {}
    found = [list(dataset["pipeline"])] if "pipeline" in dataset else []
    for part in dataset.get("datasets", []) or []:
        found += dataset_pipelines(part)
    return found


def test_the_tv_configs_are_found():
    assert {os.path.basename(p) for p in TV_CONFIGS} >= {"frcnn_r50_fpn_tv.py", "maskrcnn_r50_fpn_tv.py"}


@pytest.mark.parametrize("path", TV_CONFIGS, ids=os.path.basename)
def test_tv_config_resizes_once_in_the_model(path):
    cfg = load_config(path)
    pipelines = [effective_test_pipeline(cfg)]  # what inference_detector runs
    for key in ("val_dataloader", "test_dataloader"):
        loader = _plain(cfg.get(key)) or {}
        pipelines += dataset_pipelines(loader.get("dataset"))
    assert len(pipelines) >= 2  # inference_detector's and at least the val loader's
    for pipeline in pipelines:
        kinds = [t["type"] for t in pipeline]
        assert not [k for k in kinds if "resize" in k.lower() or "scale" in k.lower()], (path, kinds)
    preprocessor = cfg.model.preprocessor
    assert (preprocessor.min_size, preprocessor.max_size) == (800, 1333)  # torchvision's defaults
    assert preprocessor.value_scale == 255.0


@pytest.mark.parametrize("path", TV_CONFIGS, ids=os.path.basename)
def test_tv_config_names_coco_classes_in_category_id_order(path):
    cfg = load_config(path)
    for weights in (FasterRCNN_ResNet50_FPN_Weights.COCO_V1, MaskRCNN_ResNet50_FPN_Weights.COCO_V1):
        categories = weights.meta["categories"]  # index = COCO category id
        assert list(cfg.classes) == [categories[i] for i in COCO_CATEGORY_IDS]
    assert cfg.model.num_classes == len(cfg.classes) == 80
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        dataset = _plain(cfg.get(key) or {}).get("dataset") or {}
        if dataset.get("type") == "CocoDataset":  # CocoDataset keeps these, labelled in id order
            assert list(dataset["classes"]) == list(cfg.classes), key


def test_coco_dataset_labels_are_the_converter_labels(repo_root, tmp_path):
    """On real COCO annotations (cocoapi's val2014 fixture: the 80 categories of 2014/2017),
    ``CocoDataset``'s contiguous labels under the tv config's classes are the converter's: label k
    is COCO id ``COCO_CATEGORY_IDS[k]``, named ``classes[k]`` (so results map back to COCO's ids)."""
    from resdet.data.datasets.coco import CocoDataset

    ann_file = os.path.join(repo_root, "tests", "fixtures", "coco_eval_fixture", "instances_val2014_100.json")
    if not os.path.isfile(ann_file):
        pytest.skip(f"{ann_file} not found")
    with open(ann_file) as fh:
        names = [image["file_name"] for image in json.load(fh)["images"]]
    for name in names:  # the annotations only: empty stand-ins for the photos (never decoded here)
        (tmp_path / name).touch()
    cfg = load_config("configs/frcnn_r50_fpn_tv.py")
    dataset = CocoDataset(ann_file, img_dir=str(tmp_path), classes=cfg.classes, filter_empty=False)
    assert len(dataset) == len(names)
    assert dataset.label_to_cat_id == list(COCO_CATEGORY_IDS)
    assert dataset.class_names == list(cfg.classes)
