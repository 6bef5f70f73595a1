# PASCAL VOC: train on 07+12 trainval (16551 images), test on 07 test (4952), mAP@0.5 with
# the VOC2007 11-point AP. Layout: data/VOCdevkit/VOC2007, data/VOCdevkit/VOC2012.
data_root = "data/VOCdevkit/"
train_pipeline = [
    dict(type="ResizeShortestEdge", short_edge_length=600, max_size=1000),
    dict(type="DetRandomFlip", prob=0.5),
]
test_pipeline = [dict(type="ResizeShortestEdge", short_edge_length=600, max_size=1000)]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    dataset=dict(
        type="ConcatDataset",
        datasets=[
            dict(type="VOCDataset", root=data_root + "VOC2007", split="trainval", pipeline=train_pipeline),
            dict(type="VOCDataset", root=data_root + "VOC2012", split="trainval", pipeline=train_pipeline),
        ],
    ),
    sampler=dict(type="AspectRatioGroupedSampler", shuffle=True),
    collate="det_collate",
)
val_dataloader = dict(
    batch_size=8,
    num_workers=4,
    dataset=dict(
        type="VOCDataset", root=data_root + "VOC2007", split="test", filter_empty=False, pipeline=test_pipeline
    ),
    sampler=dict(type="InferenceSampler"),
    collate="det_collate",
)
val_evaluator = dict(type="VOCMetric", iou_thr=0.5, ap_method="11point")
