"""Stop signals (SLURM preemption), checkpoint before validation, one run per work dir."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys

import pytest
import torch
from engine_tiny import EngineTinyAccuracy, Hook, single_thread, tiny_config, weights  # noqa: F401 (autouse fixture)

from resdet.engine import Trainer
from resdet.engine import checkpoint as ckpt_module
from resdet.engine.checkpoint import load_training_checkpoint
from resdet.engine.signals import EXIT_PREEMPTED, TrainingPreempted
from resdet.engine.workdir_lock import LOCK_NAME, WorkDirBusyError
from resdet.utils.errors import ResdetError


def _read(path) -> str:
    with open(path) as fh:
        return fh.read()


class SignalAt(Hook):
    """Sends ``sig`` after ``iteration`` to this process and, like SLURM (which signals every
    process of the job), to the DataLoader's worker processes."""

    priority = 100

    def __init__(self, iteration, sig=signal.SIGTERM):
        self.iteration, self.sig = iteration, sig

    def after_iter(self, trainer, log_vars):
        if trainer.iter == self.iteration:
            for child in multiprocessing.active_children():
                os.kill(child.pid, self.sig)
            os.kill(os.getpid(), self.sig)


def _records(work):
    with open(os.path.join(work, "metrics.jsonl")) as fh:
        return [json.loads(line) for line in fh]


def _same_log(work, reference):
    """Each iteration logged once, as in the uninterrupted run; validation numbers equal.
    (A training record averages the iterations since the previous one, so the first record
    after a resume covers fewer iterations: its numbers differ.)"""
    got, expected = _records(work), _records(reference)
    assert [(r["mode"], r["iter"]) for r in got] == [(r["mode"], r["iter"]) for r in expected]
    assert [r for r in got if r["mode"] == "val"] == [r for r in expected if r["mode"] == "val"]


def test_sigterm_checkpoints_exits_75_and_resume_is_exact(tmp_path):
    kwargs = dict(max_iters=9, num_workers=1, dropout=0.3, checkpoint_interval=3)
    full = Trainer(**tiny_config(str(tmp_path / "full"), **kwargs))
    full.train()
    work = str(tmp_path / "cut")
    before = signal.getsignal(signal.SIGTERM)
    cut = Trainer(**tiny_config(work, **kwargs), custom_hooks=[SignalAt(5)])
    with pytest.raises(SystemExit) as info:
        cut.train()
    # finished iteration 5 (no DataLoader worker died of the signal), wrote iter_5.pth, exit code 75
    assert isinstance(info.value, TrainingPreempted) and info.value.code == EXIT_PREEMPTED == 75
    assert info.value.iteration == 5 and info.value.signal_name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is gone after the run
    assert load_training_checkpoint(os.path.join(work, "iter_5.pth"))["iter"] == 5
    with open(os.path.join(work, "last_checkpoint")) as fh:
        assert fh.read().strip() == "iter_5.pth"
    log = _read(os.path.join(work, "train.log"))
    stop_lines = [line for line in log.splitlines() if "stopped by SIGTERM" in line]
    assert len(stop_lines) == 1 and "iteration 5" in stop_lines[0] and "--resume" in stop_lines[0]
    assert "exit code 75" in stop_lines[0]
    resumed = Trainer(**tiny_config(work, **kwargs), resume=True)
    assert resumed.iter == 5
    resumed.train()
    for key, value in weights(full).items():
        assert torch.equal(value, weights(resumed)[key]), key
    _same_log(work, str(tmp_path / "full"))


def test_second_signal_while_saving_does_not_corrupt_the_checkpoint(tmp_path, monkeypatch):
    work = str(tmp_path / "run")
    real_save, calls = ckpt_module.atomic_save, []

    def save_with_second_signal(obj, path):  # SLURM repeats its signal; the write goes on
        calls.append(path)
        os.kill(os.getpid(), signal.SIGTERM)
        real_save(obj, path)

    monkeypatch.setattr(ckpt_module, "atomic_save", save_with_second_signal)
    trainer = Trainer(
        **tiny_config(work, max_iters=8, checkpoint_interval=100), custom_hooks=[SignalAt(4, signal.SIGUSR1)]
    )
    with pytest.raises(TrainingPreempted) as info:
        trainer.train()
    assert info.value.signal_name == "SIGUSR1" and info.value.iteration == 4
    assert [os.path.basename(p) for p in calls] == ["iter_4.pth"]
    ckpt = load_training_checkpoint(os.path.join(work, "iter_4.pth"))  # checksum verified
    assert ckpt["iter"] == 4 and torch.equal(ckpt["model"]["fc1.weight"], weights(trainer)["fc1.weight"])


class CrashOnceInValidation(EngineTinyAccuracy):
    """Validation that fails the first time it runs at ``iteration`` (a bad annotation, OOM)."""

    def __init__(self, iteration):
        super().__init__()
        self.iteration, self.trainer = iteration, None

    def compute(self):
        if self.trainer is not None and self.trainer.iter == self.iteration:
            self.trainer = None
            raise MemoryError("validation ran out of memory")
        return super().compute()


