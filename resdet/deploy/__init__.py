"""Export of resdet models: one ONNX file (or ``torch.export`` program) holding the whole test
path, and an onnxruntime runner that needs nothing but the file. See docs/export.md.

Sits below ``apis`` / ``benchmarks`` / ``cli``: its functions take a built model and its config.
"""

from .errors import ExportError
from .onnx_export import OPSET, export_onnx, export_torch, metadata, temporary_onnx
from .program import export_program, save_program
from .runtime import OnnxModel
from .wrappers import ClassifierGraph, DetectorGraph, check_exportable

__all__ = [
    "ExportError",
    "OPSET",
    "export_onnx",
    "export_torch",
    "metadata",
    "temporary_onnx",
    "export_program",
    "save_program",
    "OnnxModel",
    "ClassifierGraph",
    "DetectorGraph",
    "check_exportable",
]
