"""torchrun on one machine (CPU, gloo): two "nodes" (two torchrun processes meeting at a c10d
rendezvous on 127.0.0.1), and an elastic restart after a worker is killed with SIGKILL.
The program they run is ``torchrun_worker.py`` (a tiny run: 32 samples, 8 iterations, batch 8)."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "torchrun_worker.py")
TIMEOUT_S = 300  # the box is shared: a worker's start (importing torch) can take 20 s


def _read(path) -> str:
    with open(path) as fh:
        return fh.read()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(launch: list[str], port: int, work: str, *worker_args: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *launch,
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        f"resdet-test-{port}",
        "--monitor-interval",
        "0.2",
        WORKER,
        work,
        *worker_args,
    ]
    # each restart attempt gets its own rendezvous store (docs/distributed.md, "Elastic restarts")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        OMP_NUM_THREADS="1",
        TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1",
    )
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _finish(procs: list[subprocess.Popen]) -> list[str]:
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            raise
        assert proc.returncode == 0, out[-3000:]
        outputs.append(out)
    return outputs


def _json(path):
    with open(path) as fh:
        return json.load(fh)


def _records(work):
    with open(os.path.join(work, "metrics.jsonl")) as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """Two torchrun processes, one worker each: ``--nnodes 2 --nproc_per_node 1``."""
    work, port = str(tmp_path_factory.mktemp("two_nodes") / "work"), _free_port()
    _finish([_torchrun(["--nnodes", "2", "--nproc_per_node", "1"], port, work) for _ in range(2)])
    return work


def test_two_nodes_train_and_evaluate_as_one_group(two_nodes):
    out = os.path.join(two_nodes, "out")
    seen = [_json(os.path.join(out, f"seen_rank{r}_restart0.json")) for r in (0, 1)]
    assert [s["world_size"] for s in seen] == [2, 2]
    # 4 samples per rank and iteration, 4 iterations per epoch: each epoch sees every sample once
    for epoch in (0, 1):
        both = [i for s in seen for i in s["seen"][epoch * 16 : (epoch + 1) * 16]]
        assert sorted(both) == list(range(32)), epoch
    assert seen[0]["seen"][:16] != seen[1]["seen"][:16]
    # validation is gathered over the ranks: each reports the whole 16-image set, the same error
    results = [_json(os.path.join(out, f"result_rank{r}.json")) for r in (0, 1)]
    assert [r["count"] for r in results] == [16, 16] and results[0]["top1_err"] == results[1]["top1_err"]
    assert results[0]["iter"] == 8
    weights = [torch.load(os.path.join(out, f"weights_rank{r}.pt"), weights_only=True) for r in (0, 1)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # one writer: every record once; node-local work done once per node
    assert [(r["mode"], r["iter"]) for r in _records(two_nodes)] == [
        ("train", 2),
        ("train", 4),
        ("val", 4),
        ("train", 6),
        ("train", 8),
        ("val", 8),
    ]
    assert _json(os.path.join(two_nodes, "env.json"))["world_size"] == 2
    assert [_read(os.path.join(two_nodes, f"node_{n}.txt")) for n in (0, 1)] == ["0\n", "1\n"]
    log = _read(os.path.join(two_nodes, "train.log"))
    assert log.count("training EngineTinyNet from iter 0 to 8 on cpu x2") == 1
    assert {"final.pth", "best.pth", "iter_6.pth", "last_checkpoint"} <= set(os.listdir(two_nodes))


def test_killed_worker_restarts_the_group_and_ends_with_the_same_weights(two_nodes, tmp_path):
    work, port = str(tmp_path / "work"), _free_port()
    # global rank 1 SIGKILLs itself after iteration 5 (iter_4.pth is the newest checkpoint); its
    # agent restarts the group and the other node's agent follows (without counting a restart:
    # TORCHELASTIC_RESTART_COUNT differs between the nodes, the trainer resumes on both anyway)
    _finish(
        [
            _torchrun(["--nnodes", "2", "--nproc_per_node", "1", "--max-restarts", "1"], port, work, "--kill-at", "5")
            for _ in range(2)
        ]
    )
    out = os.path.join(work, "out")
    seen = {name.split("_")[1]: name for name in os.listdir(out) if name.startswith("seen")}
    assert sorted(seen) == ["rank0", "rank1"] and "restart1" in seen["rank1"] + seen["rank0"]
    assert [_json(os.path.join(out, seen[f"rank{r}"]))["start"] for r in (0, 1)] == [4, 4]
    log = _read(os.path.join(work, "train.log"))
    assert f"elastic restart: resuming from {os.path.join(work, 'iter_4.pth')}" in log
    expected = torch.load(os.path.join(two_nodes, "out", "weights_rank0.pt"), weights_only=True)
    for rank in (0, 1):
        got = torch.load(os.path.join(out, f"weights_rank{rank}.pt"), weights_only=True)
        for key, value in expected.items():
            assert torch.equal(got[key], value), (rank, key)
    assert [(r["mode"], r["iter"]) for r in _records(work)] == [(r["mode"], r["iter"]) for r in _records(two_nodes)]
    assert [r for r in _records(work) if r["mode"] == "val"] == [r for r in _records(two_nodes) if r["mode"] == "val"]
