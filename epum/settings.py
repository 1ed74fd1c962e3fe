"""The facade's settings: ``initial_conf`` checked and typed, each default with its reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from epum.errors import BadRequestError


@dataclass(frozen=True)
class ServiceSettings:
    """What ``EPUManagement`` reads from ``initial_conf`` (PROTOCOL.md section 1)."""

    #: The queue epum listens on; also the ``heartbeat_dest`` agents are given.
    service_name: str = "epu_management_service"
    #: Memory unless told otherwise: a lone worker needs nothing else to run.
    persistence_type: str = "memory"
    persistence_url: str | None = None
    persistence_user: str | None = None
    persistence_pw: str | None = None
    #: Tests drive the roles by hand; production runs the timed loops.
    external_decide: bool = False
    needy_default_iaas_site: str | None = None
    needy_default_iaas_allocation: str | None = None
    #: Vars every launch carries; an engine's own provisioner_vars win.
    provisioner_vars: dict[str, Any] = field(default_factory=dict)
    #: Five seconds: faster than a cloud autoscaler, slow enough to batch.
    decider_loop_interval: float = 5.0
    #: Ten seconds: well under the shortest health timeout worth having.
    doctor_loop_interval: float = 10.0
    #: Reaping is housekeeping; every five minutes is plenty.
    reaper_loop_interval: float = 300.0
    #: Two hours: terminal records stay long enough for operators to look.
    record_reaping_max_age: float = 7200.0
    #: Engine classes outside the registry are imported only under these prefixes.
    allowed_engine_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any] | None) -> ServiceSettings:
        """Check ``conf`` and build the settings; unknown keys are ignored."""
        conf = dict(conf or {})
        values: dict[str, Any] = {}
        for name in ("service_name", "persistence_type"):
            if conf.get(name) is not None:
                values[name] = _text(conf, name)
        for name in (
            "persistence_url",
            "persistence_user",
            "persistence_pw",
            "needy_default_iaas_site",
            "needy_default_iaas_allocation",
        ):
            if conf.get(name) is not None:
                values[name] = _text(conf, name)
        if "_external_decide_invocations" in conf:
            values["external_decide"] = bool(conf["_external_decide_invocations"])
        if conf.get("provisioner_vars") is not None:
            if not isinstance(conf["provisioner_vars"], dict):
                raise BadRequestError("provisioner_vars must be a mapping")
            values["provisioner_vars"] = dict(conf["provisioner_vars"])
        for name in (
            "decider_loop_interval",
            "doctor_loop_interval",
            "reaper_loop_interval",
            "record_reaping_max_age",
        ):
            if conf.get(name) is not None:
                values[name] = _positive(conf, name)
        if conf.get("allowed_engine_prefixes") is not None:
            prefixes = conf["allowed_engine_prefixes"]
            if not isinstance(prefixes, list | tuple) or not all(
                isinstance(p, str) and p for p in prefixes
            ):
                raise BadRequestError("allowed_engine_prefixes must be a list of module prefixes")
            values["allowed_engine_prefixes"] = tuple(prefixes)
        if values.get("persistence_type", "memory") not in ("memory", "zookeeper"):
            raise BadRequestError("persistence_type must be memory or zookeeper")
        return cls(**values)

    def replace(self, **changes: Any) -> ServiceSettings:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


def _text(conf: Mapping[str, Any], name: str) -> str:
    value = conf[name]
    if not isinstance(value, str) or not value:
        raise BadRequestError(f"{name} must be a non-empty string, not {value!r}")
    return value


def _positive(conf: Mapping[str, Any], name: str) -> float:
    value = conf[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequestError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)
