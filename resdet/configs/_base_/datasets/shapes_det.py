# The embedded synthetic detection set: 5 shape classes, 1-4 instances per image with
# overlaps, textured noisy backgrounds, 256 x 256 images, COCO json with instance masks
# (visible regions). Generated deterministically under data/shapes_det/{train,val} on first use.
data_root = "data/shapes_det"
image_size = 256
classes = ["circle", "square", "triangle", "star", "cross"]
train_pipeline = [
    dict(type="ResizeShortestEdge", short_edge_length=image_size, max_size=image_size),
    dict(type="DetRandomFlip", prob=0.5),
]
test_pipeline = [dict(type="ResizeShortestEdge", short_edge_length=image_size, max_size=image_size)]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(
        type="ShapesCocoDataset",
        data_root=data_root,
        split="train",
        num_images=1500,
        image_size=image_size,
        seed=0,
        filter_empty=True,
        pipeline=train_pipeline,
    ),
    sampler=dict(type="AspectRatioGroupedSampler", shuffle=True),
    collate="det_collate",
)
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        type="ShapesCocoDataset",
        data_root=data_root,
        split="val",
        num_images=200,
        image_size=image_size,
        seed=0,
        filter_empty=False,
        pipeline=test_pipeline,
    ),
    sampler=dict(type="InferenceSampler"),
    collate="det_collate",
)
val_evaluator = dict(type="CocoMetric", iou_type="bbox")
