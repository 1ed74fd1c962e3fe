"""The pieces settings are declared with: ``setting()`` and the value checks.

A check is ``check(value, key)`` and raises ``ConfigError`` naming ``key``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import field, fields
from typing import Any

from epum.errors import ConfigError

#: What a check is: ``check(value, key)``, raising ``ConfigError`` naming ``key``.
Check = Callable[[Any, str], None]


def setting(
    default: Any = dataclasses.MISSING,
    *,
    why: str,
    check: Check | None = None,
    factory: Callable[[], Any] | None = None,
    secret: bool = False,
    convert: Callable[[Any], Any] | None = None,
    path: str | None = None,
) -> Any:
    """A settings field: its default (or ``factory``), the reason for it, its check.

    ``secret`` keeps the value out of error messages; ``convert`` normalizes
    a value read from a file or ``initial_conf``; ``path`` (root fields only)
    is where the field lives in the config file.
    """
    metadata = {"why": why, "check": check, "secret": secret, "convert": convert, "path": path}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# checks: each raises ConfigError naming ``key`` ------------------------------
def positive(value: Any, key: str) -> None:
    """Numbers that must be above zero (NaN is refused too)."""
    if not value > 0:
        raise ConfigError(f"{key} must be > 0, not {value!r}")


def between(low: int, high: int) -> Check:
    """A check that the value is from ``low`` to ``high``."""

    def check(value: Any, key: str) -> None:
        if not low <= value <= high:
            raise ConfigError(f"{key} must be {low}..{high}, not {value!r}")

    return check


#: A TCP port.
tcp_port = between(1, 65535)


def non_negative(value: Any, key: str) -> None:
    """Numbers that may be zero (which disables the feature)."""
    if not value >= 0:
        raise ConfigError(f"{key} must be >= 0 (0 disables), not {value!r}")


def non_empty(value: Any, key: str) -> None:
    """Strings that must not be empty when given (None stays allowed where typed so)."""
    if value == "":
        raise ConfigError(f"{key} must not be empty")


def absolute_path(value: Any, key: str) -> None:
    """A ZooKeeper path."""
    if not value.startswith("/"):
        raise ConfigError(f"{key} must start with /, not {value!r}")


def one_of(*choices: str) -> Check:
    """A check that the value is one of ``choices``."""

    def check(value: Any, key: str) -> None:
        if value not in choices:
            raise ConfigError(f"{key} must be {' or '.join(choices)}, not {value!r}")

    return check


def non_empty_items(value: Any, key: str) -> None:
    """Lists of names, none of them empty."""
    if any(item == "" for item in value):
        raise ConfigError(f"{key} must not hold an empty string")


def level_name(value: Any, key: str) -> None:
    """A ``logging`` level name, in any case."""
    if value is not None and not isinstance(logging.getLevelName(value.upper()), int):
        raise ConfigError(f"{key}: unknown level {value!r}")


def definitions(value: Any, key: str) -> None:
    """``initial_definitions``: id -> definition mapping."""
    for def_id, definition in value.items():
        if not isinstance(definition, dict):
            raise ConfigError(f"{key}.{def_id}: expected a mapping")


def domains(value: Any, key: str) -> None:
    """``initial_domains``: id -> ``{definition, config, caller}``."""
    for dom_id, entry in value.items():
        where = f"{key}.{dom_id}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with definition and config")
        if not isinstance(entry.get("definition"), str):
            raise ConfigError(f"{where}.definition: expected a definition id (string)")
        if not isinstance(entry.get("config", {}), dict):
            raise ConfigError(f"{where}.config: expected a mapping")
        if not isinstance(entry.get("caller", ""), str):
            raise ConfigError(f"{where}.caller: expected a string")


class Checked:
    """Runs every field's check on construction, so a section built in code is checked too."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            check = f.metadata.get("check")
            value = getattr(self, f.name)
            if check is not None and value is not None:
                check(value, f"{type(self).__name__}.{f.name}")
