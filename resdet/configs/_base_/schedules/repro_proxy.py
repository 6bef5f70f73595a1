# The paper's CIFAR schedule (Sec. 4.2) scaled to the CPU proxy: SGD lr 0.1, momentum 0.9,
# weight decay 1e-4, batch 128 (datasets/proxy32.py), lr / 10 at 50% and 75% of the run (paper:
# 32k and 48k of 64k iterations), and the paper's warm-up rule for its deepest CIFAR net
# (ResNet-110) applied to every net: lr 0.01 until the training error of the last 20
# iterations is below 80%, then 0.1 -- reached over 200 iterations (ramp_iters) rather than at
# once: the jump threw ResNet-56 back to chance for 170-500 of its iterations (measured in
# docs/reproduction.md). 2400 iterations: on the twenty-class proxy ResNet-56 spends ~570
# iterations at lr 0.01 before the rule fires, which left a 1600-iteration run ~30 at lr 0.1.
# `resdet reproduce --iterations N` sets max_iters and moves the milestones with it; these
# defaults are its 2400-iteration run.
optimizer = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = [
    dict(type="WarmupUntilLR", warmup_lr=0.01, threshold=0.8, metric="train_err", window=20, ramp_iters=200),
    dict(type="StepLR", milestones=[1200, 1800], gamma=0.1),
]
train_cfg = dict(
    max_iters=2400,
    val_interval=480,
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
