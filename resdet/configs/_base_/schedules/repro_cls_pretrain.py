# The classification stage of `resdet reproduce --only detection`: both backbones (VGG-16 and
# ResNet-50) pretrained on the shapes classification set (64 x 64, 5 classes) with this one
# recipe and budget, like the paper's ImageNet stage before Faster R-CNN fine-tuning: SGD,
# momentum 0.9, weight decay 1e-4, batch 32, linear warm-up then cosine decay, fp32.
optimizer = dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = [
    dict(type="LinearWarmupLR", warmup_iters=30, start_factor=0.1),
    dict(type="CosineLR", min_lr=0.0),
]
train_cfg = dict(
    max_iters=300,
    val_interval=300,
    checkpoint_interval=150,
    keep_last=1,
    log_interval=10,
    amp=None,
    channels_last=True,
    seed=0,
)
