"""High-level entry points. Each helper module adds its own import line here."""

from .model import fast_path, init_model, optimize_for_inference  # noqa: F401
from .detect import inference_detector  # noqa: F401
from .classify import inference_classifier  # noqa: F401
from .evaluate import evaluate_model  # noqa: F401
from .evaluate_results import evaluate_results_file  # noqa: F401
from .inputs import collect_inputs  # noqa: F401
from .inference_inputs import inference_inputs  # noqa: F401
from .analyze import analyze_results  # noqa: F401
