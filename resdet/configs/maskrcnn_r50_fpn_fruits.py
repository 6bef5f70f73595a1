# Mask R-CNN ResNet-50-FPN fine-tuned on the real fruits set (../shared/data/fruits_coco: 18
# photos, 165 polygon instances of date / fig / hazelnut, COCO json). The set is tiny and has
# no separate split, so validation runs on the training images: use it to check the whole
# mask pipeline on real photos and polygons, not to measure generalisation.
#   python tools/train_det.py configs/maskrcnn_r50_fpn_fruits.py --cfg-options load_from=<coco.pth>
#   python tools/eval.py configs/maskrcnn_r50_fpn_fruits.py work_dirs/maskrcnn_r50_fpn_fruits/final.pth \
#       --metric "mAP@[.5:.95]" --metric "segm-mAP@[.5:.95]"
_base_ = ["./_base_/models/maskrcnn_r50_fpn.py"]

model = dict(num_classes=3)

data_root = "../shared/data/fruits_coco/"
classes = ["date", "fig", "hazelnut"]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    dataset=dict(
        type="CocoDataset",
        ann_file=data_root + "annotations.json",
        img_dir=data_root + "images",
        filter_empty=True,
        with_masks=True,
        pipeline=[
            dict(type="ResizeShortestEdge", short_edge_length=(480, 512, 544, 576, 608), max_size=800),
            dict(type="DetRandomFlip", prob=0.5),
        ],
    ),
    sampler=dict(type="AspectRatioGroupedSampler"),
    collate="det_collate",
)
val_dataloader = dict(
    batch_size=2,
    num_workers=2,
    dataset=dict(
        type="CocoDataset",
        ann_file=data_root + "annotations.json",
        img_dir=data_root + "images",
        filter_empty=False,
        with_masks=True,
        pipeline=[dict(type="ResizeShortestEdge", short_edge_length=544, max_size=800)],
    ),
    sampler=dict(type="InferenceSampler"),
    collate="det_collate",
)
val_evaluator = [dict(type="CocoMetric", iou_type="bbox"), dict(type="CocoMetric", iou_type="segm")]

optimizer = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = [
    dict(type="LinearWarmupLR", warmup_iters=50, start_factor=0.01),
    dict(type="StepLR", milestones=[800], gamma=0.1),
]
train_cfg = dict(
    max_iters=1000, val_interval=500, checkpoint_interval=500, keep_last=1, log_interval=20, amp=None, seed=0
)
load_from = None
work_dir = "work_dirs/maskrcnn_r50_fpn_fruits"
