# Mask R-CNN ResNet-101 C4 on COCO: the paper's C4 detector (conv1-4 shared, conv5 per RoI on
# 14x14 RoIAlign features) with a mask branch on the RoIs' conv5 output (7x7 -> deconv ->
# 14x14 per-class masks). Shorter side 600 (max 1000) as in the paper; 1x-like schedule.
#   python tools/train_det.py configs/maskrcnn_r101_c4_coco.py
#   python tools/eval.py configs/maskrcnn_r101_c4_coco.py work_dirs/maskrcnn_r101_c4_coco/final.pth \
#       --metric "mAP@[.5:.95]" --metric "segm-mAP@[.5:.95]"
_base_ = ["./_base_/models/maskrcnn_r101_c4.py", "./_base_/datasets/coco_instance.py", "./_base_/schedules/coco_1x.py"]

model = dict(num_classes=80)
train_pipeline = [
    dict(type="ResizeShortestEdge", short_edge_length=600, max_size=1000),
    dict(type="DetRandomFlip", prob=0.5),
]
test_pipeline = [dict(type="ResizeShortestEdge", short_edge_length=600, max_size=1000)]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
work_dir = "work_dirs/maskrcnn_r101_c4_coco"
