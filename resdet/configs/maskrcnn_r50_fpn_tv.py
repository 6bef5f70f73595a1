# Mask R-CNN ResNet-50-FPN, torchvision-compatible: the same preprocessing as torchvision's
# maskrcnn_resnet50_fpn (RGB in [0, 1], ImageNet mean/std, resize inside the model to shorter
# side 800 / longer side <= 1333, padding to 32; the data pipelines never resize), the same RPN /
# RoI settings and torchvision's mask pasting (paste_mode='torchvision'), so torchvision's COCO
# file loads as it is and gives its detections and masks:
#   resdet.apis.init_model("configs/maskrcnn_r50_fpn_tv.py", "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth")
#   python tools/eval.py configs/maskrcnn_r50_fpn_tv.py maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth \
#       --metric "mAP@[.5:.95]" --metric "segm-mAP@[.5:.95]"
# torchvision's 91 class slots (background + COCO category ids 1..90, ten of them unused 'N/A')
# become the 80 COCO classes below, in category-id order: resdet label k = the k-th used COCO id,
# the contiguous label CocoDataset gives instances_val2017.json, so results carry COCO's ids.
_base_ = ["./maskrcnn_r50_fpn_coco.py"]

model = dict(
    num_classes=80,
    paste_mode="torchvision",
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
# the model resizes: the data pipelines only flip (training) or leave the images as they are.
# Both pipelines are set here, not only the loaders': the COCO base's test_pipeline (shorter
# side 800) would otherwise reach inference_detector and resize twice.
train_pipeline = [dict(type="DetRandomFlip", prob=0.5)]
test_pipeline = []
train_dataloader = dict(dataset=dict(classes=classes, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(classes=classes, pipeline=test_pipeline))
work_dir = "work_dirs/maskrcnn_r50_fpn_tv"
