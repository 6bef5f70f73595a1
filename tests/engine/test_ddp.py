"""2-process CPU DDP (gloo) matches 1 process with the same global batch; only rank 0 writes."""

import json
import os
import socket

import torch
import torch.multiprocessing as mp
from engine_tiny import single_thread, tiny_config, weights  # noqa: F401 (autouse fixture)

from resdet.engine import Trainer

# no BN in the tiny model: BN statistics are per rank (unless SyncBN), so a BN net would
# legitimately differ between 1 and 2 processes. Dropout is off for the same reason (its
# masks come from each rank's own RNG stream). Random flips stay on: their per-sample seeds
# depend on the sample's global position, not on the rank.
KWARGS = dict(max_iters=6, batch_size=8, dropout=0.0, val=True, log_interval=3, checkpoint_interval=3)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, base: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world_size), RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    import torch.distributed as dist

    try:
        # each rank gets its own work dir here, so we can see which rank wrote files
        trainer = Trainer(**tiny_config(os.path.join(base, f"rank{rank}"), **KWARGS))
        result = trainer.train()
        torch.save(
            {"weights": weights(trainer), "result": {k: v for k, v in result.items() if isinstance(v, (int, float))}},
            os.path.join(base, f"out{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


def test_two_process_ddp_matches_single_process(tmp_path):
    base = str(tmp_path)
    # fork: the children reuse the imported modules (spawn would re-import torch: ~10 s)
    mp.start_processes(_worker, args=(2, _free_port(), base), nprocs=2, join=True, start_method="fork")
    single = Trainer(**tiny_config(os.path.join(base, "single"), **KWARGS))
    single_result = single.train()
    expected = weights(single)
    for rank in (0, 1):
        out = torch.load(os.path.join(base, f"out{rank}.pt"), weights_only=True)
        for key, value in expected.items():
            assert torch.allclose(out["weights"][key], value, atol=1e-5, rtol=0), (rank, key)
        # validation is gathered over ranks: both report the full 16-image val set
        assert out["result"]["count"] == 16
        assert abs(out["result"]["top1_err"] - single_result["top1_err"]) < 1e-6
    # the weights changed during training (the comparison is not vacuous)
    initial = Trainer(**tiny_config(os.path.join(base, "init"), **KWARGS))
    assert not torch.allclose(weights(initial)["fc1.weight"], expected["fc1.weight"], atol=1e-3)
    # only rank 0 wrote files
    assert not os.path.exists(os.path.join(base, "rank1"))
    rank0 = sorted(os.listdir(os.path.join(base, "rank0")))
    assert {"final.pth", "iter_3.pth", "metrics.jsonl", "env.json", "train.log", "last_checkpoint", "best.pth"} <= set(
        rank0
    )
    with open(os.path.join(base, "rank0", "env.json")) as fh:
        assert json.load(fh)["world_size"] == 2
    # logged losses are averaged over ranks: equal to the single process's log
    with open(os.path.join(base, "rank0", "metrics.jsonl")) as fh:
        ddp_log = [json.loads(line) for line in fh if '"train"' in line]
    with open(os.path.join(base, "single", "metrics.jsonl")) as fh:
        single_log = [json.loads(line) for line in fh if '"train"' in line]
    assert [r["iter"] for r in ddp_log] == [3, 6]
    for a, b in zip(ddp_log, single_log):
        assert abs(a["loss"] - b["loss"]) < 1e-5 and abs(a["train_err"] - b["train_err"]) < 1e-6
