# plain-18 (no shortcuts) on ImageNet, the baseline of Table 2 / Fig. 4. Paper val error: 27.94.
_base_ = ["./_base_/models/resnet.py", "./_base_/datasets/imagenet.py", "./_base_/schedules/imagenet_plateau.py"]
model = dict(
    backbone=dict(depth=18, plain=True, stride_in_1x1=True),
    # per-pixel mean (Sec. 3.4): a 16 x 16 mean image, filled from the training set by
    # tools/train_cls.py (pixel_mean); no division by a std
    mean=[[[m] * 16] * 16 for m in (123.675, 116.28, 103.53)],
    std=None,
)
work_dir = "work_dirs/plain18_imagenet"
