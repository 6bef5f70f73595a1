"""Node-local helpers of resdet.utils.dist: 4 processes (gloo, CPU) as 2 nodes x 2."""

import os
import socket
import time

import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(path: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _worker(rank: int, port: int, base: str) -> None:
    node, local = divmod(rank, 2)
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE="4",
        RANK=str(rank),
        LOCAL_RANK=str(local),
        LOCAL_WORLD_SIZE="2",
        GROUP_RANK=str(node),
    )
    import torch.distributed as tdist

    from resdet.utils import dist

    dist.init_distributed()
    try:
        assert dist.is_local_main_process() == (local == 0) and dist.get_local_world_size() == 2
        assert dist.is_main_process() == (rank == 0)
        cache = os.path.join(base, f"cache_node{node}")
        if node == 1 and local == 0:
            # node 1 builds its cache only once node 0 is past its barrier: a barrier over all
            # ranks would wait here for ever (node 0's second rank waits in its node's barrier)
            _wait_for(os.path.join(base, "node0_past_barrier"))
        if dist.is_local_main_process():
            with open(cache, "w") as fh:
                fh.write(str(rank))
        dist.local_barrier()
        with open(cache) as fh:  # every rank of the node reads what its local main wrote
            assert fh.read() == str(2 * node)
        if node == 0 and local == 1:
            open(os.path.join(base, "node0_past_barrier"), "w").close()
        dist.barrier()
        open(os.path.join(base, f"done{rank}"), "w").close()
    finally:
        tdist.destroy_process_group()


def test_local_barrier_waits_for_the_node_only(tmp_path):
    mp.start_processes(_worker, args=(_free_port(), str(tmp_path)), nprocs=4, join=True, start_method="fork")
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith("done")) == [f"done{r}" for r in range(4)]
