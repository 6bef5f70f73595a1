"""Every registered component is reachable through its registry's ``locations`` alone: a fresh
process that imports nothing but ``resdet.registry`` builds each registered type by name."""

import json
import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent(r"""
    import json, os, pickle, sys
    import numpy as np
    import torch
    from resdet import registry

    tmp = sys.argv[1]
    registries = {n: getattr(registry, n) for n in dir(registry)
                  if n.isupper() and hasattr(getattr(registry, n), "module_dict")}
    before = {n: len(r.module_dict) for n, r in registries.items()}
    from resdet.utils.config import load_config  # configs only; no model / data module imported

    built = {}

    def build(reg, cfg):
        obj = registries[reg].build(cfg)
        built.setdefault(reg, set()).add(cfg["type"])
        return obj

    def model_cfg(name):
        return load_config(name).model.to_dict()

    # models: stand-alone types by name, composite ones from the shipped configs
    for name in ("ResNet", "VGG", "CifarResNet", "FPN", "AnchorGenerator", "DetPreprocessor", "RPNHead",
                 "PerClassRPNHead", "FCBoxHead", "Res5BoxHead", "BoxPredictor", "MaskHead", "RoIPooler",
                 "VGGClsHead"):
        build("MODELS", dict(type=name))
    build("MODELS", dict(type="LinearClsHead", in_channels=8))
    classifier = model_cfg("shapes_cls")
    build("MODELS", classifier)
    for wrapper in ("TenCropClassifier", "MultiScaleClassifier"):
        build("MODELS", dict(type=wrapper, classifier=classifier))
    build("MODELS", dict(type="EnsembleClassifier", members=[classifier, classifier]))
    detectors = []
    for config in ("shapes_frcnn", "shapes_maskrcnn", "loc_shapes"):
        cfg = model_cfg(config)
        detectors.append(build("MODELS", cfg))
    build("MODELS", dict(type="DetectorTTA", detector=model_cfg("shapes_frcnn"), flip=True))
    submodules = {type(m).__name__ for d in detectors for m in d.modules()}
    for name in ("RPN", "StandardRoIHeads", "MaskRoIHeads", "PerClassRPN"):
        assert name in submodules, (name, sorted(submodules))
        built["MODELS"].add(name)

    # data
    for name, kwargs in (("ShapesClsDataset", dict(num_images=2, image_size=16)),
                         ("ShapesCocoDataset", dict(num_images=2, image_size=32)),
                         ("ShapesLocDataset", dict(num_images=2, image_size=32)),
                         ("Proxy32Dataset", dict(num_images=2))):
        build("DATASETS", dict(type=name, data_root=os.path.join(tmp, name), **kwargs))
    shapes = os.path.join(tmp, "ShapesCocoDataset", "train")
    coco = dict(type="CocoDataset", ann_file=os.path.join(shapes, "annotations.json"),
                img_dir=os.path.join(shapes, "images"))
    dataset = build("DATASETS", coco)
    build("DATASETS", dict(type="ConcatDataset", datasets=[coco, coco]))
    build("DATASETS", dict(type="ImageNetLocDataset", root=os.path.join(tmp, "ShapesLocDataset"), split="train"))
    build("DATASETS", dict(type="ImageFolder", data_root=os.path.join(tmp, "ShapesClsDataset", "train")))
    voc = os.path.join(tmp, "voc")
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        os.makedirs(os.path.join(voc, sub))
    import cv2
    cv2.imwrite(os.path.join(voc, "JPEGImages", "a.jpg"), np.zeros((20, 30, 3), np.uint8))
    with open(os.path.join(voc, "Annotations", "a.xml"), "w") as fh:
        fh.write("<annotation><size><width>30</width><height>20</height></size><object><name>cat</name>"
                 "<bndbox><xmin>2</xmin><ymin>2</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")
    with open(os.path.join(voc, "ImageSets", "Main", "train.txt"), "w") as fh:
        fh.write("a\n")
    build("DATASETS", dict(type="VOCDataset", root=voc, split="train", classes=("cat",)))
    cifar = os.path.join(tmp, "cifar")
    os.makedirs(cifar)
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    for part in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(os.path.join(cifar, part), "wb") as fh:
            pickle.dump(batch, fh)
    with open(os.path.join(cifar, "batches.meta"), "wb") as fh:
        pickle.dump({b"label_names": [b"a", b"b"]}, fh)
    build("DATASETS", dict(type="CIFAR10", data_root=cifar, split="test"))
    for name in ("DistributedTrainSampler", "InferenceSampler"):
        build("DATA_SAMPLERS", dict(type=name, dataset=dataset, rank=0, world_size=1))
    build("DATA_SAMPLERS", dict(type="AspectRatioGroupedSampler", dataset=dataset, batch_size=2, rank=0,
                                world_size=1))
    for reg in registries.values():
        reg.import_from_location()  # what any registry lookup does first
    for name in registries["TRANSFORMS"].module_dict:
        build("TRANSFORMS", dict(type=name))
    for name in registries["COLLATE_FUNCTIONS"].module_dict:
        assert callable(build("COLLATE_FUNCTIONS", dict(type=name)))

    # evaluation and engine
    for name in registries["METRICS"].module_dict:
        build("METRICS", dict(type=name))
    for name in registries["HOOKS"].module_dict:
        build("HOOKS", dict(type=name))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    for name, kwargs in (("StepLR", dict(milestones=[2])), ("LinearWarmupLR", dict(warmup_iters=2)),
                         ("CosineLR", {}), ("PlateauLR", {}), ("WarmupUntilLR", {})):
        cls = registries["PARAM_SCHEDULERS"].get(name)
        assert cls is not None, name
        built.setdefault("PARAM_SCHEDULERS", set()).add(name)
    print(json.dumps({"before": before,
                      "registered": {n: sorted(r.module_dict) for n, r in registries.items()},
                      "built": {n: sorted(v) for n, v in built.items()}}))
""")


def test_every_registered_type_builds_by_name_in_a_fresh_process(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # importing resdet.registry registers nothing: every type arrives through ``locations``
    assert all(count == 0 for count in report["before"].values()), report["before"]
    for name, registered in report["registered"].items():
        assert registered, f"{name} is empty"
        assert sorted(report["built"].get(name, [])) == registered, (name, registered, report["built"].get(name))
    assert {"BoxRandomCrop", "DetRandomCrop"} <= set(report["registered"]["TRANSFORMS"])
    assert "loc_collate" in report["registered"]["COLLATE_FUNCTIONS"]
