# The paper's CIFAR schedule (Sec. 4.2) scaled to the CPU proxy: SGD lr 0.1, momentum 0.9,
# weight decay 1e-4, lr / 10 at 50% and 75% of the run (paper: 32k and 48k of 64k iterations),
# batch 64 (datasets/proxy32.py). `resdet reproduce --iterations N` sets max_iters and moves
# the milestones with it; these defaults are its 1000-iteration run.
optimizer = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = dict(type="StepLR", milestones=[500, 750], gamma=0.1)
train_cfg = dict(
    max_iters=1000,
    val_interval=200,
    checkpoint_interval=0,
    keep_last=1,
    log_interval=10,
    amp=None,
    clip_grad=None,
    sync_bn=False,
    seed=0,
    deterministic=False,
    channels_last=True,
)
