# ImageNet localization with ResNet-101 (the paper's Appendix C, Table 13/14):
# a ResNet-101 classification network gives the top-5 classes; a ResNet-101 trunk
# (conv1-conv4, stride 16, BN frozen) with a per-class RPN (one logistic score and one box
# regressor per class and anchor; 8 anchors sampled per image, 1:1) predicts a box for each;
# an R-CNN stage (RoIAlign on conv4, conv5 per RoI, per-class cls and reg) re-scores and
# refines the RPN's 200 class-specific proposals of each guessed class.
# Both networks start from the ImageNet classification checkpoint:
#   python tools/train_cls.py configs/resnet101_imagenet.py       # -> work_dirs/resnet101_imagenet/final.pth
#   torchrun --nproc_per_node 8 tools/train_det.py configs/loc_r101_imagenet.py
#   python tools/eval.py configs/loc_r101_imagenet.py work_dirs/loc_r101_imagenet/final.pth --metric loc-err
# Paper: top-5 localization error 14.4% (RPN only, dense multi-scale testing), 10.6% with
# R-CNN (val, single model), 9.0% (test, ensemble).
# Deviations: the R-CNN stage trains jointly with the RPN on the shared conv4 features (the
# paper trained a separate RoI-centric R-CNN on warped 224 x 224 crops); schedule below is ours.
_base_ = ["./_base_/datasets/imagenet_loc.py"]
cls_checkpoint = "work_dirs/resnet101_imagenet/final.pth"
pretrain = dict(config="configs/resnet101_imagenet.py", checkpoint=cls_checkpoint)  # run first if missing
model = dict(
    type="Localizer",
    num_classes=1000,
    topk=5,
    cls_input_size=224,
    classifier=dict(
        type="ImageClassifier",
        num_classes=1000,
        backbone=dict(type="ResNet", depth=101, shortcut="B", stride_in_1x1=True),
    ),
    preprocessor=dict(
        type="DetPreprocessor", mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), size_divisor=16
    ),
    backbone=dict(
        type="ResNet", depth=101, num_stages=3, out_indices=(2,), norm="FrozenBN", frozen_stages=1, stride_in_1x1=True
    ),
    rpn=dict(
        type="PerClassRPN",
        in_features=("c4",),
        anchor_generator=dict(
            type="AnchorGenerator", sizes=((64, 128, 256, 512),), aspect_ratios=(0.5, 1.0, 2.0), strides=(16,)
        ),
        head=dict(type="PerClassRPNHead", in_channels=1024, conv_channels=512),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=8,
        positive_fraction=0.5,
        nms_thresh=0.7,
        pre_nms_top_n_test=1000,
    ),
    roi_heads=dict(
        type="StandardRoIHeads",
        box_pooler=dict(
            type="RoIPooler",
            featmap_names=("c4",),
            output_size=14,
            pool_type="align",
            sampling_ratio=0,
            aligned=True,
            spatial_scale=1.0 / 16,
        ),
        box_head=dict(type="Res5BoxHead", depth=101, in_channels=1024, norm="FrozenBN", stride_in_1x1=True),
        box_predictor=dict(type="BoxPredictor"),
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=64,
        positive_fraction=0.25,
        bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
    ),
    rcnn_proposals_train=200,
    rcnn_proposals_test=200,
    init_cfg=dict(classifier=cls_checkpoint, backbone=cls_checkpoint, src="resdet_cls"),
)
optimizer = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4)
param_scheduler = [
    dict(type="LinearWarmupLR", warmup_iters=500, start_factor=0.1),
    dict(type="StepLR", milestones=[30000], gamma=0.1),
]
train_cfg = dict(
    max_iters=40000, val_interval=5000, checkpoint_interval=2000, keep_last=3, log_interval=50, amp="bf16", seed=0
)
work_dir = "work_dirs/loc_r101_imagenet"
# the classifier is frozen here, so training images without boxes would only cost time
train_dataloader = dict(dataset=dict(with_unannotated=False))
