# Faster R-CNN, ResNet-101 C4 layout (the paper's detector, Sec. 4.3 / Appendix A):
# conv1-conv4 shared at stride 16 for the RPN and the RoI features; RoIAlign 14x14 on conv4,
# then conv5 (first block stride 2) and average pooling per RoI. BN frozen (FrozenBN) with the
# ImageNet statistics; conv1 and conv2_x frozen. num_classes is set by the dataset config.
# Derived by the parts from the backbone's output_shape() (handed down), so not repeated here: the RPN
# head's in_channels (1024) and num_anchors (5 sizes x 3 ratios = 15), the anchor strides (16,),
# the box pooler's spatial_scale (1/16) and the conv5 head's in_channels (1024). A config may
# still state them; a value that disagrees is an error naming the key.
model = dict(
    type="FasterRCNN",
    preprocessor=dict(
        type="DetPreprocessor", mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), size_divisor=32
    ),
    backbone=dict(
        type="ResNet", depth=101, num_stages=3, out_indices=(2,), norm="FrozenBN", frozen_stages=1, stride_in_1x1=True
    ),
    rpn=dict(
        type="RPN",
        in_features=("c4",),
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
        box_pooler=dict(
            type="RoIPooler", featmap_names=("c4",), output_size=14, pool_type="align", sampling_ratio=0, aligned=True
        ),
        box_head=dict(type="Res5BoxHead", depth=101, norm="FrozenBN", stride_in_1x1=True),
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
