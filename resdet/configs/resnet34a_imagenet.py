# ResNet-34 with shortcut option A (zero-padding identity shortcuts, no parameters), Table 3.
# Paper val error: 25.03 / 7.76.
_base_ = ["./resnet34_imagenet.py"]
model = dict(backbone=dict(shortcut="A"))
work_dir = "work_dirs/resnet34a_imagenet"
