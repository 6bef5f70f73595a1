"""Visualisation: detections and ground truth (boxes in a colour per class, labels that stay in
the image, translucent outlined masks, a legend), contact sheets, atomic picture saving."""

from .draw import class_name, draw_detections, draw_masks, select_detections  # noqa: F401
from .layout import auto_font_scale, layout_labels  # noqa: F401
from .palette import class_color, color_palette  # noqa: F401
from .save import is_image_file_path, output_extension, output_paths, save_image  # noqa: F401
from .sheet import contact_sheet  # noqa: F401
