"""Model utilities: weight initialisation, complexity counting, published shapes."""

from .complexity import count_params, format_complexity, get_model_complexity  # noqa: F401
from .init import init_conv_and_norm, kaiming_init, normal_init  # noqa: F401
from .box_coder import BoxCoder  # noqa: F401
from .matcher import Matcher  # noqa: F401
from .sampler import BalancedSampler  # noqa: F401
from .shape_spec import ShapeSpec  # noqa: F401
