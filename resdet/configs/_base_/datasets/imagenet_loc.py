# ILSVRC CLS-LOC localization data (Appendix C of the paper), read by ImageNetLocDataset:
#   data/imagenet/Data/CLS-LOC/{train/<wnid>/*.JPEG, val/*.JPEG}
#   data/imagenet/Annotations/CLS-LOC/{train/<wnid>/*.xml, val/*.xml}
# (the unpacked "train/ + bbox/train/" form: img_prefix='', ann_prefix='bbox').
# Training: shorter side random in [256, 480], random 224 x 224 crops (boxes clipped; a box
# keeping < 30% of its area is ignored) and flips; images without boxes train only the
# classifier part. Testing: the whole image, shorter side 256, fully convolutional.
data_root = "data/imagenet"
class_file = None  # e.g. "data/imagenet/LOC_synset_mapping.txt"; None: sorted train folders
train_pipeline = [
    dict(type="ResizeShortestEdge", short_edge_length=(256, 480), max_size=None, sample_mode="range"),
    dict(type="BoxRandomCrop", size=224, min_visible=0.3),
    dict(type="DetRandomFlip", prob=0.5),
]
test_pipeline = [dict(type="ResizeShortestEdge", short_edge_length=256, max_size=1000)]
train_dataloader = dict(
    batch_size=256,
    num_workers=8,
    dataset=dict(
        type="ImageNetLocDataset",
        root=data_root,
        split="train",
        classes=class_file,
        with_unannotated=True,
        strict=False,
        pipeline=train_pipeline,
    ),
    sampler=dict(type="DistributedTrainSampler", shuffle=True),
    collate="loc_collate",
)
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    dataset=dict(
        type="ImageNetLocDataset", root=data_root, split="val", classes=class_file, strict=False, pipeline=test_pipeline
    ),
    collate="loc_collate",
)
test_dataloader = val_dataloader
val_evaluator = dict(type="LocalizationError", iou_thr=0.5, topk=5)
test_evaluator = val_evaluator
