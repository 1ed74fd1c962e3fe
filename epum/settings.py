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


def _why(default: Any, reason: str) -> Any:
    """A dataclass field with an immutable default and the reason for it."""
    return field(default=default, metadata={"why": reason})


@dataclass(frozen=True)
class AmqpSettings:
    """``server.amqp``: how to reach the broker and name things on it."""

    url: str | None = _why(None, "the parts below describe a local broker well enough")
    host: str = _why("localhost", "a single worker next to its broker")
    port: int = _why(5672, "the AMQP port")
    username: str = _why("guest", "RabbitMQ's default user (local connections only)")
    password: str = _why("guest", "RabbitMQ's default password")
    vhost: str = _why("/", "RabbitMQ's default vhost")
    heartbeat: int = _why(30, "dead connections are found within a minute")
    ssl: bool = _why(False, "a local broker")
    sysname: str | None = _why(None, "one system per broker needs no namespace")
    exchange: str = _why("default_dashi_exchange", "what every dashi service uses")
    prefetch: int = _why(1, "one message in hand per worker: fair sharing across workers")
    rpc_timeout: float = _why(30.0, "long enough for a slow store write, short enough to notice")


@dataclass(frozen=True)
class ZooKeeperSettings:
    """``server.zookeeper``: the ZooKeeper store's ensemble."""

    hosts: str = _why("localhost:2181", "a local ensemble")
    path: str = _why("/epum", "one base path per system")
    timeout: float = _why(10.0, "session timeout: failover in about 10 s")
    username: str | None = _why(None, "no digest ACL by default")
    password: str | None = _why(None, "no digest ACL by default")


@dataclass(frozen=True)
class EPUMSettings:
    """``epumanagement``: the service itself (PROTOCOL.md sections 1 and 6).

    The keys the facade reads take their defaults from ``ServiceSettings``,
    which checks them again when the worker builds the facade."""

    service_name: str = _why(ServiceSettings.service_name, "the name clients know")
    provisioner_service_name: str = _why("provisioner", "the provisioner's usual name")
    dtrs_service_name: str = _why("dtrs", "the DTRS's usual name")
    default_user: str | None = _why(None, "every domain op must say whose domain it is")
    persistence_type: str = _why(ServiceSettings.persistence_type, "one worker needs no ZooKeeper")
    initial_definitions: dict[str, Any] = field(
        default_factory=dict, metadata={"why": "definitions are usually added by RPC"}
    )
    initial_domains: dict[str, Any] = field(
        default_factory=dict, metadata={"why": "domains are usually added by RPC"}
    )
    needy_default_iaas_site: str | None = _why(None, "engines name their site")
    needy_default_iaas_allocation: str | None = _why(None, "engines name their allocation")
    provisioner_vars: dict[str, Any] = field(
        default_factory=dict, metadata={"why": "launches need no extra vars by default"}
    )
    decider_loop_interval: float = _why(
        ServiceSettings.decider_loop_interval, "the timed safety-net pass of the decider"
    )
    record_reaping_max_age: float = _why(
        ServiceSettings.record_reaping_max_age, "terminal records stay two hours for audit"
    )
    doctor_loop_interval: float = _why(
        ServiceSettings.doctor_loop_interval, "well under the shortest health timeout"
    )
    reaper_loop_interval: float = _why(
        ServiceSettings.reaper_loop_interval, "reaping is housekeeping"
    )
    allowed_engine_prefixes: list[str] = field(
        default_factory=list,
        metadata={"why": "only the built-in engines and their aliases unless listed"},
    )


@dataclass(frozen=True)
class StatsdSettings:
    """``statsd``: where to send per-operation counters and timings."""

    host: str = _why("localhost", "a local statsd agent")
    port: int = _why(8125, "statsd's port")
    prefix: str = _why("epum", "metric names start with the service")
