# The paper's COCO detector (Sec. 4.3 / Appendix A): Faster R-CNN, ResNet-101 C4, shorter
# side 600, 8 images per step in total, lr 0.001 for 240k iterations then 0.0001 for 80k.
# Paper: mAP@0.5 48.4, mAP@[.5:.95] 27.2 on COCO val. Needs an ImageNet ResNet-101
# checkpoint (tools/train_cls.py configs/resnet101_imagenet.py, or a converted torchvision one).
_base_ = ["./_base_/models/frcnn_r101_c4.py", "./_base_/datasets/coco_detection.py"]
model = dict(num_classes=80, init_cfg=dict(checkpoint="work_dirs/resnet101_imagenet/final.pth", src="resdet_cls"))
optimizer = dict(type="SGD", lr=0.001, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = dict(type="StepLR", milestones=[240000], gamma=0.1)
train_cfg = dict(
    max_iters=320000, val_interval=40000, checkpoint_interval=10000, keep_last=3, log_interval=50, amp=None, seed=0
)
work_dir = "work_dirs/frcnn_r101_coco"
