# COCO 2017 instance segmentation: the detection set with masks, box and mask AP.
_base_ = ["./coco_detection.py"]
train_dataloader = dict(dataset=dict(with_masks=True))
val_dataloader = dict(dataset=dict(with_masks=True))
val_evaluator = [dict(type="CocoMetric", iou_type="bbox"), dict(type="CocoMetric", iou_type="segm")]
