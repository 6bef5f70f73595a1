"""Visualisation: detections (boxes, class names, scores, translucent masks) drawn on images."""
from .draw import color_palette, draw_detections, save_image, select_detections  # noqa: F401
