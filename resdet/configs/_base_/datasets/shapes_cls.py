# The embedded synthetic default: 5 shape classes on textured, noisy 64 x 64 images, generated
# deterministically under data/shapes_cls/ on first use (resdet.data.synthetic.shapes).
data_root = "data/shapes_cls"
image_size = 64
train_pipeline = [
    dict(type="RandomCrop", size=64, padding=4),
    dict(type="RandomHorizontalFlip", prob=0.5),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    dataset=dict(
        type="ShapesClsDataset",
        data_root=data_root,
        split="train",
        num_images=2500,
        image_size=image_size,
        seed=0,
        pipeline=train_pipeline,
    ),
    sampler=dict(type="DistributedTrainSampler", shuffle=True),
    collate="cls_collate",
)
val_dataloader = dict(
    batch_size=100,
    num_workers=1,
    dataset=dict(
        type="ShapesClsDataset",
        data_root=data_root,
        split="val",
        num_images=500,
        image_size=image_size,
        seed=0,
        pipeline=[],
    ),
    collate="cls_collate",
)
val_evaluator = dict(type="TopKError", topk=(1, 2))
classes = ["circle", "square", "triangle", "star", "cross"]
