# ResNet-34 with shortcut option B (projections only where dimensions increase), Table 3. Paper val error: 24.52 / 7.46.
_base_ = ["./resnet34_imagenet.py"]
model = dict(backbone=dict(shortcut="B"))
work_dir = "work_dirs/resnet34b_imagenet"
