"""'Did you mean ...?' hints for errors about a misspelt name (a config key, a registered
type, a subcommand, a metric): one wording everywhere."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


def close_names(name: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` of ``choices`` that look like ``name`` (best first; ``difflib`` ratio >= cutoff)."""
    return difflib.get_close_matches(str(name), list(choices), n=n, cutoff=cutoff)


def format_hint(close: Sequence[str], paren: bool = True) -> str:
    """`` (did you mean 'a'?)`` (``paren``) or ``; did you mean 'a', 'b'?``; ``''`` for no names."""
    if not close:
        return ""
    names = ", ".join(f"'{c}'" for c in close)
    return f" (did you mean {names}?)" if paren else f"; did you mean {names}?"


def did_you_mean(name: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6, paren: bool = True) -> str:
    """The hint (see ``format_hint``) naming the ``choices`` closest to ``name``, or ``''``."""
    return format_hint(close_names(name, choices, n=n, cutoff=cutoff), paren=paren)
