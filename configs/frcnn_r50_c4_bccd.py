# Real data: Faster R-CNN ResNet-50 C4 on the BCCD blood-cell photos (train split), mAP@0.5
# on the val split. Start it from an ImageNet ResNet-50 (init_cfg); without one, set
# model.init_cfg=None (from scratch, much weaker on 205 images).
_base_ = ["./_base_/models/frcnn_r101_c4.py", "./_base_/datasets/bccd.py"]
model = dict(
    num_classes=3,
    init_cfg=dict(checkpoint="work_dirs/resnet50_imagenet/final.pth", src="resdet_cls"),
    backbone=dict(depth=50),
    rpn=dict(anchor_generator=dict(sizes=((16, 32, 64, 128, 256),))),
    roi_heads=dict(box_head=dict(depth=50), batch_size_per_image=128))
optimizer = dict(type="SGD", lr=0.005, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = [dict(type="LinearWarmupLR", warmup_iters=100, start_factor=0.01),
                   dict(type="StepLR", milestones=[1500], gamma=0.1)]
train_cfg = dict(max_iters=2000, val_interval=500, checkpoint_interval=500, keep_last=2,
                 log_interval=20, amp=None, seed=0)
work_dir = "work_dirs/frcnn_r50_c4_bccd"
