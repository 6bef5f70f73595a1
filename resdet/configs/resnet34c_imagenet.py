# ResNet-34 with shortcut option C (projections on every shortcut), Table 3. Paper val error: 24.19 / 7.40.
_base_ = ["./resnet34_imagenet.py"]
model = dict(backbone=dict(shortcut="C"))
work_dir = "work_dirs/resnet34c_imagenet"
