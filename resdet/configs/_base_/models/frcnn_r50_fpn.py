# Faster R-CNN with ResNet-50-FPN: P2-P6 (256 channels), one anchor size per level
# (32..512) x 3 ratios, RPN top-N per level 2000 (train) / 1000 (test), level-assigned
# RoIAlign 7x7 (torchvision.ops.MultiScaleRoIAlign), 2-FC (1024) head.
# Derived by the parts from the backbone's and the FPN's output_shape() (handed down): the FPN's
# in_channels (256, 512, 1024, 2048), the RPN head's in_channels (256) and num_anchors (1 size x
# 3 ratios = 3), the box head's in_channels (256) and pooled_size (7). The anchor strides stay
# measured per batch (padded size // feature size), torchvision's rule: batches are padded to 32,
# so P6 (stride 64) of an 800-pixel batch has 13 cells 61 pixels apart, as in torchvision.
model = dict(
    type="FasterRCNN",
    preprocessor=dict(
        type="DetPreprocessor", mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), size_divisor=32
    ),
    backbone=dict(
        type="ResNet", depth=50, out_indices=(0, 1, 2, 3), norm="FrozenBN", frozen_stages=1, stride_in_1x1=True
    ),
    neck=dict(
        type="FPN", out_channels=256, in_features=("c2", "c3", "c4", "c5"), out_features=("p2", "p3", "p4", "p5", "p6")
    ),
    rpn=dict(
        type="RPN",
        in_features=("p2", "p3", "p4", "p5", "p6"),
        anchor_generator=dict(
            type="AnchorGenerator", sizes=((32,), (64,), (128,), (256,), (512,)), aspect_ratios=(0.5, 1.0, 2.0)
        ),
        head=dict(type="RPNHead"),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=256,
        positive_fraction=0.5,
        pre_nms_top_n_train=2000,
        post_nms_top_n_train=2000,
        pre_nms_top_n_test=1000,
        post_nms_top_n_test=1000,
        nms_thresh=0.7,
        min_size=1e-3,
    ),
    roi_heads=dict(
        type="StandardRoIHeads",
        num_classes=80,
        box_pooler=dict(
            type="RoIPooler", featmap_names=("p2", "p3", "p4", "p5"), output_size=7, sampling_ratio=2, aligned=False
        ),
        box_head=dict(type="FCBoxHead", num_fcs=2, fc_dim=1024),
        box_predictor=dict(type="BoxPredictor"),
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=512,
        positive_fraction=0.25,
        bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
        loss_bbox="smooth_l1",
        smooth_l1_beta=1.0 / 9,
        score_thresh=0.05,
        nms_thresh=0.5,
        detections_per_img=100,
    ),
)
