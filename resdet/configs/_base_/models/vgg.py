# VGG-16/19 classifier (the paper's baseline): conv trunk + pool5 + fc6/fc7/fc8 with dropout.
model = dict(
    type="ImageClassifier",
    num_classes=1000,
    mean=(123.675, 116.28, 103.53),
    std=(58.395, 57.12, 57.375),
    backbone=dict(type="VGG", depth=16, batch_norm=False),
    head=dict(type="VGGClsHead", dropout=0.5),
)
