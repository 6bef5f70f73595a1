"""resdet: ResNet backbones, classification pretraining, Faster R-CNN detection,
instance segmentation and localization in one registry-based toolkit."""

__version__ = "0.1.0"
