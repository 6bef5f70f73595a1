# plain-32 (no shortcuts) on CIFAR-10, the baselines of Fig. 6 (training error grows with depth).
_base_ = ["./_base_/models/cifar_resnet.py", "./_base_/datasets/cifar10.py", "./_base_/schedules/cifar_64k.py"]
model = dict(
    backbone=dict(depth=32, plain=True),
    # per-pixel mean (Sec. 4.2): a 32 x 32 mean image, filled from the training set by
    # tools/train_cls.py (pixel_mean); no division by a std
    mean=[[[m] * 32] * 32 for m in (125.307, 122.950, 113.865)],
    std=None,
)
work_dir = "work_dirs/plain32_cifar10"
