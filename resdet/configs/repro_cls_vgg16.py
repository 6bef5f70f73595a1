# VGG-16 classification stage of `resdet reproduce --only detection` (docs/reproduction.md):
# the paper's VGG-16 trunk and fc6/fc7 head, pretrained on the shapes classification set.
# BN after every convolution (vgg16_bn): from scratch within a CPU budget the BN-free VGG-16
# does not train reliably, and with BN on both sides the comparison is about the trunk's
# architecture, not normalisation (BN is frozen in the detector, as the ResNet's).
_base_ = ["./_base_/models/vgg.py", "./_base_/datasets/shapes_cls.py", "./_base_/schedules/repro_cls_pretrain.py"]
model = dict(
    num_classes=5,
    mean=(128.0, 128.0, 128.0),
    std=(64.0, 64.0, 64.0),
    backbone=dict(depth=16, batch_norm=True),
)
train_dataloader = dict(num_workers=0)
val_dataloader = dict(num_workers=0)
work_dir = "work_dirs/repro_cls_vgg16"
