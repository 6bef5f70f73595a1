# Faster R-CNN ResNet-50-FPN, torchvision-compatible: the same preprocessing as torchvision's
# fasterrcnn_resnet50_fpn (RGB in [0, 1], ImageNet mean/std, bilinear resize inside the model to
# shorter side 800 / longer side <= 1333, padding to 32) and the same RPN / RoI defaults, so
# its weights converted with
#   python tools/convert_weights.py --src torchvision <fasterrcnn_resnet50_fpn.pth> <out.pth>
# give the same detections here (resdet label = torchvision label - 1).
_base_ = ["./_base_/models/frcnn_r50_fpn.py"]

model = dict(
    num_classes=80,
    preprocessor=dict(type="DetPreprocessor", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                      value_scale=255.0, size_divisor=32, min_size=800, max_size=1333),
    backbone=dict(stride_in_1x1=False),  # torchvision's v1.5 bottlenecks (stride on the 3x3)
)

data_root = "data/coco/"
train_dataloader = dict(
    batch_size=16, num_workers=4,
    dataset=dict(type="CocoDataset", ann_file=data_root + "annotations/instances_train2017.json",
                 img_dir=data_root + "train2017", filter_empty=True,
                 pipeline=[dict(type="DetRandomFlip", prob=0.5)]),  # the model resizes
    sampler=dict(type="AspectRatioGroupedSampler"),
    collate="det_collate")
val_dataloader = dict(
    batch_size=8, num_workers=4,
    dataset=dict(type="CocoDataset", ann_file=data_root + "annotations/instances_val2017.json",
                 img_dir=data_root + "val2017", filter_empty=False, pipeline=[]),
    sampler=dict(type="InferenceSampler"),
    collate="det_collate")
val_evaluator = dict(type="CocoMetric", iou_type="bbox")

# torchvision's reference recipe (lr 0.02 for 16 images per step), iteration-based (~1x schedule)
optimizer = dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = [dict(type="LinearWarmupLR", warmup_iters=1000, start_factor=0.001),
                   dict(type="StepLR", milestones=[60000, 80000], gamma=0.1)]
train_cfg = dict(max_iters=90000, val_interval=10000, checkpoint_interval=10000, keep_last=3,
                 log_interval=50, amp=None, clip_grad=None, sync_bn=False, seed=0, deterministic=False)
load_from = None
work_dir = "work_dirs/frcnn_r50_fpn_tv"
