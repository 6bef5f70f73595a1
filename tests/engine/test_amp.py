"""amp='bf16' on a CPU runs bf16 autocast only where the CPU has native bf16; elsewhere (oneDNN
emulates it, many times slower than fp32) the run falls back to fp32 with a warning."""

import warnings

import pytest
import torch

from resdet.engine import amp


def test_bf16_on_a_cpu_without_native_bf16_runs_in_fp32_with_a_warning(monkeypatch):
    monkeypatch.delenv("RESDET_CPU_BF16", raising=False)
    monkeypatch.setattr(amp, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(UserWarning, match=r"amp='bf16' ignored: this CPU has no native bf16 .*RESDET_CPU_BF16=1"):
        assert amp.effective_amp("bf16", torch.device("cpu")) is None
    monkeypatch.setenv("RESDET_CPU_BF16", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert amp.effective_amp("bf16", torch.device("cpu")) == "bf16"


def test_bf16_on_a_cpu_with_native_bf16_and_on_cuda_is_kept(monkeypatch):
    monkeypatch.delenv("RESDET_CPU_BF16", raising=False)
    monkeypatch.setattr(amp, "cpu_has_native_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert amp.effective_amp("bf16", torch.device("cpu")) == "bf16"
        monkeypatch.setattr(amp, "cpu_has_native_bf16", lambda: False)
        assert amp.effective_amp("bf16", torch.device("cuda")) == "bf16"  # the CPU's bf16 says nothing of a GPU
        assert amp.effective_amp(None, torch.device("cpu")) is None


def test_native_bf16_probe_matches_torchs_cpu_flags():
    expected = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert amp.cpu_has_native_bf16() is bool(expected)
