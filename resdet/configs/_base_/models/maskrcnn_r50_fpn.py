# Mask R-CNN with ResNet-50-FPN: the Faster R-CNN FPN detector plus a mask branch on the
# positive RoIs: RoIAlign 14x14 (level-assigned on P2-P5) -> 4 x conv3x3-256 -> deconv 2x
# -> per-class 28x28 mask logits; per-pixel BCE on the ground-truth class; masks pasted at
# the boxes (bilinear, threshold 0.5). The mask head's in_channels (256) is derived from the
# mask pooler's features (the FPN levels).
_base_ = ["./frcnn_r50_fpn.py"]

model = dict(
    type="MaskRCNN",
    mask_thresh=0.5,
    paste_mode="continuous",
    roi_heads=dict(
        type="MaskRoIHeads",
        mask_pooler=dict(
            type="RoIPooler", featmap_names=("p2", "p3", "p4", "p5"), output_size=14, sampling_ratio=2, aligned=False
        ),
        mask_head=dict(type="MaskHead", num_convs=4, conv_dim=256),
    ),
)
