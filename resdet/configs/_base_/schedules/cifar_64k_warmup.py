# ResNet-110 / -1202 on CIFAR-10 (Sec. 4.2): lr 0.01 until the training error is below 80%
# (about 400 iterations), then back to 0.1 and the 32k/48k/64k schedule.
_base_ = ["./cifar_64k.py"]
param_scheduler = [
    dict(type="StepLR", milestones=[32000, 48000], gamma=0.1),
    dict(type="WarmupUntilLR", warmup_lr=0.01, threshold=0.8, metric="train_err", window=20),
]
