"""Worker processes that end with the process that started them.

A ``ProcessPoolExecutor`` worker keeps running its task when its parent is killed (``kill PID``,
a scheduler's SIGTERM, an out-of-memory kill): only a terminal's Ctrl-C reaches the whole
process group. Left alone, such an orphan trains on for an hour, holding cores and writing into
a run folder that a restarted command then resumes from. ``exit_with_parent`` (a pool
``initializer``) makes the worker leave as soon as it notices the parent is gone.
"""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(parent_pid: int, poll_s: float = 2.0) -> None:
    """Watch, from a daemon thread, that this process's parent is still ``parent_pid``; when it
    is not (the parent died and the process was re-parented), exit at once with status 1,
    without cleanup: the run folder keeps its last checkpoint, from which the next call resumes."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(poll_s)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
