# The 1x COCO schedule: 90k iterations of 16 images, lr 0.02 with 1000 warm-up iterations,
# divided by 10 at 60k and 80k (the 16-image batch is set by the experiment config).
optimizer = dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = [
    dict(type="LinearWarmupLR", warmup_iters=1000, start_factor=0.001),
    dict(type="StepLR", milestones=[60000, 80000], gamma=0.1),
]
train_cfg = dict(
    max_iters=90000, val_interval=10000, checkpoint_interval=10000, keep_last=3, log_interval=50, amp=None, seed=0
)
