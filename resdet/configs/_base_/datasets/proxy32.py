# The CIFAR-10 proxy of `resdet reproduce`: twenty shape classes at 32 x 32 with random scale,
# rotation, colour, clutter, occlusion and noise (resdet.data.synthetic.proxy32), generated
# deterministically under data/proxy32/ on first use: 20k training and 5k test images.
# The paper's CIFAR augmentation (Sec. 4.2): 4-pixel zero padding, random 32 x 32 crop,
# horizontal flip; test on the original image; per-pixel mean subtraction (pixel_mean below).
data_root = "data/proxy32"
train_pipeline = [
    dict(type="RandomCrop", size=32, padding=4),
    dict(type="RandomHorizontalFlip", prob=0.5),
]
train_dataloader = dict(
    batch_size=128,  # the paper's
    num_workers=0,  # in memory; crop + flip are cheap, and workers would take the CPU cores
    dataset=dict(
        type="Proxy32Dataset", data_root=data_root, split="train", num_images=20000, seed=0, pipeline=train_pipeline
    ),
    sampler=dict(type="DistributedTrainSampler", shuffle=True),
    collate="cls_collate",
)
val_dataloader = dict(
    batch_size=500,
    num_workers=0,
    dataset=dict(type="Proxy32Dataset", data_root=data_root, split="test", num_images=5000, seed=0, pipeline=[]),
    collate="cls_collate",
)
val_evaluator = dict(type="TopKError", topk=(1, 2))
pixel_mean = dict(size=32)
classes = [
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "hexagon",
    "arrow",
    "ring",
    "crescent",
    "lshape",
    "pentagon",
    "star4",
    "star6",
    "tshape",
    "ushape",
    "semicircle",
    "trapezoid",
    "chevron",
    "thinring",
    "bars",
]
