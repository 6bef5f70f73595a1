"""Run an exported ``.onnx`` file with onnxruntime alone: no config, no resdet model code.

``OnnxModel(path)`` reads the class names and the kind from the file's ``metadata_props``;
``detect(image)`` takes an ``H x W x 3`` uint8 RGB array (as ``imread_rgb`` gives) and returns
numpy ``boxes``, ``scores``, ``labels`` (and ``masks`` as bool) in that image's pixels.
"""

from __future__ import annotations

import json

import numpy as np

from .errors import ExportError


class OnnxModel:
    """An onnxruntime session over an exported resdet file (CPU unless ``providers`` says)."""

    def __init__(self, path: str, providers: list[str] | None = None, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ExportError("onnxruntime is not installed: pip install 'resdet[export]'") from err
        options = ort.SessionOptions()
        options.log_severity_level = 3  # no warnings about constant folding of shape arithmetic
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(
                path, sess_options=options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as err:  # not a file onnxruntime can load
            raise ExportError(f"{path}: onnxruntime cannot load it ({' '.join(str(err).split())[:200]})") from err
        meta = self.session.get_modelmeta().custom_metadata_map
        self.kind = meta.get("kind", "")
        if self.kind not in ("detector", "classifier"):
            raise ExportError(
                f"{path}: not a resdet export (metadata 'kind' is {self.kind!r}); "
                "export it with `resdet export CONFIG CHECKPOINT --format onnx`"
            )
        self.class_names: list[str] = json.loads(meta.get("class_names", "[]"))
        self.metadata = dict(meta)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def detect(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Detections of one ``H x W x 3`` uint8 RGB image, in its pixels."""
        if self.kind != "detector":
            raise ExportError(f"this file is a {self.kind}, not a detector")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ExportError(f"expected an H x W x 3 uint8 RGB image, got shape {image.shape} and dtype {image.dtype}")
        chw = np.ascontiguousarray(image.transpose(2, 0, 1))
        outputs = dict(zip(self.output_names, self.session.run(None, {self.input_name: chw})))
        if "masks" in outputs:
            outputs["masks"] = outputs["masks"].astype(bool)
        return outputs

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Logits ``N x C`` of uint8 ``N x 3 x H x W`` images."""
        if self.kind != "classifier":
            raise ExportError(f"this file is a {self.kind}, not a classifier")
        return self.session.run(None, {self.input_name: np.ascontiguousarray(images, dtype=np.uint8)})[0]
