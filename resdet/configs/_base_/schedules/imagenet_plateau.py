# ImageNet schedule (Sec. 3.4): SGD, batch 256, lr 0.1 divided by 10 when the validation error
# plateaus, up to 60 x 10^4 iterations, weight decay 1e-4, momentum 0.9.
optimizer = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = dict(type="PlateauLR", metric="top1_err", mode="min", patience=3, factor=0.1, min_lr=1e-5)
train_cfg = dict(
    max_iters=600000,
    val_interval=10000,
    checkpoint_interval=10000,
    keep_last=3,
    log_interval=100,
    amp=None,
    clip_grad=None,
    sync_bn=False,
    seed=0,
    deterministic=False,
)