def test_checkpoint_comes_before_validation_and_resume_redoes_it(tmp_path):
    # the plateau schedule reacts to validation: skipping the lost one would change the weights
    kwargs = dict(max_iters=9, val=True, checkpoint_interval=3, val_interval=3)
    plateau = dict(type="PlateauLR", metric="count", mode="max", patience=1, factor=0.1)
    full = Trainer(**dict(tiny_config(str(tmp_path / "full"), **kwargs), param_scheduler=plateau))
    full.train()
    assert full.scheduler.schedules[0].cuts == [6, 9]  # "count" never improves: a cut per later validation
    work = str(tmp_path / "cut")
    cfg = dict(tiny_config(work, **kwargs), param_scheduler=plateau, val_evaluator=CrashOnceInValidation(6))
    crashed = Trainer(**cfg)
    crashed.metrics[0].trainer = crashed
    with pytest.raises(MemoryError):
        crashed.train()
    ckpt = load_training_checkpoint(os.path.join(work, "iter_6.pth"))  # written before the crash
    assert ckpt["iter"] == 6 and ckpt["meta"]["val_pending"] is True
    assert load_training_checkpoint(os.path.join(work, "best.pth"))["meta"]["val_pending"] is False
    resumed = Trainer(**dict(cfg, val_evaluator=EngineTinyAccuracy()), resume=True)
    assert resumed.iter == 6 and resumed.val_pending
    resumed.train()
    assert resumed.scheduler.schedules[0].cuts == [6, 9]
    for key, value in weights(full).items():
        assert torch.equal(value, weights(resumed)[key]), key
    _same_log(work, str(tmp_path / "full"))
    assert "written before its validation: validating" in _read(os.path.join(work, "train.log"))


HOLDER = """
import sys
from resdet.engine import workdir_lock
workdir_lock.acquire(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


def test_second_run_on_a_work_dir_refuses_and_a_dead_runs_lock_is_taken_over(tmp_path):
    work = str(tmp_path / "run")
    os.makedirs(work)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, work], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WorkDirBusyError) as info:
            Trainer(**tiny_config(work, max_iters=2))
        message = str(info.value)
        assert isinstance(info.value, ResdetError) and "\n" not in message
        assert f"pid {holder.pid}" in message and work in message and "--work-dir" in message
        assert not os.path.exists(os.path.join(work, "train.log"))  # refused before touching anything
    finally:
        holder.kill()  # SIGKILL: no clean release, the lock file keeps the dead run's pid
        holder.communicate()  # reaps it and closes the pipes
    assert f"pid={holder.pid}" in _read(os.path.join(work, LOCK_NAME))
    first = Trainer(**tiny_config(work, max_iters=2))
    second = Trainer(**tiny_config(work, max_iters=2))  # one process does not exclude itself
    first.train()
    second.train()
    log = _read(os.path.join(work, "train.log"))
    assert "did not end cleanly" in log and f"pid {holder.pid}" in log
    assert _read(os.path.join(work, LOCK_NAME)) == ""  # released: the next run starts silently


def test_hangup_quiets_the_console_and_the_run_goes_on(tmp_path, monkeypatch):
    from resdet.engine import logger as logger_module

    silenced = []
    monkeypatch.setattr(logger_module, "silence_stdout", lambda stream: silenced.append(stream))
    work = str(tmp_path / "run")
    # the handler is only installed where SIGHUP has its default action (not under nohup, which
    # ignores it and so would make this test fail when the suite itself runs under nohup)
    before = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        _hang_up_and_check(work, silenced)
    finally:
        signal.signal(signal.SIGHUP, before)


def _hang_up_and_check(work: str, silenced: list) -> None:
    before = signal.getsignal(signal.SIGHUP)
    trainer = Trainer(**tiny_config(work, max_iters=6), custom_hooks=[SignalAt(2, signal.SIGHUP)])
    assert trainer.train()["iter"] == 6  # SIGHUP no longer ends the run
    assert len(silenced) == 1 and signal.getsignal(signal.SIGHUP) is before
    log = _read(os.path.join(work, "train.log"))
    assert log.count("console output stopped (the terminal hung up (SIGHUP))") == 1
    assert "iter 6/6" in log  # the file keeps every line after it


class SignalRankAt(SignalAt):
    """Signals only the process of global rank ``rank`` (SLURM signals nodes one by one)."""

    def __init__(self, iteration, rank):
        super().__init__(iteration, signal.SIGUSR1)
        self.rank = rank

    def after_iter(self, trainer, log_vars):
        if trainer.rank == self.rank:
            super().after_iter(trainer, log_vars)


def _ddp_worker(rank, port, base):
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    import torch.distributed as tdist

    try:
        trainer = Trainer(
            **tiny_config(os.path.join(base, "work"), max_iters=8, checkpoint_interval=100),
            custom_hooks=[SignalRankAt(3, rank=1)],
        )
        try:
            trainer.train()
            outcome = "finished"
        except TrainingPreempted as stop:
            outcome = f"stopped {stop.iteration} {stop.signal_name}"
        with open(os.path.join(base, f"rank{rank}.txt"), "w") as fh:
            fh.write(outcome)
    finally:
        tdist.destroy_process_group()


def test_a_signal_on_one_rank_stops_every_rank_at_the_same_iteration(tmp_path):
    import torch.multiprocessing as mp
    from test_ddp import _free_port

    mp.start_processes(_ddp_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True, start_method="fork")
    outcomes = [_read(tmp_path / f"rank{r}.txt") for r in (0, 1)]
    assert outcomes == ["stopped 3 a stop signal on another rank", "stopped 3 SIGUSR1"]
    assert load_training_checkpoint(str(tmp_path / "work" / "iter_3.pth"))["iter"] == 3  # rank 0 wrote it
    log = _read(tmp_path / "work" / "train.log")
    assert log.count("stopped by a stop signal on another rank after iteration 3") == 1
