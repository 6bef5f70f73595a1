# CIFAR-10 ResNet (Sec. 4.2, Table 6): 6n+2 layers, option A shortcuts; set model.backbone.depth
# (20/32/44/56/110/1202) and model.backbone.plain=True for the plain counterparts of Fig. 6.
model = dict(
    type="ImageClassifier",
    num_classes=10,
    mean=(125.307, 122.950, 113.865),  # CIFAR-10 training-set RGB mean, 0..255 units
    std=(62.993, 62.089, 66.705),
    backbone=dict(type="CifarResNet", depth=20, shortcut="A", plain=False, norm="BN"),
    head=dict(type="LinearClsHead"),
)
