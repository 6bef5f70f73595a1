"""Thin helpers over ``torch.distributed`` (torchrun: nccl on GPU, gloo on CPU).

Global rank 0 writes the run's files (checkpoints, logs); node-local work (a dataset's parsed
cache on a node's disk, a download into a node-local folder) is done once per node by the
process with ``LOCAL_RANK == 0`` while the node's other processes wait::

    if dist.is_local_main_process():
        build_cache(path)          # one process per node
    dist.local_barrier()           # the node's other ranks wait here, then read the cache

``local_barrier`` waits only for the ranks of its own node (one gloo group per node, made by
``init_distributed`` when ``LOCAL_WORLD_SIZE < WORLD_SIZE``). Nodes are told apart by
torchrun's ``GROUP_RANK`` (so two "nodes" on one machine are two nodes), else SLURM's
``SLURM_NODEID``, else the host name.
"""

from __future__ import annotations

import os
import socket
import warnings
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def get_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def get_local_world_size() -> int:
    """Processes on this node (torchrun's ``LOCAL_WORLD_SIZE``; 1 when not launched by it)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", 1))


def is_main_process() -> bool:
    """Global rank 0: the one process that writes the run's files."""
    return get_rank() == 0


def is_local_main_process() -> bool:
    """``LOCAL_RANK == 0``: the one process per node for node-local work (a cache on local disk)."""
    return get_local_rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def node_id() -> str:
    """What tells this process's node from the others (see the module docstring)."""
    for key in ("GROUP_RANK", "SLURM_NODEID"):
        if os.environ.get(key, "") != "":
            return f"{key}={os.environ[key]}"
    return socket.gethostname()


_NODE_GROUP: list = []  # the gloo group of this node's ranks (empty: one node, the world is the node)


def _make_node_group() -> None:
    """Called by ``init_distributed`` on every rank (making groups is a collective; made later,
    on first use, a node could not pass its barrier before every other node came to it)."""
    _NODE_GROUP.clear()
    if get_local_world_size() >= get_world_size():
        return
    nodes = all_gather_object(node_id())
    # every rank creates every node's group and keeps its own; gloo: a barrier needs no GPU
    # memory and works beside an nccl default group
    for name in sorted(set(nodes)):
        group = dist.new_group([r for r, n in enumerate(nodes) if n == name], backend="gloo")
        if name == nodes[get_rank()] and len(set(nodes)) > 1:
            _NODE_GROUP.append(group)


def local_barrier() -> None:
    """Wait for every process of this node, and only for those (the node's other ranks need
    not be in step with other nodes). No-op when not distributed."""
    if is_distributed():
        dist.barrier(group=_NODE_GROUP[0] if _NODE_GROUP else None)


def init_distributed(backend: str | None = None) -> bool:
    """Initialise the process group when launched by torchrun (``WORLD_SIZE`` > 1).

    Returns True when running distributed. nccl is used when CUDA is available,
    gloo otherwise.
    """
    if is_distributed():
        return True
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(get_local_rank())
    _warn_shared_store()
    dist.init_process_group(backend=backend)
    _make_node_group()
    return True


SHARED_STORE_OFF = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"


def _warn_shared_store() -> None:
    """torchrun (c10d rendezvous) shares its agent's TCPStore with the workers and keeps it over
    restarts: the restarted workers can read the previous attempt's addresses and fail to
    connect. Setting ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1`` gives each attempt its own store."""
    if (
        int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", 0) or 0) > 0
        and os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
        and os.environ.get(SHARED_STORE_OFF, "0") != "1"
        and os.environ.get("RANK", "0") == "0"
    ):
        warnings.warn(
            f"torchrun --max-restarts > 0 with the shared rendezvous store: a restarted "
            f"group may fail to connect (stale addresses of the previous attempt); export "
            f"{SHARED_STORE_OFF}=1 before torchrun (docs/distributed.md)",
            RuntimeWarning,
            stacklevel=3,
        )


def all_gather_object(obj: Any) -> list[Any]:
    """Gather a picklable object from every rank (a one-element list when not distributed)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over ranks (returns a new tensor)."""
    if not is_distributed():
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / get_world_size()
