# COCO 2017 detection (train2017 / val2017 = the paper's train / minival split sizes).
# Layout: data/coco/annotations/instances_{train,val}2017.json, data/coco/{train,val}2017/.
data_root = "data/coco/"
train_pipeline = [
    dict(type="ResizeShortestEdge", short_edge_length=600, max_size=1000),
    dict(type="DetRandomFlip", prob=0.5),
]
test_pipeline = [dict(type="ResizeShortestEdge", short_edge_length=600, max_size=1000)]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    dataset=dict(
        type="CocoDataset",
        ann_file=data_root + "annotations/instances_train2017.json",
        img_dir=data_root + "train2017",
        filter_empty=True,
        pipeline=train_pipeline,
    ),
    sampler=dict(type="AspectRatioGroupedSampler", shuffle=True),
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
        pipeline=test_pipeline,
    ),
    sampler=dict(type="InferenceSampler"),
    collate="det_collate",
)
val_evaluator = dict(type="CocoMetric", iou_type="bbox")
