"""The one weight loader every entry point uses (``init_model``, the trainer's ``load_from``,
``init_cfg`` pretraining, the test-time / ensemble wrappers and the tools), and the registry
of foreign checkpoint converters.

A converter turns a foreign state_dict (torchvision, ...) into resdet parameter names.
Converters are registered per source and architecture::

    CONVERTERS['torchvision']['resnet50'] -> Converter(convert, model_cfg, ...)

and each source may register an *identifier* that recognises its checkpoints from their
keys (so ``init_model(..., checkpoint=...)`` and ``load_weights`` need no flags). To add a
source or architectures (e.g. torchvision detectors), write a module here that calls
``register_converter`` / ``register_identifier`` and import it in this package's ``__init__``.

``load_weights`` accepts a bare state_dict, ``{'model': sd}``, ``{'state_dict': sd}`` or a
resdet checkpoint, or a name ``torchvision://NAME`` (``hub.py``: downloaded, verified and
converted once into torch's hub cache); it always reads files with ``safe_load`` (``weights_only=True``), so a
file holding pickled code is refused, never run, and a resdet checkpoint whose content no
longer matches its recorded checksum (``meta['checksum']``) is refused as damaged. Missing,
unexpected and shape-mismatched keys are reported by name; ``strict=True`` (default) makes
any of them an error.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import torch
from mmengine.config import Config
from torch import nn

from ... import __version__
from ...registry import MODELS
from ...utils.io import CheckpointError, atomic_save, safe_load
from ..backbones.resnet import warn_layout_switch
from .hub import resolve_checkpoint

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Converter:
    """How to turn one foreign architecture's weights into a resdet model's.

    convert: foreign state_dict -> resdet state_dict (renamed keys, same tensors).
    model_cfg: foreign state_dict -> the resdet ``model`` config dict the result loads into.
    keep_from_model: resdet key prefixes the foreign checkpoint has no counterpart for (e.g.
        the preprocessor's mean/std buffers); they keep the model's own values.
    stride_on_3x3: the weights were trained with the torchvision v1.5 bottleneck layout.
    """

    convert: Callable[[StateDict], StateDict]
    model_cfg: Callable[[StateDict], dict]
    keep_from_model: tuple[str, ...] = ()
    stride_on_3x3: bool = False


CONVERTERS: dict[str, dict[str, Converter]] = {}
# (src, identify) pairs; tried newest first, so a format registered later (a detector built on
# a backbone format) is recognised before the more general one it extends.
IDENTIFIERS: list[tuple[str, Callable[[StateDict], str | None]]] = []


def register_converter(src: str, arch: str, converter: Converter) -> None:
    CONVERTERS.setdefault(src, {})[arch] = converter


def register_identifier(src: str, identify: Callable[[StateDict], str | None]) -> None:
    """``identify(state_dict)`` returns the architecture name, or ``None`` if not its format.
    Several identifiers may serve one source."""
    IDENTIFIERS.append((src, identify))


def get_converter(src: str, arch: str) -> Converter:
    if src not in CONVERTERS:
        raise ValueError(f"unknown checkpoint source {src!r}; allowed values: {', '.join(sorted(CONVERTERS))}")
    if arch not in CONVERTERS[src]:
        raise ValueError(
            f"no {src} converter for architecture {arch!r}; allowed values: {', '.join(sorted(CONVERTERS[src]))}"
        )
    return CONVERTERS[src][arch]


def identify_checkpoint(state_dict: StateDict) -> tuple[str, str] | None:
    """``(src, arch)`` of a foreign state_dict, or ``None`` for resdet (or unknown) names."""
    for src, identify in reversed(IDENTIFIERS):
        arch = identify(state_dict)
        if arch is not None:
            return src, arch
    return None


def extract_state_dict(obj: Any, name: str = "checkpoint") -> StateDict:
    """The state_dict inside a bare state_dict, ``{'model': sd}``, ``{'state_dict': sd}`` or a
    resdet checkpoint; a DistributedDataParallel ``module.`` prefix is removed."""
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if (
        not isinstance(obj, Mapping)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        found = sorted(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"{name} holds no state_dict (expected a mapping of parameter names "
            f"to tensors, or one under 'model' / 'state_dict'; found {found})"
        )
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)


def checkpoint_layout(obj: Any) -> bool | None:
    """The ``stride_in_1x1`` a resdet checkpoint's bottlenecks were trained with, from
    ``meta['stride_in_1x1']`` or, failing that, from the ``stride_in_1x1=`` settings in
    ``meta['config']`` (read as text, never executed) when they all agree; else ``None``."""
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    if not isinstance(meta, Mapping):
        return None
    if isinstance(meta.get("stride_in_1x1"), bool):
        return meta["stride_in_1x1"]
    config = meta.get("config")
    if isinstance(config, str):
        values = set(re.findall(r"stride_in_1x1[\"']?\s*[=:]\s*(True|False)", config))
        if len(values) == 1:
            return values.pop() == "True"
    return None


def _list(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def state_dict_mismatch(
    model_state: Mapping[str, torch.Tensor],
    state_dict: Mapping[str, torch.Tensor],
    ignore_suffixes: tuple[str, ...] = (),
) -> tuple[list[str], list[str], list[str]]:
    """``(missing, unexpected, mismatched)`` of ``state_dict`` against a model's state:
    keys the model has and the checkpoint lacks, the reverse, and ``'key: checkpoint (shape)
    vs model (shape)'`` for keys in both with other shapes. Keys ending in ``ignore_suffixes``
    are left out of the first two."""

    def kept(key: str) -> bool:
        return not (ignore_suffixes and key.endswith(ignore_suffixes))

    missing = [k for k in model_state if k not in state_dict and kept(k)]
    unexpected = [k for k in state_dict if k not in model_state and kept(k)]
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(model_state[k].shape)}"
        for k, v in state_dict.items()
        if k in model_state and v.shape != model_state[k].shape
    ]
    return missing, unexpected, mismatched


def describe_mismatch(missing: list[str], unexpected: list[str], mismatched: list[str], limit: int = 3) -> str:
    """One short clause per kind: ``'2 missing keys (a, b); 1 shape mismatch (c: ...)'``."""
    parts = []
    for items, what in ((mismatched, "shape mismatch"), (missing, "missing key"), (unexpected, "unexpected key")):
        if items:
            plural = "es" if what.endswith("h") else "s"
            parts.append(f"{len(items)} {what}{plural if len(items) > 1 else ''} ({_list(items, limit)})")
    return "; ".join(parts)


def _modules(keys) -> list[str]:
    return sorted({k.split(".", 1)[0] for k in keys})


def load_weights(
    model: nn.Module,
    checkpoint: str | Mapping,
    strict: bool = True,
    src: str | None = None,
    arch: str | None = None,
    map_location: str | torch.device = "cpu",
) -> dict:
    """Load a checkpoint file (or an in-memory object) into ``model``.

    Foreign formats are recognised by their keys (or forced with ``src``/``arch``) and
    converted. A torchvision v1.5 bottleneck checkpoint switches the model's bottlenecks to
    ``stride_in_1x1=False`` with a ``UserWarning`` (same parameters, so the outputs are the
    ones the weights were trained for) rather than loading silently into the wrong layout;
    resdet checkpoints whose ``meta`` records a layout (see ``checkpoint_layout``) do the same.

    Returns ``{'source', 'arch', 'missing', 'unexpected', 'mismatched'}``.
    Raises ``CheckpointError`` naming the offending keys when ``strict`` and anything does
    not match; with ``strict=False`` those keys are skipped with a warning.
    """
    name = checkpoint if isinstance(checkpoint, str) else "checkpoint"
    checkpoint = resolve_checkpoint(checkpoint) if isinstance(checkpoint, str) else checkpoint
    obj = safe_load(checkpoint, map_location=map_location) if isinstance(checkpoint, str) else checkpoint
    state_dict = extract_state_dict(obj, name)
    if src is not None and arch is not None:
        found = (src, arch)
    else:
        found = identify_checkpoint(state_dict)
        if src is not None and (found is None or found[0] != src):
            raise CheckpointError(f"{name} is not a recognised {src} checkpoint; pass arch explicitly")
    layout = checkpoint_layout(obj) if found is None else None  # stride_in_1x1 of the weights
    model_state = model.state_dict()
    if found is not None:
        converter = get_converter(*found)
        state_dict = converter.convert(state_dict)
        if converter.stride_on_3x3:
            layout = False
        for key, value in model_state.items():
            if key.startswith(converter.keep_from_model) and key not in state_dict:
                state_dict[key] = value
    # BN's step counter is absent from FrozenBatchNorm2d and irrelevant to the outputs
    missing, unexpected, mismatched = state_dict_mismatch(
        model_state, state_dict, ignore_suffixes=("num_batches_tracked",)
    )
    problems = []
    model_name = type(model).__name__
    limit = 5
    if missing and len(unexpected) == len(state_dict):
        problems.append(
            f"no checkpoint key matches the model (checkpoint keys look like "
            f"{_list(sorted(state_dict), 3)}; the model's like {_list(list(model_state), 3)}); "
            f"known foreign formats: {', '.join(f'{s}: {sorted(a)}' for s, a in CONVERTERS.items())}"
        )
    elif (missing or unexpected) and _modules(state_dict) != _modules(model_state):
        problems.append(
            f"a checkpoint of another architecture? (its modules: {', '.join(_modules(state_dict))}; "
            f"{model_name}'s: {', '.join(_modules(model_state))})"
        )
        limit = 3
    if missing:
        problems.append(f"missing keys: {_list(missing, limit)}")
    if unexpected:
        problems.append(f"unexpected keys: {_list(unexpected, limit)}")
    if mismatched:
        problems.append(f"shape mismatches: {_list(mismatched, limit)}")
    source = f"{found[0]} {found[1]} " if found else ""
    if problems:
        message = f"loading {source}weights from {name} into {model_name}: " + "; ".join(problems)
        if strict:
            raise CheckpointError(
                message + "; use the config the checkpoint was trained with (a resdet "
                "checkpoint keeps it in meta['config']), or load with strict=False "
                "(load_strict=False for load_from) to take only the weights that fit"
            )
        warnings.warn(message + " (strict=False: these keys were skipped)", UserWarning, stacklevel=2)
    if layout is not None:  # only once the weights are known to fit
        warn_layout_switch(model, f"{name} ({found[0]} {found[1]})" if found else name, stride_in_1x1=layout)
    bad = {m.split(":")[0] for m in mismatched}
    model.load_state_dict({k: v for k, v in state_dict.items() if k not in bad and k in model_state}, strict=False)
    return {
        "source": found[0] if found else "resdet",
        "arch": found[1] if found else None,
        "missing": missing,
        "unexpected": unexpected,
        "mismatched": mismatched,
    }


def convert_checkpoint(src: str, arch: str | None, in_path: str, out_path: str, extra_meta: dict | None = None) -> dict:
    """Convert a foreign checkpoint file into a resdet checkpoint ``{'model', 'meta'}``.

    The target model is built from the converter's config and loaded strictly, so the
    output is complete (preprocessor buffers included) and known to load. ``extra_meta`` is
    added to its ``meta`` (e.g. ``classes``). Returns a summary.
    """
    state_dict = extract_state_dict(safe_load(in_path), in_path)
    if arch is None:
        found = identify_checkpoint(state_dict)
        if found is None or found[0] != src:
            raise CheckpointError(
                f"{in_path} is not a recognised {src} checkpoint; pass --arch "
                f"(one of {', '.join(sorted(CONVERTERS.get(src, {})))})"
            )
        arch = found[1]
    converter = get_converter(src, arch)
    model_cfg = converter.model_cfg(state_dict)
    model = MODELS.build(model_cfg)
    report = load_weights(model, state_dict, strict=True, src=src, arch=arch)
    config_text = Config(dict(model=model_cfg)).pretty_text
    meta = {
        "config": config_text,
        "resdet_version": __version__,
        "source": src,
        "arch": arch,
        "converted_from": in_path,
        **(extra_meta or {}),
    }
    if converter.stride_on_3x3:
        meta["stride_in_1x1"] = False
    atomic_save({"model": model.state_dict(), "meta": meta}, out_path)
    return {"arch": arch, "src": src, "num_tensors": len(model.state_dict()), "model": model_cfg, "report": report}
