"""Progress for long loops (training, evaluation, inference over a dataset, data generation,
dataset indexing): a live bar with rate and ETA on a terminal (rich, which mmengine already
installs), plain periodic lines when the output is not a terminal (CI, nohup, a file).

    with Progress(len(items), "generating shapes_det/train") as progress:
        for item in items:
            ...
            progress.update(1, loss=0.42)       # extra fields appear in the bar's text

Only rank 0 should show progress; pass ``enabled=False`` elsewhere.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import time
from typing import Any, TextIO

NO_PROGRESS_ENV = "RESDET_NO_PROGRESS"  # set to 1 to force plain lines even on a terminal
_LIVE: list = []  # the rich display on screen, if any (one at a time; inner loops add a task)


def format_seconds(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


def format_fields(fields: dict[str, Any]) -> str:
    """``loss 0.4213 lr 0.01``: floats with 4 significant digits, in the given order."""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " ".join(parts)


def is_terminal(stream: TextIO | None) -> bool:
    if os.environ.get(NO_PROGRESS_ENV, "") not in ("", "0"):
        return False
    return bool(stream is not None and getattr(stream, "isatty", lambda: False)())


class Progress:
    """A progress display over ``total`` steps (see the module docstring).

    Args:
        total: number of steps (``None``: unknown; no ETA).
        description: what is being done, shown first.
        stream: where to draw / print (default ``sys.stdout``, with the log lines; stderr is
            kept for errors, one line each).
        interval_s: seconds between plain lines when not on a terminal (the last step always
            prints one).
        logger: plain lines go to this logger (``info``) instead of the stream, e.g. the
            training logger so they also land in ``train.log``.
        enabled: ``False`` shows nothing (other ranks).
        start: steps already done (a resumed run).
    """

    def __init__(
        self,
        total: int | None,
        description: str,
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        logger: logging.Logger | None = None,
        enabled: bool = True,
        start: int = 0,
    ) -> None:
        self.total, self.description = (int(total) if total is not None else None), description
        self.stream = stream if stream is not None else sys.stdout
        self.interval_s, self.logger, self.enabled = float(interval_s), logger, bool(enabled)
        self.done = self.start = int(start)
        self.fields: dict[str, Any] = {}
        self.started = self.last_line = time.perf_counter()
        self.live = self.enabled and is_terminal(self.stream)
        self._rich = None
        self._task = None
        self._owner = False
        if self.live:
            self._start_rich()

    # ------------------------------------------------------------------ rich (terminal)
    def _start_rich(self) -> None:
        if _LIVE:  # a bar is already on screen (validation inside training): add a line to it
            self._rich, self._owner = _LIVE[-1], False
            self._task = self._rich.add_task(
                self.description, total=self.total, completed=self.start, rate="", extra=""
            )
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        console = Console(file=self.stream)
        self._rich = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[extra]}"),
            console=console,
            transient=False,
        )
        self._rich.start()
        self._owner = True
        _LIVE.append(self._rich)
        self._task = self._rich.add_task(self.description, total=self.total, completed=self.start, rate="", extra="")

    # ------------------------------------------------------------------ public
    @property
    def rate(self) -> float:
        """Steps per second since the start."""
        elapsed = time.perf_counter() - self.started
        return (self.done - self.start) / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.total is None or self.rate <= 0:
            return None
        return (self.total - self.done) / self.rate

    def text(self) -> str:
        """The plain line: ``desc: 250/1000 (25%) 12.3 it/s eta 0:01:01 loss 0.42``."""
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        percent = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        eta = f" eta {format_seconds(self.eta_s)}" if self.eta_s is not None else ""
        extra = format_fields(self.fields)
        return f"{self.description}: {count}{percent} {self.rate:.3g} it/s{eta}" + (f" {extra}" if extra else "")

    def update(self, n: int = 1, **fields: Any) -> None:
        """Advance by ``n`` steps; ``fields`` (loss, lr, a metric) replace the shown ones."""
        self.done += int(n)
        self.fields.update(fields)
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(
                self._task, completed=self.done, rate=f"{self.rate:.3g} it/s", extra=format_fields(self.fields)
            )
            return
        now = time.perf_counter()
        finished = self.total is not None and self.done >= self.total
        if finished or now - self.last_line >= self.interval_s:
            self.last_line = now
            self._print(self.text())

    def write(self, text: str) -> None:
        """A message that should not be overdrawn by the bar (a log line, a table)."""
        if self._rich is not None:
            self._rich.console.print(text, markup=False, highlight=False)
        elif self.logger is not None:
            self.logger.info(text)
        else:
            print(text, file=self.stream, flush=True)

    def _print(self, text: str) -> None:
        if self.logger is not None:
            self.logger.info(text)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._rich is None:
            return
        if self._owner:
            self._rich.stop()
            _LIVE.remove(self._rich)
        else:
            self._rich.remove_task(self._task)
        self._rich = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
