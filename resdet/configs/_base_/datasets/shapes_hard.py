# The detection proxy of `resdet reproduce --only detection`: the shapes set made harder so
# that a backbone comparison is not saturated: 128 x 128 images, 1-8 instances per image
# (shapes 20-56 px across, so most are COCO "small" or "medium"), occlusion down to 30%
# visible, textured noisy backgrounds. Generated deterministically under data/shapes_hard/.
data_root = "data/shapes_hard"
image_size = 128
classes = ["circle", "square", "triangle", "star", "cross"]
generator_kwargs = dict(max_instances=8, min_visible=0.3)
train_pipeline = [
    dict(type="ResizeShortestEdge", short_edge_length=image_size, max_size=image_size),
    dict(type="DetRandomFlip", prob=0.5),
]
test_pipeline = [dict(type="ResizeShortestEdge", short_edge_length=image_size, max_size=image_size)]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dict(
        type="ShapesCocoDataset",
        data_root=data_root,
        split="train",
        num_images=2000,
        image_size=image_size,
        seed=0,
        generator_kwargs=generator_kwargs,
        filter_empty=True,
        pipeline=train_pipeline,
    ),
    sampler=dict(type="AspectRatioGroupedSampler", shuffle=True),
    collate="det_collate",
)
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    dataset=dict(
        type="ShapesCocoDataset",
        data_root=data_root,
        split="val",
        num_images=300,
        image_size=image_size,
        seed=0,
        generator_kwargs=generator_kwargs,
        filter_empty=False,
        pipeline=test_pipeline,
    ),
    sampler=dict(type="InferenceSampler"),
    collate="det_collate",
)
val_evaluator = dict(type="CocoMetric", iou_type="bbox")
