"""The error of a model, config or file that cannot be exported or run as exported."""

from __future__ import annotations

from ..utils.errors import ResdetError


class ExportError(ResdetError, ValueError):
    """A model, layout, config or file that cannot be exported (names what is unsupported)."""
