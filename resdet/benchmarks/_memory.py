"""Peak memory of one model's inference or training step, each in a process of its own.

``measure(spec)`` runs ``python -m resdet.benchmarks._memory SPEC_JSON`` and returns what the
child prints: the resident set size after the model is built (``base_mb``) and the peak
resident set size while it runs the workload (``peak_mb``, Linux ``VmHWM`` after resetting
it through ``/proc/self/clear_refs``; elsewhere the process's lifetime peak from
``getrusage``). Weights are random: memory does not depend on their values.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys

import torch

from ..utils.malloc import tune_malloc

# benchmark kind -> (resdet config function, targets function)
KINDS = {
    "det": ("resdet.models.converters.torchvision_det:tv_fpn_model_cfg", "resdet.benchmarks._pair:box_targets"),
    "mask": ("resdet.models.converters.torchvision_mask:tv_mask_model_cfg", "resdet.benchmarks.mask:mask_targets"),
}


def _load(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _build(spec: dict):
    cfg_ref = KINDS[spec["kind"]][0]
    torch.manual_seed(0)
    if spec["impl"] == "torchvision":
        from ._tv import tv_r50_fpn_detector

        return tv_r50_fpn_detector(spec["kind"], num_classes=81, min_size=spec["height"], max_size=spec["width"])
    from ..models.detectors import optimize_for_inference
    from ..registry import MODELS

    model = MODELS.build(_load(cfg_ref)(num_classes=80, min_size=spec["height"], max_size=spec["width"]))
    if spec["mode"] == "infer":
        model = optimize_for_inference(model, inplace=True, compile=bool(spec.get("compile")))
    return model


def _workload(spec: dict, model) -> None:
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, spec["height"], spec["width"]), generator=g, dtype=torch.uint8)
    tv = spec["impl"] == "torchvision"
    if spec["mode"] == "infer":
        model.eval()
        with torch.inference_mode():
            for _ in range(2):
                model([image.float() / 255] if tv else [image])
        return
    images = [image, image.flip(-1)]
    targets = _load(KINDS[spec["kind"]][1])(images, torch.device("cpu"))
    if not tv:
        targets = [dict(t, labels=t["labels"] - 1) for t in targets]
    inputs = [i.float() / 255 for i in images] if tv else images
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
    for _ in range(2):
        losses = model(inputs, [dict(t) for t in targets])
        optimizer.zero_grad(set_to_none=True)
        sum(v for k, v in losses.items() if "loss" in k).backward()
        optimizer.step()


def child(spec: dict) -> dict:
    if "call" in spec:  # another benchmark's fresh-process measurement ("module:function" of the spec)
        return _load(spec["call"])(spec)
    if spec.get("tune_malloc"):  # the parent's malloc setting, so both measure the same thing
        tune_malloc()
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    model = _build(spec)
    base = _status_mb("VmRSS")
    exact = _reset_peak()
    _workload(spec, model)
    peak = _status_mb("VmHWM") if exact else None
    if peak is None:  # ru_maxrss: KiB on Linux, bytes on macOS
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024.0 if sys.platform != "darwin" else 2**20)
    return {"base_mb": base, "peak_mb": peak, "peak_is_workload_only": exact}


def measure(spec: dict) -> dict:
    """Runs ``spec`` (kind, impl, mode, height, width, threads; or ``call``: a
    ``"module:function"`` given the spec) in a fresh interpreter."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", __name__, json.dumps(spec)], capture_output=True, text=True, env=env, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"memory measurement {spec} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
