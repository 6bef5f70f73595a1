# ImageNet (ILSVRC-2012) classification data, the paper's recipe (Sec. 3.4).
# Layout: data/imagenet/{train,val}/<wnid>/*.JPEG (see datasets/README.md). For the flat ILSVRC
# val folder use: dataset=dict(type="ImageFolder", data_root="data/imagenet/val",
#                              ann_file="data/imagenet/val.txt", classes="data/imagenet/synsets.txt")
data_root = "data/imagenet"
train_pipeline = [
    # scale augmentation: shorter side uniformly in [256, 480]
    dict(type="ResizeShortestEdge", short_edge_length=(256, 480), sample_mode="range", max_size=None),
    dict(type="RandomCrop", size=224),
    dict(type="RandomHorizontalFlip", prob=0.5),
    dict(type="PCALighting", std=0.1),  # AlexNet colour augmentation
]
# single centre crop during training; tools/eval.py --test-mode ten_crop | multi_scale for the paper's tests
val_pipeline = [
    dict(type="ResizeShortestEdge", short_edge_length=256, max_size=None),
    dict(type="CenterCrop", size=224),
]
train_dataloader = dict(
    batch_size=256,  # total over all GPUs
    num_workers=8,
    dataset=dict(type="ImageFolder", data_root=data_root + "/train", pipeline=train_pipeline),
    sampler=dict(type="DistributedTrainSampler", shuffle=True),
    collate="cls_collate",
)
val_dataloader = dict(
    batch_size=256,
    num_workers=8,
    dataset=dict(type="ImageFolder", data_root=data_root + "/val", pipeline=val_pipeline),
    collate="cls_collate",
)
val_evaluator = dict(type="TopKError", topk=(1, 5))
# per-pixel mean subtraction: tools/train_cls.py computes the mean image of the training set
# (shorter side 256, centre 224 crop, stored at 16 x 16 and resized to the input by the model's
# preprocessor) and loads it into model.mean before training
pixel_mean = dict(size=16, resize=256, crop=224, max_images=10000)
# The paper's tests, selected with test_mode (resdet.models.classifiers.apply_test_mode wraps the
# loaded classifier; the evaluation uses test_dataloaders[test_mode] when present):
#   'ten_crop'    - shorter side 256, centre 256 x 256, then the 4 corner + centre 224 crops and mirrors
#   'multi_scale' - the whole image at shorter sides {224, 256, 384, 480, 640}, scores averaged
#                   (fully convolutional; one image per batch since sizes differ)
test_mode = None
test_dataloaders = dict(
    ten_crop=dict(
        batch_size=64,
        num_workers=8,
        collate="cls_collate",
        dataset=dict(
            type="ImageFolder",
            data_root=data_root + "/val",
            pipeline=[
                dict(type="ResizeShortestEdge", short_edge_length=256, max_size=None),
                dict(type="CenterCrop", size=256),
            ],
        ),
    ),
    multi_scale=dict(
        batch_size=1,
        num_workers=8,
        collate="cls_collate",
        dataset=dict(type="ImageFolder", data_root=data_root + "/val", pipeline=[]),
    ),
)
