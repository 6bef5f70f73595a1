# The embedded localization default: the paper's Appendix C method on synthetic shapes.
# One dominant shape per 128 x 128 image (boxed, its class is the image's class) plus small
# unboxed distractor shapes of other classes, generated under data/shapes_loc/ in the ILSVRC
# CLS-LOC layout. The classifier is the shapes classification default, fine-tuned on these
# images; the ResNet-18 conv1-conv4 trunk of the per-class RPN starts from the same checkpoint.
#   python tools/train_det.py configs/loc_shapes.py      # trains configs/shapes_cls.py first if
#                                                        # work_dirs/shapes_cls/final.pth is missing
#   python tools/eval.py configs/loc_shapes.py work_dirs/loc_shapes/final.pth --metric loc-err
# Measured (300 val images, 2 shared CPU cores, OMP_NUM_THREADS=1, 5.0 min): top-5 loc error
# 1.33%, top-1 8.00%, GT class known 1.33% (classification top-1 error 7.33%).
data_root = "data/shapes_loc"
cls_checkpoint = "work_dirs/shapes_cls/final.pth"
pretrain = dict(config="configs/shapes_cls.py", checkpoint=cls_checkpoint)
demo = dict(num_images=4, score_thr=0.05)  # train_det.py draws the top-5 guesses into <work_dir>/demo/
classes = ["circle", "square", "triangle", "star", "cross"]
model = dict(
    type="Localizer",
    num_classes=5,
    topk=5,
    cls_input_size=64,
    train_classifier=True,  # fine-tune the classifier on the localization images (distractors are new to it),
    cls_loss_weight=0.1,  # gently: a 10x smaller step than the RPN's
    classifier=dict(
        type="ImageClassifier",
        num_classes=5,
        mean=(128.0, 128.0, 128.0),
        std=(64.0, 64.0, 64.0),
        backbone=dict(type="ResNet", depth=18, shortcut="B", stride_in_1x1=True),
    ),
    preprocessor=dict(type="DetPreprocessor", mean=(128.0, 128.0, 128.0), std=(64.0, 64.0, 64.0), size_divisor=16),
    backbone=dict(type="ResNet", depth=18, num_stages=3, out_indices=(2,), norm="FrozenBN", frozen_stages=1),
    rpn=dict(
        type="PerClassRPN",
        in_features=("c4",),
        anchor_generator=dict(
            type="AnchorGenerator", sizes=((40, 60, 90),), aspect_ratios=(0.75, 1.0, 1.33), strides=(16,)
        ),
        head=dict(type="PerClassRPNHead", in_channels=256, conv_channels=256),
        fg_iou_thresh=0.6,
        bg_iou_thresh=0.3,
        batch_size_per_image=32,
        positive_fraction=0.5,
    ),
    init_cfg=dict(classifier=cls_checkpoint, backbone=cls_checkpoint, src="resdet_cls"),
)
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    dataset=dict(
        type="ShapesLocDataset",
        data_root=data_root,
        split="train",
        num_images=1000,
        image_size=128,
        pipeline=[dict(type="DetRandomFlip", prob=0.5)],
    ),
    sampler=dict(type="DistributedTrainSampler", shuffle=True),
    collate="loc_collate",
)
val_dataloader = dict(
    batch_size=25,
    num_workers=1,
    dataset=dict(
        type="ShapesLocDataset", data_root=data_root, split="val", num_images=300, image_size=128, pipeline=[]
    ),
    collate="loc_collate",
)
test_dataloader = val_dataloader
val_evaluator = dict(type="LocalizationError", iou_thr=0.5, topk=5)
test_evaluator = val_evaluator
optimizer = dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=1e-4)
param_scheduler = [
    dict(type="LinearWarmupLR", warmup_iters=30, start_factor=0.1),
    dict(type="CosineLR", min_lr=0.0),
]
train_cfg = dict(max_iters=300, val_interval=300, checkpoint_interval=300, keep_last=1, log_interval=20, seed=0)
work_dir = "work_dirs/loc_shapes"
