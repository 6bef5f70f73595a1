"""resdet's own error classes: problems a user can fix (a config, a data file, a checkpoint).

The ``resdet`` command turns each into one line on stderr and exit code 2 (``--debug`` or
``RESDET_DEBUG=1`` shows the traceback); any other exception is a bug and keeps its
traceback. Each class also derives from the built-in error it refines, so existing
``except ValueError`` / ``except RuntimeError`` handlers keep working.
"""

from __future__ import annotations


class ResdetError(Exception):
    """Base class: the message names the file, line, key or field, and the way out."""


class ConfigError(ResdetError, ValueError):
    """A config (file, key or ``--cfg-options`` value) that cannot work as written."""


class DataError(ResdetError, ValueError):
    """A dataset, annotation or results file that cannot be used (empty, malformed, ...)."""


class CheckpointError(ResdetError, RuntimeError):
    """A checkpoint that is missing, truncated, damaged, refused or does not fit the model."""


class OutputError(ResdetError, OSError):
    """An output (work dir, ``--out`` / ``--json`` file, export, published weights) that cannot
    be written: its folder is a file, read-only, a pseudo file system, or the disk is full.
    ``OutputError(errno, message)``: ``str()`` is the message alone (no ``[Errno N]``)."""

    def __str__(self) -> str:
        return str(self.strerror if self.errno is not None else super().__str__())


class DeviceError(ResdetError, ValueError):
    """A ``--device`` that is malformed or names a device this machine does not have."""


class TrainingError(ResdetError, RuntimeError):
    """Training cannot go on as configured (e.g. the loss became NaN or infinite)."""


class UnknownKeyError(ConfigError, KeyError):
    """A config key that the section does not take (a ``KeyError`` too, for older handlers)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
