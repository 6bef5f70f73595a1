# plain-56 (no shortcuts) on the CIFAR-10 proxy (data/proxy32), the paper's CIFAR recipe scaled to a CPU budget.
# Part of `resdet reproduce` (docs/reproduction.md); alone:
#   python tools/train_cls.py configs/repro_plain56.py --cfg-options train_cfg.threads=2
_base_ = ["./_base_/models/cifar_resnet.py", "./_base_/datasets/proxy32.py", "./_base_/schedules/repro_proxy.py"]
model = dict(
    num_classes=20,  # the proxy's classes (datasets/proxy32.py)
    backbone=dict(depth=56, shortcut="A", plain=True),
    # per-pixel mean (Sec. 4.2): the 32 x 32 mean image of the training split, filled by
    # tools/train_cls.py (pixel_mean); no division by a std
    mean=[[[128.0] * 32] * 32] * 3,
    std=None,
)
work_dir = "work_dirs/repro_plain56"
