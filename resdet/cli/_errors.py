"""One top-level handler for every subcommand: resdet's own errors (a bad config, data file or
checkpoint: ``resdet.utils.errors.ResdetError``) end in one line on stderr and exit code 2;
``--debug`` or ``RESDET_DEBUG=1`` shows their traceback. A full disk (ENOSPC / EDQUOT) met by a
write that does not go through ``resdet.utils.io`` (which names the file itself) is one line
too. Any other exception is a bug and keeps its traceback."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Sequence
from typing import Callable

from resdet.utils.errors import ResdetError
from resdet.utils.malloc import apply_requested as apply_requested_malloc

DEBUG_ENV = "RESDET_DEBUG"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def debug_requested(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0", "false", "False")


def one_line(err: BaseException) -> str:
    """The error's message on one line (a KeyError's repr quotes are dropped)."""
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(str(text).split()) or type(err).__name__


def command(name: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a subcommand's ``main(argv) -> int`` with the handler (``name``: its name in
    ``resdet NAME``, used as the message prefix)."""

    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(argv: Sequence[str] | None = None) -> int:
            argv = list(sys.argv[1:] if argv is None else argv)
            debug = debug_requested(argv)
            argv = [a for a in argv if a != "--debug"]
            try:
                apply_requested_malloc()  # RESDET_MALLOC=tuned (resdet.utils.malloc)
                return main(argv)
            except ResdetError as err:
                if debug:
                    raise
                print(f"resdet {name}: error: {one_line(err)}", file=sys.stderr)
                return 2
            except OSError as err:  # a full disk met by a write outside resdet.utils.io
                # a write to stdout itself is resdet.utils.console's (run_guarded) to report
                if debug or err.errno not in DISK_FULL or getattr(err, "resdet_stdout", False):
                    raise
                where = f" writing {err.filename}" if err.filename else ""
                print(
                    f"resdet {name}: error: {os.strerror(err.errno).lower()}{where}; free some space on "
                    "that disk or write elsewhere",
                    file=sys.stderr,
                )
                return 2

        return run

    return wrap
