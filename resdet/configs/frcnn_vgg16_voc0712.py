# Faster R-CNN vgg16 on PASCAL VOC 07+12 trainval, evaluated on VOC 2007 test with the
# 11-point mAP@0.5 (paper, Table 7: 73.2). 8 images per step, lr 0.01 (linear scaling of
# the usual 0.02 for 16), 25k iterations (~12 epochs), lr / 10 at 18.75k.
_base_ = ["./_base_/models/frcnn_vgg16.py", "./_base_/datasets/voc0712.py"]
model = dict(num_classes=20, init_cfg=dict(checkpoint="work_dirs/vgg16_imagenet/final.pth", src="resdet_cls"))
optimizer = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = [
    dict(type="LinearWarmupLR", warmup_iters=500, start_factor=0.001),
    dict(type="StepLR", milestones=[18750], gamma=0.1),
]
train_cfg = dict(
    max_iters=25000, val_interval=5000, checkpoint_interval=5000, keep_last=3, log_interval=50, amp=None, seed=0
)
work_dir = "work_dirs/frcnn_vgg16_voc0712"
