# BCCD blood-cell detection (292 real 640x480 smear photos; RBC / WBC / Platelets), VOC
# layout with train (205) / val (87) splits. Two annotations are zero-area points: they are
# dropped and counted at load. The path is the repository's shared data; change data_root.
data_root = "../shared/data/bccd_voc"
classes = ["RBC", "WBC", "Platelets"]
train_pipeline = [
    dict(type="ResizeShortestEdge", short_edge_length=480, max_size=640),
    dict(type="DetRandomFlip", prob=0.5),
]
test_pipeline = [dict(type="ResizeShortestEdge", short_edge_length=480, max_size=640)]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    dataset=dict(type="VOCDataset", root=data_root, split="train", classes=classes, pipeline=train_pipeline),
    sampler=dict(type="AspectRatioGroupedSampler", shuffle=True),
    collate="det_collate",
)
val_dataloader = dict(
    batch_size=2,
    num_workers=2,
    dataset=dict(
        type="VOCDataset", root=data_root, split="val", classes=classes, filter_empty=False, pipeline=test_pipeline
    ),
    sampler=dict(type="InferenceSampler"),
    collate="det_collate",
)
val_evaluator = dict(type="VOCMetric", iou_thr=0.5, ap_method="area")
