# Faster R-CNN ResNet-50-FPN, the 1x schedule: 90k iterations of 16 images, lr 0.02 (linear
# warm-up over 1000), divided by 10 at 60k and 80k; multi-scale training (shorter side
# 640-800), test at 800 (longer side <= 1333).
_base_ = ["./_base_/models/frcnn_r50_fpn.py", "./_base_/datasets/coco_detection.py", "./_base_/schedules/coco_1x.py"]
model = dict(num_classes=80, init_cfg=dict(checkpoint="work_dirs/resnet50_imagenet/final.pth", src="resdet_cls"))
train_pipeline = [
    dict(type="ResizeShortestEdge", short_edge_length=(640, 672, 704, 736, 768, 800), max_size=1333),
    dict(type="DetRandomFlip", prob=0.5),
]
test_pipeline = [dict(type="ResizeShortestEdge", short_edge_length=800, max_size=1333)]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
work_dir = "work_dirs/frcnn_r50_fpn_coco"
