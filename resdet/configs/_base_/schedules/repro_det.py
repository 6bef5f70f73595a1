# The detection fine-tuning of `resdet reproduce --only detection`, the same for both
# backbones: SGD lr 0.01, momentum 0.9, weight decay 1e-4, batch 4, linear warm-up over the
# first 50 iterations, lr / 10 at 75% of the run, bf16 autocast where the CPU or GPU computes
# bf16 natively (as the pretraining). The detector configs scale the RPN and the RoI sampling
# to 128-pixel images with at most 8 objects, equally for both, so the two detectors differ
# only in the backbone and its RoI head (as in the paper's Table 7/8).
optimizer = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)
param_scheduler = [
    dict(type="LinearWarmupLR", warmup_iters=50, start_factor=0.01),
    dict(type="StepLR", milestones=[450], gamma=0.1),
]
train_cfg = dict(
    max_iters=600,
    val_interval=600,
    checkpoint_interval=150,
    keep_last=1,
    log_interval=10,
    amp="bf16",
    clip_grad=dict(max_norm=10.0),
    channels_last=True,
    seed=0,
)
