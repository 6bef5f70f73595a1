"""Dense heads: anchors and the Region Proposal Network."""

from .anchors import AnchorGenerator  # noqa: F401
from .rpn import RPN, box_regression_loss, flatten_level_outputs  # noqa: F401
from .rpn_head import RPNHead  # noqa: F401
from .per_class_rpn import PerClassRPN, PerClassRPNHead  # noqa: F401
