# Faster R-CNN ResNet-50-FPN, torchvision-compatible: the same preprocessing as torchvision's
# fasterrcnn_resnet50_fpn (RGB in [0, 1], ImageNet mean/std, bilinear resize inside the model to
# shorter side 800 / longer side <= 1333, padding to 32; the data pipelines never resize) and the
# same RPN / RoI defaults, so torchvision's COCO file loads as it is and gives its detections:
#   resdet.apis.init_model("configs/frcnn_r50_fpn_tv.py", "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth")
#   python tools/eval.py configs/frcnn_r50_fpn_tv.py fasterrcnn_resnet50_fpn_coco-258fb6c6.pth \
#       --metric "mAP@[.5:.95]"
# (or convert it once: python tools/convert_weights.py --src torchvision IN.pth OUT.pth).
# torchvision's 91 class slots (background + COCO category ids 1..90, ten of them unused 'N/A')
# become the 80 COCO classes below, in category-id order: resdet label k = the k-th used COCO id,
# the contiguous label CocoDataset gives instances_val2017.json, so results carry COCO's ids.
_base_ = ["./_base_/models/frcnn_r50_fpn.py"]

model = dict(
    num_classes=80,
    preprocessor=dict(
        type="DetPreprocessor",
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        value_scale=255.0,
        size_divisor=32,
        min_size=800,
        max_size=1333,
    ),
    backbone=dict(stride_in_1x1=False),  # torchvision's v1.5 bottlenecks (stride on the 3x3)
)

classes = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)
test_pipeline = []  # the model resizes (inference_detector reads this)

data_root = "data/coco/"
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    dataset=dict(
        type="CocoDataset",
        ann_file=data_root + "annotations/instances_train2017.json",
        img_dir=data_root + "train2017",
        filter_empty=True,
        classes=classes,
        pipeline=[dict(type="DetRandomFlip", prob=0.5)],
    ),  # the model resizes
    sampler=dict(type="AspectRatioGroupedSampler"),
    collate="det_collate",
)
val_dataloader = dict(
    batch_size=8,
    num_workers=4,
    dataset=dict(
        type="CocoDataset",
        ann_file=data_root + "annotations/instances_val2017.json",
        img_dir=data_root + "val2017",
        filter_empty=False,
        classes=classes,
        pipeline=test_pipeline,
    ),
    sampler=dict(type="InferenceSampler"),
    collate="det_collate",
)
val_evaluator = dict(type="CocoMetric", iou_type="bbox")

# torchvision's reference recipe (lr 0.02 for 16 images per step), iteration-based (~1x schedule)
optimizer = dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = [
    dict(type="LinearWarmupLR", warmup_iters=1000, start_factor=0.001),
    dict(type="StepLR", milestones=[60000, 80000], gamma=0.1),
]
train_cfg = dict(
    max_iters=90000,
    val_interval=10000,
    checkpoint_interval=10000,
    keep_last=3,
    log_interval=50,
    amp=None,
    clip_grad=None,
    sync_bn=False,
    seed=0,
    deterministic=False,
)
load_from = None
work_dir = "work_dirs/frcnn_r50_fpn_tv"
