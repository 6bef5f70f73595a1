# Mask R-CNN, ResNet-101 C4 layout (the paper's detector plus a mask branch): RoIAlign 14x14 on
# conv4 -> conv5 (first block stride 2) -> 7x7 per RoI, shared by the box branch (average
# pooled) and the mask branch (deconv 2x2/2 to 14x14, 256 channels -> per-class 14x14 mask
# logits). In training the mask branch reuses the positive RoIs' conv5 output; at inference
# conv5 runs again on the detected boxes. The mask head's in_channels (2048) is derived from
# the box head's published 'res5' output.
_base_ = ["./frcnn_r101_c4.py"]

model = dict(
    type="MaskRCNN",
    mask_thresh=0.5,
    paste_mode="continuous",
    roi_heads=dict(
        type="MaskRoIHeads",
        mask_pooler=None,
        mask_head=dict(type="MaskHead", num_convs=0, conv_dim=256),
    ),
)
