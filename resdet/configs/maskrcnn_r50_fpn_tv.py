# Mask R-CNN ResNet-50-FPN, torchvision-compatible: the same preprocessing as torchvision's
# maskrcnn_resnet50_fpn (RGB in [0, 1], ImageNet mean/std, resize inside the model to shorter
# side 800 / longer side <= 1333, padding to 32), the same RPN / RoI settings and torchvision's
# mask pasting (paste_mode='torchvision'), so its weights converted with
#   python tools/convert_weights.py --src torchvision <maskrcnn_resnet50_fpn.pth> <out.pth>
# give the same detections and masks here (resdet label = torchvision label - 1).
_base_ = ["./maskrcnn_r50_fpn_coco.py"]

model = dict(
    paste_mode="torchvision",
    preprocessor=dict(type="DetPreprocessor", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                      value_scale=255.0, size_divisor=32, min_size=800, max_size=1333),
    backbone=dict(stride_in_1x1=False),  # torchvision's v1.5 bottlenecks (stride on the 3x3)
)
# the model resizes: the data pipeline only flips (training) or leaves the images as they are
train_dataloader = dict(dataset=dict(pipeline=[dict(type="DetRandomFlip", prob=0.5)]))
val_dataloader = dict(dataset=dict(pipeline=[]))
work_dir = "work_dirs/maskrcnn_r50_fpn_tv"
