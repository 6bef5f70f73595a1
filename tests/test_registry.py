import os

import pytest
import torch

from resdet.registry import MODELS, build_from_cfg
from resdet.utils.config import load_config
from resdet.utils.io import CheckpointError, atomic_save, safe_load


@MODELS.register_module()
class _RegistryProbe(torch.nn.Module):
    def __init__(self, width: int = 2):
        super().__init__()
        self.width = width


def test_build_passes_kwargs():
    probe = MODELS.build(dict(type="_RegistryProbe", width=5))
    assert probe.width == 5


def test_unknown_type_names_registry_and_closest():
    with pytest.raises(KeyError) as info:
        MODELS.build(dict(type="_RegistryProbes"))
    msg = str(info.value)
    assert "'model' registry" in msg and "_RegistryProbe" in msg


def test_bad_kwarg_names_component():
    with pytest.raises(TypeError, match="_RegistryProbe"):
        build_from_cfg(dict(type="_RegistryProbe", depth=3), MODELS)


def test_config_base_inheritance_and_cfg_options(tmp_path):
    (tmp_path / "base.py").write_text("model = dict(type='X', depth=50, out=[1, 2])\nlr = 0.1\n")
    (tmp_path / "child.py").write_text("_base_ = ['./base.py']\nmodel = dict(depth=101)\n")
    cfg = load_config(str(tmp_path / "child.py"), {"lr": 0.01, "model.out": [3]})
    assert cfg.model.depth == 101 and cfg.model.type == "X"
    assert cfg.lr == 0.01 and list(cfg.model.out) == [3]


def test_atomic_save_and_safe_load(tmp_path):
    path = str(tmp_path / "ck.pth")
    atomic_save({"w": torch.arange(3), "iter": 7}, path)
    assert safe_load(path)["iter"] == 7
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")] == []


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_safe_load_refuses_bad_files(tmp_path, content):
    path = tmp_path / "bad.pth"
    if content is None:
        torch.save({"evil": _Evil()}, str(path))
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pth"):
        safe_load(str(path))
