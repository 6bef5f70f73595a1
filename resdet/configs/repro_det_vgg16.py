# Faster R-CNN with VGG-16 (the paper's baseline: conv5_3 at stride 16, 7x7 RoI features, fc6/fc7
# per RoI) on the detection proxy, initialised from configs/repro_cls_vgg16.py (BN frozen).
# RoIAlign rather than the paper's RoI max pooling: the ResNet-50 C4 detector it is compared with
# (configs/repro_det_r50_c4.py) pools with RoIAlign, and the comparison is about the backbone.
# On 128 x 128 images (an 8 x 8 conv5_3 map) the pooler matters: with RoI max pooling this
# detector reached mAP@[.5:.95] 11.2 / 10.9 on two seeds (docs/reproduction.md, section 4).
# Part of `resdet reproduce --only detection`; alone:
#   python tools/train_det.py configs/repro_det_vgg16.py
_base_ = ["./_base_/models/frcnn_vgg16.py", "./_base_/datasets/shapes_hard.py", "./_base_/schedules/repro_det.py"]
pretrain = dict(config="configs/repro_cls_vgg16.py", checkpoint="work_dirs/repro_cls_vgg16/final.pth")
model = dict(
    num_classes=5,
    init_cfg=dict(checkpoint=pretrain["checkpoint"], src="resdet_cls"),
    preprocessor=dict(mean=(128.0, 128.0, 128.0), std=(64.0, 64.0, 64.0), size_divisor=16),
    backbone=dict(batch_norm=True, norm="FrozenBN"),
    rpn=dict(
        anchor_generator=dict(sizes=((16, 32, 64),), aspect_ratios=(0.5, 1.0, 2.0)),
        batch_size_per_image=128,
        pre_nms_top_n_train=600,
        post_nms_top_n_train=150,
        pre_nms_top_n_test=300,
        post_nms_top_n_test=50,
    ),
    roi_heads=dict(
        box_pooler=dict(pool_type="align", sampling_ratio=0, aligned=True),
        batch_size_per_image=16,
        detections_per_img=50,
    ),
)
classes = ["circle", "square", "triangle", "star", "cross"]
work_dir = "work_dirs/repro_det_vgg16"
