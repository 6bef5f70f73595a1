"""Faster R-CNN R50-FPN: resdet against torchvision's ``FasterRCNN`` R50-FPN (as
``fasterrcnn_resnet50_fpn`` builds it for fine-tuning: frozen BN, stem and first stage frozen)
with the same weights and inputs, in one run.

    python tools/benchmark.py det [--device cpu|cuda|all] [--iters 3] [--train-iters 2]
                                  [--height 800 --width 1333] [--bf16] [--threads N] [--json OUT]

Reports inference latency per image (batch 1) and the training step time at batch 2
(forward, backward, SGD step), with the ratio resdet / torchvision (<= 1.0: resdet is not
slower). resdet's inference uses its fast path (frozen BN folded into the convolutions,
channels_last, ``torch.inference_mode``); ``--bf16`` adds a bf16-autocast resdet row. Weights
are random (torchvision ``weights=None`` under a fixed seed; no downloads), so both models
see the same number of proposals; the detection counts are reported before timing.
"""

from __future__ import annotations

from ..models.converters.torchvision_det import tv_fpn_model_cfg
from ._pair import pair_main


def main(argv=None) -> int:
    return pair_main(
        argv, "tools/benchmark.py det", __doc__, "Faster R-CNN R50-FPN", "det", tv_fpn_model_cfg, bf16=True
    )
