# Faster R-CNN with VGG-16 (the paper's baseline): conv5_3 at stride 16 for the RPN and RoI
# pooling 7x7, then fc6/fc7 (4096, dropout 0.5) per RoI; conv1_x and conv2_x frozen.
# Derived from the backbone's output_shape() (conv5_3: 512 channels, stride 16): the RPN head's
# in_channels (512) and num_anchors (15), the anchor strides (16,), the pooler's spatial_scale
# (1/16) and the fc head's in_channels (512) and pooled_size (7, the pooler's output_size).
model = dict(
    type="FasterRCNN",
    preprocessor=dict(
        type="DetPreprocessor", mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), size_divisor=32
    ),
    backbone=dict(type="VGG", depth=16, frozen_stages=2),
    rpn=dict(
        type="RPN",
        in_features=("conv5_3",),
        anchor_generator=dict(type="AnchorGenerator", sizes=((32, 64, 128, 256, 512),), aspect_ratios=(0.5, 1.0, 2.0)),
        head=dict(type="RPNHead"),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=256,
        positive_fraction=0.5,
        pre_nms_top_n_train=12000,
        post_nms_top_n_train=2000,
        pre_nms_top_n_test=6000,
        post_nms_top_n_test=1000,
        nms_thresh=0.7,
        min_size=1e-3,
    ),
    roi_heads=dict(
        type="StandardRoIHeads",
        num_classes=80,
        box_pooler=dict(type="RoIPooler", featmap_names=("conv5_3",), output_size=7, pool_type="pool"),
        box_head=dict(type="FCBoxHead", num_fcs=2, fc_dim=4096, dropout=0.5),
        box_predictor=dict(type="BoxPredictor"),
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=512,
        positive_fraction=0.25,
        bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
        loss_bbox="smooth_l1",
        smooth_l1_beta=1.0,
        score_thresh=0.05,
        nms_thresh=0.5,
        detections_per_img=100,
    ),
)
