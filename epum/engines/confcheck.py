"""Small checks for engine config values.

Each function reads one key of an engine conf, checks its type and range,
and returns the value (or the default when the key is absent or None).  A
bad value raises ``BadRequestError`` whose message starts with the key's
name and says what is wrong, so an operator sees at once what to fix.
Unknown keys are never rejected: an engine conf also carries keys meant for
others (``provisioner_vars``) and keys of older deployments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from epum.errors import BadRequestError
from epum.values import as_bool, as_int, as_number

_MISSING = object()


def _present(conf: Mapping[str, Any], key: str) -> Any:
    value = conf.get(key, _MISSING) if isinstance(conf, Mapping) else _MISSING
    return _MISSING if value is None else value


def require_mapping(conf: Any, what: str = "engine conf") -> Mapping[str, Any]:
    """Return ``conf`` if it is a mapping (None counts as empty), else raise."""
    if conf is None:
        return {}
    if not isinstance(conf, Mapping):
        raise BadRequestError(f"{what} must be a mapping, not {type(conf).__name__}")
    return conf


def get_int(
    conf: Mapping[str, Any],
    key: str,
    *,
    required: bool = False,
    default: int | None = None,
    minimum: int | None = None,
) -> int | None:
    """An integer, at least ``minimum``; numeric strings and whole floats are read as ints."""
    value = _present(conf, key)
    if value is _MISSING:
        if required:
            raise BadRequestError(f"{key} is required")
        return default
    value = as_int(key, value)
    if minimum is not None and value < minimum:
        raise BadRequestError(f"{key} must be >= {minimum}, not {value}")
    return value


def get_number(
    conf: Mapping[str, Any],
    key: str,
    *,
    required: bool = False,
    default: float | None = None,
    minimum: float | None = None,
) -> float | None:
    """A number (or a numeric string, not a bool), at least ``minimum``, as a float."""
    value = _present(conf, key)
    if value is _MISSING:
        if required:
            raise BadRequestError(f"{key} is required")
        return default
    value = as_number(key, value)
    if minimum is not None and value < minimum:
        raise BadRequestError(f"{key} must be >= {minimum}, not {value}")
    return value


def get_bool(conf: Mapping[str, Any], key: str, *, default: bool = False) -> bool:
    """A bool; ``"true"``/``"false"`` (and yes/no, on/off, 1/0) are read as such."""
    value = _present(conf, key)
    return default if value is _MISSING else as_bool(key, value)


def get_str(
    conf: Mapping[str, Any], key: str, *, required: bool = False, default: str | None = None
) -> str | None:
    """A non-empty string."""
    value = _present(conf, key)
    if value is _MISSING:
        if required:
            raise BadRequestError(f"{key} is required")
        return default
    if not isinstance(value, str) or not value.strip():
        raise BadRequestError(f"{key} must be a non-empty string, not {value!r}")
    return value


def get_str_list(conf: Mapping[str, Any], key: str) -> list[str]:
    """A list of strings, or one comma-separated string; [] when absent.

    Integers in a list are taken as their decimal text (YAML turns ``8080``
    into an int); surrounding blanks and empty items of a string are dropped;
    repeated items are kept once, in first-seen order.
    """
    value = _present(conf, key)
    if value is _MISSING:
        return []
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        items = [part for part in items if part]
    elif isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise BadRequestError(f"{key} items must be strings, not {item!r}")
            text = str(item).strip()
            if not text:
                raise BadRequestError(f"{key} items must be non-empty strings")
            items.append(text)
    else:
        raise BadRequestError(
            f"{key} must be a list of strings or a comma-separated string, not {value!r}"
        )
    return list(dict.fromkeys(items))


def named_site(conf: Mapping[str, Any], key: str) -> list[str]:
    """``[conf[key]]`` when the config names a site there, else ``[]`` (for ``Engine.sites``)."""
    site = get_str(conf, key)
    return [site] if site else []
