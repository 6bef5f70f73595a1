# BCCD with the paper's pipeline: the ResNet-50 C4 detector fine-tuned from an ImageNet
# ResNet-50 (Sec. 4.3 / Appendix A): BN frozen with the ImageNet statistics, conv1 and conv2_x
# frozen, a smaller learning rate. The checkpoint comes from
#   python tools/train_cls.py configs/resnet50_imagenet.py          (work_dirs/resnet50_imagenet/final.pth)
# or use torchvision's ImageNet state_dict as it is (the v1.5 layout is switched to, with a warning):
#   --cfg-options model.init_cfg.checkpoint=resnet50-0676ba61.pth model.init_cfg.src=torchvision
# Not measured here (no ImageNet weights can be downloaded on the CI machine); docs/figures.md's
# BCCD figure is for configs/frcnn_r50_c4_bccd.py, which starts from random weights.
_base_ = ["./frcnn_r50_c4_bccd.py"]
model = dict(
    init_cfg=dict(_delete_=True, checkpoint="work_dirs/resnet50_imagenet/final.pth", src="resdet_cls"),
    backbone=dict(norm="FrozenBN", frozen_stages=1),
    roi_heads=dict(box_head=dict(norm="FrozenBN")),
)
optimizer = dict(lr=0.005)
param_scheduler = [
    dict(type="LinearWarmupLR", warmup_iters=100, start_factor=0.01),
    dict(type="StepLR", milestones=[900], gamma=0.1),
]
work_dir = "work_dirs/frcnn_r50_c4_bccd_imagenet"
