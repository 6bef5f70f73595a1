# ImageNet ResNet classifier (Table 1). Pick the net with model.backbone.depth (18/34/50/101/152),
# model.backbone.shortcut ('A' | 'B' | 'C') and model.backbone.plain (plain-18/34).
# stride_in_1x1=True is the paper's (MSRA) bottleneck; False is torchvision's v1.5 layout.
model = dict(
    type="ImageClassifier",
    num_classes=1000,
    mean=(123.675, 116.28, 103.53),  # RGB, 0..255 units
    std=(58.395, 57.12, 57.375),
    backbone=dict(
        type="ResNet",
        depth=50,
        out_indices=(3,),
        shortcut="B",
        plain=False,
        stride_in_1x1=True,
        norm="BN",
        zero_init_residual=False,
    ),
    head=dict(type="LinearClsHead"),
)
