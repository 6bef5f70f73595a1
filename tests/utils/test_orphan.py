"""A training worker whose parent is killed leaves too (``resdet.utils.orphan``): killing the
main ``resdet reproduce`` process must not leave orphans training on the cores."""

import os
import signal
import subprocess
import sys
import time

PARENT = r"""
import os, sys, time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from resdet.utils.orphan import exit_with_parent

if __name__ == "__main__":
    pool = ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=exit_with_parent, initargs=(os.getpid(), 0.2)
    )
    future = pool.submit(time.sleep, 120)
    while not pool._processes:
        time.sleep(0.05)
    time.sleep(1.0)  # the worker has started and runs its initializer
    print(*pool._processes, flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            state = next(line for line in fh if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "Z" not in state.split()[1]  # a zombie has ended: it only waits to be reaped


def test_worker_exits_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 1 and _alive(workers[0])
        os.kill(parent.pid, signal.SIGKILL)  # no cleanup in the parent: the worker is orphaned
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(workers[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(workers[0]), "the worker outlived its killed parent"
    finally:
        parent.kill()
        for pid in workers if "workers" in locals() else []:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
