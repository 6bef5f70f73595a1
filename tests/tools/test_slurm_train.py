"""tools/slurm_train.sh parses, and its torchrun and resdet lines name options that exist."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from resdet.cli import train_cls, train_det


def _script(repo_root):
    return os.path.join(repo_root, "tools", "slurm_train.sh")


def _command_lines(text: str, start: str) -> str:
    """The shell command starting with ``start`` (its continuation lines joined)."""
    lines, out, inside = text.splitlines(), [], False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(start) or inside:
            out.append(stripped.rstrip("\\"))
            inside = stripped.endswith("\\")
            if not inside:
                break
    return " ".join(out)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_script_parses(repo_root):
    result = subprocess.run(["bash", "-n", _script(repo_root)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(_script(repo_root), os.X_OK)


def test_torchrun_and_resdet_options_exist(repo_root):
    text = open(_script(repo_root)).read()
    assert "#SBATCH --signal=USR1@120" in text and "#SBATCH --requeue" in text
    srun = _command_lines(text, "srun ")
    torchrun_part, resdet_part = srun.split(" -m resdet ")
    torchrun_options = set(re.findall(r"(?<!\S)(--[a-z][a-z0-9_-]*)", torchrun_part.split("torchrun", 1)[1]))
    assert {
        "--nnodes",
        "--nproc-per-node",
        "--rdzv-backend",
        "--rdzv-endpoint",
        "--max-restarts",
        "--signals-to-handle",
        "--shutdown-timeout",
    } <= torchrun_options
    help_text = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--help"], capture_output=True, text=True
    ).stdout
    known = set(re.findall(r"--[a-z][a-z0-9_-]*", help_text))
    assert torchrun_options <= known, torchrun_options - known
    # SIGUSR1 (the --signal above) is among the signals the agents forward, and they wait
    # less than its 120 s lead for the workers' checkpoint
    assert "SIGUSR1" in re.search(r"--signals-to-handle (\S+)", torchrun_part).group(1).split(",")
    assert int(re.search(r"--shutdown-timeout (\d+)", torchrun_part).group(1)) < 120
    assert "RESUME=(--resume)" in text  # a requeued job continues
    resdet_options = set(re.findall(r"(?<!\S)(--[a-z][a-z0-9_-]*)", resdet_part)) | {"--resume"}
    assert "--work-dir" in resdet_options
    for parser in (train_cls.build_parser(), train_det.build_parser()):
        assert resdet_options <= set(parser._option_string_actions), resdet_options
    # the exit code the script looks for is the one the trainer uses
    from resdet.engine.signals import EXIT_PREEMPTED

    assert f"(exit code {EXIT_PREEMPTED})" in text
