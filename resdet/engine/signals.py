"""Stopping a training run cleanly: preemption signals, elastic restarts, a lost terminal.

**Preemption.** SLURM (``--signal``, preemption, the time limit), Kubernetes and most batch
systems send SIGTERM (or a chosen signal such as SIGUSR1) some time before they kill a job.
While ``StopSignals`` is active, SIGTERM and SIGUSR1 only set a flag; the trainer finishes the
current iteration, writes ``iter_<N>.pth`` (atomically), logs one line and raises
``TrainingPreempted``: a ``SystemExit`` with code ``EXIT_PREEMPTED`` (75). ``--resume``
continues bit-exactly. The handler stays installed while the checkpoint is written, so a
second signal cannot interrupt the write (SIGKILL cannot be caught, but the write is atomic:
the previous checkpoint survives it).

Why 75 (``EX_TEMPFAIL`` of sysexits.h, "temporary failure, try again") and not 143
(128 + SIGTERM): 143 is also what a run killed by SIGTERM *without* saving reports, so a
requeue script could not tell "checkpoint written, resume me" from "killed mid-iteration".

Under torchrun each rank may get the signal at another moment (or only some ranks get it):
the flag travels in the all-reduce the trainer already does every iteration, so all ranks
stop after the same iteration. torchrun's agent forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT to its
workers (add SIGUSR1 with ``--signals-to-handle``) and kills them ``--shutdown-timeout``
seconds (default 30) later. DataLoader workers forked while the handler is active inherit it,
so a signal sent to every process of the job (SLURM does that) does not kill them mid-batch.

**Lost terminal.** SIGHUP (the terminal of a foreground run was closed) makes the run go on
without console output (``train.log`` keeps everything), as under ``nohup``.

**Elastic restarts.** ``restart_count()`` is torchrun's ``TORCHELASTIC_RESTART_COUNT``: after
a worker died and torchrun (``--max-restarts``) restarted the group, the trainer resumes
from the newest checkpoint of the work dir by itself.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from .checkpoint import checkpoint_iter
from .logger import silence_console

EXIT_PREEMPTED = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class TrainingPreempted(SystemExit):
    """Raised by ``Trainer.train`` after a stop signal, once the checkpoint is written.

    A ``SystemExit`` with code ``EXIT_PREEMPTED``: the ``resdet`` command ends with it and
    without a traceback. Attributes: ``signal_name``, ``iteration``, ``checkpoint``."""

    def __init__(self, signal_name: str, iteration: int, checkpoint: str | None) -> None:
        super().__init__(EXIT_PREEMPTED)
        self.signal_name, self.iteration, self.checkpoint = signal_name, iteration, checkpoint

    def __str__(self) -> str:
        return (
            f"stopped by {self.signal_name} after iteration {self.iteration}; checkpoint "
            f"{self.checkpoint}; continue with --resume"
        )


def restart_count() -> int:
    """How many times torchrun restarted this worker group (0: the first start)."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    except ValueError:
        return 0


class StopSignals:
    """Context manager: inside, ``STOP_SIGNALS`` set ``requested`` instead of killing, and
    SIGHUP sets ``hung_up`` (only where SIGHUP still has its default action: under ``nohup``
    or a caller's own handler nothing changes). Handlers can only be installed from the main
    thread; elsewhere the context does nothing."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.hung_up = False
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return bool(self.received)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.received[0]).name if self.received else ""

    def _on_stop(self, signum: int, frame) -> None:
        self.received.append(signum)  # no logging here: the handler may run inside a log call

    def _on_hangup(self, signum: int, frame) -> None:
        # Python runs this between two bytecodes of the main thread (never inside a C write);
        # logging's locks are re-entrant, so the one line below cannot deadlock
        if not self.hung_up:
            self.hung_up = True
            silence_console("the terminal hung up (SIGHUP)")

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_stop)
        if signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
            self._previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def stop_for_signal(trainer, signal_name: str) -> None:
    """Checkpoint ``trainer``'s iteration (unless the checkpoint hook just wrote it), log one
    line and raise ``TrainingPreempted``. Every rank calls it (RNG states are gathered)."""
    path = trainer.last_checkpoint
    if path is None or checkpoint_iter(path) != trainer.iter:
        path = trainer.save_checkpoint(f"iter_{trainer.iter}.pth", keep_last=trainer.cfg.keep_last)
    error = TrainingPreempted(signal_name or "a stop signal on another rank", trainer.iter, path)
    if trainer.rank == 0:  # one line for the run
        logging.getLogger("resdet").warning("%s (exit code %d)", error, error.code)
    raise error
