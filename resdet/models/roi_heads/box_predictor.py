"""Fast R-CNN's last layers: class scores and per-class box deltas."""

from __future__ import annotations

from torch import Tensor, nn

from ...registry import MODELS
from ..utils.shape_spec import ShapeSpec, derive_channels


@MODELS.register_module()
class BoxPredictor(nn.Module):
    """``cls_score``: ``C + 1`` logits (background is the last, index ``C``); ``bbox_pred``:
    ``4C`` class-specific deltas (or 4 with ``class_agnostic``).

    ``in_channels`` is derived from ``input_shape``, the box head's ``'box_features'`` (handed
    down by the RoI heads; default without it: 1024).

    ``forward(x: R x in_channels) -> (R x (C + 1), R x 4C)``.
    """

    def __init__(
        self,
        in_channels: int | None = None,
        num_classes: int = 80,
        class_agnostic: bool = False,
        input_shape: ShapeSpec | None = None,
    ) -> None:
        super().__init__()
        in_channels = derive_channels(in_channels, input_shape, default=1024)
        if num_classes < 1:
            raise ValueError(f"BoxPredictor num_classes must be >= 1, got {num_classes}")
        self.num_classes, self.class_agnostic = num_classes, class_agnostic
        self.cls_score = nn.Linear(in_channels, num_classes + 1)
        self.bbox_pred = nn.Linear(in_channels, 4 if class_agnostic else 4 * num_classes)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        deltas = self.bbox_pred(x)
        if self.class_agnostic:
            deltas = deltas.repeat(1, self.num_classes)
        return self.cls_score(x), deltas
