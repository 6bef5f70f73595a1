"""Checks of config values by kind, shared by the engine's config check and the loader: each
returns ``None`` when the value is fine, else what is expected (``'an integer >= 0'``), and
``check_section`` turns the first bad one into a ``ConfigError`` naming ``SECTION.KEY``, the
value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Callable

from .errors import ConfigError, UnknownKeyError
from .hints import did_you_mean

Check = Callable[[Any], "str | None"]


def int_value(minimum: int, optional: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"an integer >= {minimum}" + (" or None" if optional else "")
        return None

    return check


def number_value(positive: bool = True, optional: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or (positive and not value > 0)
        ):  # nan and inf never train
            return ("a finite number > 0" if positive else "a finite number") + (" or None" if optional else "")
        return None

    return check


def bool_value(value: Any) -> str | None:
    return None if isinstance(value, bool) else "True or False"


def fraction_value(value: Any) -> str | None:
    if value is None or (not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= 1):
        return None
    return "a number in [0, 1] or None"


def choice_value(*allowed: Any) -> Check:
    def check(value: Any) -> str | None:
        return None if value in allowed else "one of " + ", ".join(repr(a) for a in allowed)

    return check


def check_section(
    section: str, values: Any, checks: dict[str, Check], allowed_keys: Sequence[str] | None = None
) -> None:
    """Raise ``ConfigError`` for the first value of ``values`` (a dict, or ``None``: nothing to
    check) that its check refuses; with ``allowed_keys``, an unknown key is an
    ``UnknownKeyError`` with the closest allowed name."""
    if values is None:
        return
    if hasattr(values, "to_dict"):
        values = values.to_dict()
    if not isinstance(values, dict):
        raise ConfigError(f"{section} must be a dict, got {type(values).__name__} {values!r}")
    if allowed_keys is not None:
        unknown = sorted(set(values) - set(allowed_keys))
        if unknown:
            raise UnknownKeyError(
                f"unknown {section} keys {unknown}{did_you_mean(unknown[0], allowed_keys)}; "
                f"allowed keys: {', '.join(allowed_keys)}"
            )
    for key, check in checks.items():
        if key in values:
            wanted = check(values[key])
            if wanted is not None:
                raise ConfigError(
                    f"{section}.{key} = {values[key]!r} ({type(values[key]).__name__}) is not valid: expected {wanted}"
                )
