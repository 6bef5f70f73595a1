"""The program torchrun starts in test_multinode.py: a tiny run on CPU (gloo).

    torchrun ... torchrun_worker.py WORK_DIR [--kill-at N]

Writes ``seen_rank<R>_restart<K>.json`` (the sample indices this rank loaded) and, at the end,
``weights_rank<R>.pt`` and ``result_rank<R>.json`` into WORK_DIR/out. ``--kill-at N``: global
rank 1 kills itself with SIGKILL after iteration N of the first attempt (torchrun's restart
count 0), as the OOM killer or a failed node would.
"""

import argparse
import json
import os
import signal
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine_tiny import EngineTinyDataset, Hook, tiny_config, weights  # noqa: E402

from resdet.engine import Trainer  # noqa: E402
from resdet.engine.signals import restart_count  # noqa: E402
from resdet.registry import DATASETS  # noqa: E402
from resdet.utils import dist  # noqa: E402

SEEN: list[int] = []


@DATASETS.register_module(name="EngineRecordingDataset", force=True)
class EngineRecordingDataset(EngineTinyDataset):
    def __getitem__(self, index):
        SEEN.append(int(index))
        return super().__getitem__(index)


class KillAt(Hook):
    priority = 100

    def __init__(self, iteration):
        self.iteration = iteration

    def after_iter(self, trainer, log_vars):
        if trainer.iter == self.iteration and trainer.rank == 1 and restart_count() == 0:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work_dir")
    parser.add_argument("--kill-at", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_distributed()
    rank, out = dist.get_rank(), os.path.join(args.work_dir, "out")
    # node-local work: one process per node writes, the node's others wait for it
    node_file = os.path.join(args.work_dir, f"node_{os.environ['GROUP_RANK']}.txt")
    if dist.is_local_main_process():
        os.makedirs(out, exist_ok=True)
        with open(node_file, "a") as fh:
            fh.write(f"{rank}\n")
    dist.local_barrier()
    assert os.path.isfile(node_file)
    cfg = tiny_config(args.work_dir, max_iters=8, val=True, checkpoint_interval=2, log_interval=2, val_interval=4)
    cfg["train_dataloader"]["dataset"]["type"] = "EngineRecordingDataset"
    hooks = [KillAt(args.kill_at)] if args.kill_at is not None else []
    trainer = Trainer(**cfg, custom_hooks=hooks)
    start = trainer.iter
    result = trainer.train()
    with open(os.path.join(out, f"seen_rank{rank}_restart{restart_count()}.json"), "w") as fh:
        json.dump({"start": start, "seen": SEEN, "world_size": dist.get_world_size()}, fh)
    torch.save(weights(trainer), os.path.join(out, f"weights_rank{rank}.pt"))
    with open(os.path.join(out, f"result_rank{rank}.json"), "w") as fh:
        json.dump({k: v for k, v in result.items() if isinstance(v, (int, float))}, fh)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
