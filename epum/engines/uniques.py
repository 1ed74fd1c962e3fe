"""Unique launch values: each live instance holds a different one.

An engine configured with ``unique_key`` and ``unique_values`` launches its
instances one at a time, each with ``extravars={unique_key: value}`` where
``value`` is not held by any live instance (state before TERMINATING).  The
value an instance holds is read back from its record's ``extravars``, so the
rule survives a restart of the decider.  A value is free again once its
instance is no longer live (terminated, failed or rejected).

As in the original: values keep their JSON type (a list ``[1, 2]`` hands out
the integers 1 and 2; a comma-separated string hands out strings); an empty
or blank ``unique_values``, or no ``unique_key``, means no unique values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from epum.errors import BadRequestError
from epum.instances import Instance

KEY = "unique_key"
VALUES = "unique_values"

CONFIG_DOC = f"""\
{KEY} (string, optional): name of the launch variable that must differ between
    live instances.  Without it, or with an empty {VALUES}, nothing is unique.
{VALUES} (list of JSON values, or one comma-separated string): the values to
    hand out, in order; list items keep their type (1 stays an integer).
    Each new instance is launched alone with extravars {{{KEY}: value}} where
    value is held by no live instance."""


def _values(raw: Any) -> tuple[Any, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, (list, tuple)):
        for item in raw:
            if item is None or isinstance(item, (Mapping, list, tuple)):
                raise BadRequestError(f"{VALUES} items must be strings or numbers, not {item!r}")
        return tuple(dict.fromkeys(raw))
    raise BadRequestError(f"{VALUES} must be a list or a comma-separated string, not {raw!r}")


@dataclass(frozen=True)
class UniqueValues:
    """The unique key and its values, in the order they are handed out."""

    key: str
    values: tuple[Any, ...]

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any]) -> UniqueValues | None:
        """Read and check ``unique_key``/``unique_values``; None when nothing is unique."""
        key = conf.get(KEY)
        values = _values(conf.get(VALUES))
        if key in (None, "") or (isinstance(key, str) and not key.strip()):
            return None
        if not isinstance(key, str):
            raise BadRequestError(f"{KEY} must be a string, not {key!r}")
        if not values:
            return None
        return cls(key, values)

    def held_by(self, instance: Instance) -> Any:
        """The value ``instance`` was launched with, or None."""
        extravars = instance.extravars or {}
        return extravars.get(self.key) if isinstance(extravars, Mapping) else None

    def free_values(self, live: Iterable[Instance]) -> list[Any]:
        """The values no instance of ``live`` holds, in configured order."""
        held = [self.held_by(i) for i in live]
        return [v for v in self.values if not any(_same(v, h) for h in held)]


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind (so the integer 1 and True are not the same value)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)
