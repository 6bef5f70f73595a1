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
