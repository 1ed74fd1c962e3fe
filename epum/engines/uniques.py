"""Unique launch values: each live instance holds a different one.

An engine configured with ``unique_key`` and ``unique_values`` launches its
instances one at a time, each with ``extravars={unique_key: value}`` where
``value`` is not held by any live instance (state before TERMINATING).  The
value an instance holds is read back from its record's ``extravars``, so the
rule survives a restart of the decider.  A value is free again once its
instance is no longer live (terminated, failed or rejected).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from epum.engines.confcheck import get_str, get_str_list
from epum.errors import BadRequestError
from epum.instances import Instance

KEY = "unique_key"
VALUES = "unique_values"

CONFIG_DOC = f"""\
{KEY} (string, optional): name of the launch variable that must differ between
    live instances.  Requires {VALUES}.
{VALUES} (list of strings, or one comma-separated string): the values to hand
    out.  Each new instance is launched alone with extravars {{{KEY}: value}}
    where value is held by no live instance; when every value is held, nothing
    more is launched (and the engine reports DEVIATING) until one is freed."""


@dataclass(frozen=True)
class UniqueValues:
    """The unique key and its values, in the order they are handed out."""

    key: str
    values: tuple[str, ...]

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any]) -> UniqueValues | None:
        """Read and check ``unique_key``/``unique_values``; None when unused."""
        key = get_str(conf, KEY)
        values = get_str_list(conf, VALUES)
        if key is None and not values:
            return None
        if key is None:
            raise BadRequestError(f"{KEY} is required when {VALUES} is given")
        if not values:
            raise BadRequestError(f"{VALUES} must list at least one value when {KEY} is given")
        return cls(key, tuple(values))

    def held_by(self, instance: Instance) -> str | None:
        """The value ``instance`` was launched with, as text, or None."""
        extravars = instance.extravars or {}
        value = extravars.get(self.key) if isinstance(extravars, Mapping) else None
        return None if value is None else str(value)

    def free_values(self, live: Iterable[Instance]) -> list[str]:
        """The values no instance of ``live`` holds, in configured order."""
        held = {self.held_by(i) for i in live}
        return [v for v in self.values if v not in held]
