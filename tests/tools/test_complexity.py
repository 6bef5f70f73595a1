"""tools/analysis/complexity.py and resdet.models.utils.complexity against Tables 1 and 6."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from resdet.apis import init_model
from resdet.models.utils.complexity import get_model_complexity

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "analysis", "complexity.py")
TABLE1_MACS = {
    "resnet18": 1.8e9,
    "resnet34": 3.6e9,
    "resnet50": 3.8e9,
    "resnet101": 7.6e9,
    "resnet152": 11.3e9,
    "vgg16": 15.3e9,
    "vgg19": 19.6e9,
}
TABLE6_PARAMS = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6, 1202: 19.4e6}


def load_tool():
    spec = importlib.util.spec_from_file_location("complexity_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(TABLE1_MACS))
def test_table1_multiply_adds_at_224(name):
    result = get_model_complexity(init_model(name, device="meta"), input_shape=(3, 224, 224))
    assert abs(result["flops"] - TABLE1_MACS[name]) / TABLE1_MACS[name] < 0.025, result["flops"]
    assert result["flops_by_op"]["convolution"] + result["flops_by_op"]["addmm"] == result["flops"]


def test_exact_resnet50_counts_and_v15_layout():
    msra = get_model_complexity(init_model("resnet50", device="meta"))
    assert msra["params"] == 25_557_032 and msra["flops"] == 3_857_973_248
    v15 = get_model_complexity(
        init_model("resnet50", device="meta", cfg_options={"model.backbone.stride_in_1x1": False})
    )
    assert v15["params"] == msra["params"]
    assert 4.05e9 < v15["flops"] < 4.15e9  # the paper's remark: about 4.1 x 10^9 in the v1.5 layout


def test_counter_scales_with_input_and_counts_real_ops():
    model = init_model("resnet18", device="meta")
    small = get_model_complexity(model, (3, 224, 224))
    large = get_model_complexity(model, (3, 448, 448))
    fc = 512 * 1000
    assert large["flops"] - fc == 4 * (small["flops"] - fc)
    cpu = init_model("resnet20_cifar")  # a real run on CPU counts the same as the meta run
    assert (
        get_model_complexity(cpu, (3, 32, 32), device="cpu")["flops"]
        == get_model_complexity(cpu, (3, 32, 32))["flops"]
        == 40_551_040
    )
    assert cpu.backbone.conv1.weight.device.type == "cpu"


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])  # 1202: tests/models/test_cifar_resnet.py
def test_table6_params(depth, capsys):
    assert load_tool().main([f"resnet{depth}_cifar", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert abs(result["params"] - TABLE6_PARAMS[depth]) / TABLE6_PARAMS[depth] < 0.03
    assert result["input_shape"] == [3, 32, 32] and isinstance(result["flops"], int)


def test_cli_json_subprocess_and_text_output(capsys):
    out = subprocess.run(
        [sys.executable, TOOL, "vgg16", "--json", "--shape", "224", "224"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    result = json.loads(out.stdout)
    assert result["params"] == 138_357_544 and abs(result["flops"] / 15.3e9 - 1) < 0.025
    assert load_tool().main(["plain34", "--shape", "224", "224"]) == 0
    text = capsys.readouterr().out
    assert "21,623,848" in text and "3.64 x 10^9" in text
    assert load_tool().main(["resnet18", "--part", "backbone", "--json"]) == 0
    backbone = json.loads(capsys.readouterr().out)
    assert backbone["flops"] == 1_814_073_344 - 512 * 1000 and backbone["params"] == 11_689_512 - 513_000
    with pytest.raises(SystemExit):
        load_tool().main(["resnet42"])
    assert "allowed short names: resnet18" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        load_tool().main(["resnet18", "--part", "neck"])
    assert "top-level parts: preprocessor, backbone, head" in capsys.readouterr().err


def test_meta_counting_leaves_a_real_model_untouched():
    model = init_model("resnet20_cifar")
    before = model.backbone.conv1.weight.clone()
    get_model_complexity(model, (3, 32, 32))
    assert model.backbone.conv1.weight.device.type == "cpu"
    assert torch.equal(model.backbone.conv1.weight, before)
