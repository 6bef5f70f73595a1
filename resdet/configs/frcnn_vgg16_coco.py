# The paper's VGG-16 baseline on COCO (Table 8: mAP@0.5 41.5, mAP@[.5:.95] 21.2), same
# schedule as frcnn_r101_coco.py. Needs an ImageNet VGG-16 checkpoint.
_base_ = ["./_base_/models/frcnn_vgg16.py", "./_base_/datasets/coco_detection.py"]
model = dict(num_classes=80, init_cfg=dict(checkpoint="work_dirs/vgg16_imagenet/final.pth", src="resdet_cls"))
optimizer = dict(type="SGD", lr=0.001, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = dict(type="StepLR", milestones=[240000], gamma=0.1)
train_cfg = dict(
    max_iters=320000, val_interval=40000, checkpoint_interval=10000, keep_last=3, log_interval=50, amp=None, seed=0
)
work_dir = "work_dirs/frcnn_vgg16_coco"
