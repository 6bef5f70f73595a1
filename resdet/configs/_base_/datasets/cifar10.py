# CIFAR-10 (Sec. 4.2): 4-pixel zero padding, random 32 x 32 crop, horizontal flip; test on the
# original image. Layout: data/cifar10/{data_batch_1..5,test_batch,batches.meta} (python version).
# The paper chose its schedule on a 45k/5k train/val split: train dataset val_size=5000 and a
# val dataset dict(type="CIFAR10", split="val", val_size=5000).
data_root = "data/cifar10"
train_pipeline = [
    dict(type="RandomCrop", size=32, padding=4),
    dict(type="RandomHorizontalFlip", prob=0.5),
]
train_dataloader = dict(
    batch_size=128,  # total over all GPUs
    num_workers=4,
    dataset=dict(type="CIFAR10", data_root=data_root, split="train", val_size=0, pipeline=train_pipeline),
    sampler=dict(type="DistributedTrainSampler", shuffle=True),
    collate="cls_collate",
)
val_dataloader = dict(
    batch_size=500,
    num_workers=2,
    dataset=dict(type="CIFAR10", data_root=data_root, split="test", pipeline=[]),
    collate="cls_collate",
)
val_evaluator = dict(type="TopKError", topk=(1, 5))
# per-pixel mean subtraction: the mean 32 x 32 image of the training split, computed by
# tools/train_cls.py and loaded into model.mean
pixel_mean = dict(size=32)
test_mode = None
