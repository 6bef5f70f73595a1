# ResNet-152 on ImageNet, the paper's recipe.
# Paper 10-crop val error: 21.43 / 5.71 (Table 3; 19.38 / 4.49 multi-scale, Table 4).
_base_ = ["./_base_/models/resnet.py", "./_base_/datasets/imagenet.py", "./_base_/schedules/imagenet_plateau.py"]
model = dict(
    backbone=dict(depth=152, shortcut="B", plain=False, stride_in_1x1=True),
    # per-pixel mean (Sec. 3.4): a 16 x 16 mean image, filled from the training set by
    # tools/train_cls.py (pixel_mean); no division by a std
    mean=[[[m] * 16] * 16 for m in (123.675, 116.28, 103.53)],
    std=None,
)
work_dir = "work_dirs/resnet152_imagenet"
