# The embedded default's short schedule: a few minutes on 2 CPU cores (bf16 autocast uses AMX /
# AVX-512-BF16 where the CPU has it; channels-last convolutions). AdamW rather than the paper's
# SGD: from scratch at batch 32 it gets the synthetic set right in a few hundred iterations.
optimizer = dict(type="AdamW", lr=1e-3, weight_decay=1e-4)
param_scheduler = [
    dict(type="LinearWarmupLR", warmup_iters=50, start_factor=0.1),
    dict(type="CosineLR", min_lr=0.0),
]
train_cfg = dict(
    max_iters=500,
    val_interval=250,
    checkpoint_interval=250,
    keep_last=1,
    log_interval=20,
    amp="bf16",
    channels_last=True,
    seed=0,
)
