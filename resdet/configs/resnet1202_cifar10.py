# ResNet-1202 on CIFAR-10 (Table 6, option A shortcuts; lr 0.01 until training error < 80%, then 0.1).
# Paper test error: 7.93%.
_base_ = ["./_base_/models/cifar_resnet.py", "./_base_/datasets/cifar10.py", "./_base_/schedules/cifar_64k_warmup.py"]
model = dict(
    backbone=dict(depth=1202, shortcut="A", plain=False),
    # per-pixel mean (Sec. 4.2): a 32 x 32 mean image, filled from the training set by
    # tools/train_cls.py (pixel_mean); no division by a std
    mean=[[[m] * 32] * 32 for m in (125.307, 122.950, 113.865)],
    std=None,
)
work_dir = "work_dirs/resnet1202_cifar10"
