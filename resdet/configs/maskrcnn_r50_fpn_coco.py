# Mask R-CNN ResNet-50-FPN on COCO (train2017 / val2017), 1x schedule (90k iterations at 16
# images per step), shorter side 800 (max 1333) with horizontal flip; box and mask AP.
#   python tools/train_det.py configs/maskrcnn_r50_fpn_coco.py
#   python tools/eval.py configs/maskrcnn_r50_fpn_coco.py work_dirs/maskrcnn_r50_fpn_coco/final.pth \
#       --metric "mAP@[.5:.95]" --metric "segm-mAP@[.5:.95]"
_base_ = ["./_base_/models/maskrcnn_r50_fpn.py", "./_base_/datasets/coco_instance.py", "./_base_/schedules/coco_1x.py"]

model = dict(num_classes=80)
train_pipeline = [
    dict(type="ResizeShortestEdge", short_edge_length=800, max_size=1333),
    dict(type="DetRandomFlip", prob=0.5),
]
test_pipeline = [dict(type="ResizeShortestEdge", short_edge_length=800, max_size=1333)]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
work_dir = "work_dirs/maskrcnn_r50_fpn_coco"
