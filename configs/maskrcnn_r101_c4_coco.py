# Mask R-CNN ResNet-101 C4 on COCO: the paper's C4 detector (conv1-4 shared, conv5 per RoI on
# 14x14 RoIAlign features) with a mask branch on the RoIs' conv5 output (7x7 -> deconv ->
# 14x14 per-class masks). Shorter side 600 (max 1000) as in the paper; 1x-like schedule.
#   python tools/train_det.py configs/maskrcnn_r101_c4_coco.py
#   python tools/eval.py configs/maskrcnn_r101_c4_coco.py work_dirs/maskrcnn_r101_c4_coco/final.pth \
#       --metric "mAP@[.5:.95]" --metric "segm-mAP@[.5:.95]"
_base_ = ["./_base_/models/maskrcnn_r101_c4.py"]

model = dict(num_classes=80)

data_root = "data/coco/"
train_dataloader = dict(
    batch_size=16, num_workers=4,
    dataset=dict(type="CocoDataset", ann_file=data_root + "annotations/instances_train2017.json",
                 img_dir=data_root + "train2017", filter_empty=True, with_masks=True,
                 pipeline=[dict(type="ResizeShortestEdge", short_edge_length=600, max_size=1000),
                           dict(type="DetRandomFlip", prob=0.5)]),
    sampler=dict(type="AspectRatioGroupedSampler"),
    collate="det_collate")
val_dataloader = dict(
    batch_size=8, num_workers=4,
    dataset=dict(type="CocoDataset", ann_file=data_root + "annotations/instances_val2017.json",
                 img_dir=data_root + "val2017", filter_empty=False, with_masks=True,
                 pipeline=[dict(type="ResizeShortestEdge", short_edge_length=600, max_size=1000)]),
    sampler=dict(type="InferenceSampler"),
    collate="det_collate")
val_evaluator = [dict(type="CocoMetric", iou_type="bbox"), dict(type="CocoMetric", iou_type="segm")]

optimizer = dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = [dict(type="LinearWarmupLR", warmup_iters=1000, start_factor=0.001),
                   dict(type="StepLR", milestones=[60000, 80000], gamma=0.1)]
train_cfg = dict(max_iters=90000, val_interval=10000, checkpoint_interval=10000, keep_last=3,
                 log_interval=50, amp=None, clip_grad=None, sync_bn=False, seed=0, deterministic=False)
load_from = None
work_dir = "work_dirs/maskrcnn_r101_c4_coco"
