"""Standard output that may disappear: ``resdet ... | head``, a ``tee`` that exits, a closed
terminal, ``> /dev/full``.

Python ignores SIGPIPE, so writing to a pipe whose reader is gone raises ``BrokenPipeError``
(a hung-up terminal gives EIO, a full device ENOSPC) at the next ``print`` or flush, and an
unflushed buffer makes the interpreter print "Exception ignored ... BrokenPipeError" at exit.
``silence_stdout`` points file descriptor 1 at ``/dev/null``, so every later write and the
final flush succeed without a sound; the training logger (``resdet.engine.logger``) does it
when its console goes away and keeps writing ``train.log``. ``run_guarded`` is the
``resdet`` command's wrapper:

- stdout closed by its reader (BrokenPipeError): no traceback, no message (the reader chose
  to stop reading), exit code ``EXIT_BROKEN_PIPE`` = 141 = 128 + SIGPIPE, what ``cat`` or
  ``grep`` report in the same place, so ``set -o pipefail`` scripts see the usual status;
- stdout not writable (full disk, I/O error): one line on stderr, exit code 2.

Only errors raised by writes to ``sys.stdout`` count (the wrapper marks them): a full disk
under an output file stays the error it is.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Callable

EXIT_BROKEN_PIPE = 141
# errors of a write to a console that is gone: reader closed, terminal hung up, device full
GONE_ERRNOS = frozenset({errno.EPIPE, errno.EIO, errno.ENOSPC, errno.ENXIO})


def is_gone_error(err: BaseException) -> bool:
    """Whether ``err`` is a failed write to a stream that is gone (see ``GONE_ERRNOS``)."""
    return isinstance(err, OSError) and err.errno in GONE_ERRNOS


def silence_stdout(stream=None) -> bool:
    """Point ``stream``'s file descriptor (default ``sys.stdout``) at ``/dev/null``; what its
    buffer still holds is dropped there. False when the stream has no file descriptor."""
    stream = sys.stdout if stream is None else stream
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # pytest's capture, a StringIO
        return False
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    return True


class _MarkingStdout:
    """Forwards to the real stdout; an ``OSError`` raised by its ``write`` or ``flush`` gets
    ``resdet_stdout = True``, so ``run_guarded`` tells it from a failed write to an output file."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def _call(self, name: str, *args):
        try:
            return getattr(self._stream, name)(*args)
        except OSError as err:
            err.resdet_stdout = True
            raise

    def write(self, text: str) -> int:
        return self._call("write", text)

    def flush(self) -> None:
        self._call("flush")

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def run_guarded(prog: str, call: Callable[[], int]) -> int:
    """Run ``call`` (a subcommand's main) and flush stdout, handling a stdout that went away
    as the module docstring says; return the exit code."""
    real = sys.stdout
    sys.stdout = _MarkingStdout(real)
    try:
        code = call()
        sys.stdout.flush()  # a block-buffered stdout (a pipe, a file) fails here, not at print
        return code
    except OSError as err:
        if not getattr(err, "resdet_stdout", False) or not is_gone_error(err):
            raise
        silence_stdout(real)  # what the buffer still holds goes nowhere, quietly
        if err.errno == errno.EPIPE:
            return EXIT_BROKEN_PIPE
        print(
            f"{prog}: error: cannot write to standard output ({err.strerror or err}); "
            "send the output to a file or a pipe that accepts it",
            file=sys.stderr,
        )
        return 2
    finally:
        if isinstance(sys.stdout, _MarkingStdout):
            sys.stdout = real
