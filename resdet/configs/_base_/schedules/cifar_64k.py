# CIFAR-10 schedule (Sec. 4.2): SGD, batch 128, lr 0.1 divided by 10 at 32k and 48k iterations,
# stop at 64k, weight decay 1e-4, momentum 0.9.
optimizer = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = dict(type="StepLR", milestones=[32000, 48000], gamma=0.1)
train_cfg = dict(
    max_iters=64000,
    val_interval=2000,
    checkpoint_interval=2000,
    keep_last=3,
    log_interval=100,
    amp=None,
    clip_grad=None,
    sync_bn=False,
    seed=0,
    deterministic=False,
)
