# The embedded default: a ResNet-18 classifier on the synthetic shapes set (generated under
# data/shapes_cls/ on first use): 500 iterations of batch 32, about 97% validation accuracy;
# measured 4 min wall on a shared 2-core CPU with one thread (2.5 CPU-minutes, generation included).
# The detection default (configs/shapes_det*.py) starts from work_dirs/shapes_cls/final.pth.
#   python tools/train_cls.py configs/shapes_cls.py
_base_ = ["./_base_/models/resnet.py", "./_base_/datasets/shapes_cls.py", "./_base_/schedules/shapes_cls.py"]
model = dict(
    num_classes=5,
    mean=(128.0, 128.0, 128.0),
    std=(64.0, 64.0, 64.0),
    backbone=dict(depth=18, shortcut="B", stride_in_1x1=True),
)
work_dir = "work_dirs/shapes_cls"
