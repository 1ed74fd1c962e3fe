"""The settings tree: each setting declared once, with its default and the reason for it."""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from epum.errors import ConfigError
from epum.settings.checks import (
    Checked,
    absolute_path,
    between,
    definitions,
    domains,
    level_name,
    non_empty,
    non_empty_items,
    non_negative,
    one_of,
    positive,
    setting,
    tcp_port,
)
from epum.settings.limits import LimitSettings
from epum.settings.sensors import SensorSettings

#: The most queue shards a service may have: each is a queue (and a broker process).
MAX_QUEUE_SHARDS = 64


# the sections ----------------------------------------------------------------
@dataclass(frozen=True)
class AmqpSettings(Checked):
    """``server.amqp``: how to reach the broker and name things on it."""

    url: str | None = setting(
        None, why="the parts below describe a local broker well enough", check=non_empty
    )
    host: str = setting("localhost", why="a single worker next to its broker", check=non_empty)
    port: int = setting(5672, why="the AMQP port", check=tcp_port)
    username: str = setting("guest", why="RabbitMQ's default user (local connections only)")
    password: str = setting("guest", why="RabbitMQ's default password", secret=True)
    vhost: str = setting("/", why="RabbitMQ's default vhost")
    heartbeat: int = setting(
        30, why="dead connections are found within a minute", check=non_negative
    )
    ssl: bool = setting(False, why="a local broker (an amqps:// url or a CA file turns it on)")
    ssl_ca_certs: str | None = setting(
        None, why="the system's CA store verifies the broker", check=non_empty
    )
    ssl_certfile: str | None = setting(
        None,
        why="no client certificate: the broker knows us by user and password",
        check=non_empty,
    )
    ssl_keyfile: str | None = setting(
        None, why="the key is in the certificate file, or there is none", check=non_empty
    )
    ssl_verify: bool = setting(
        True, why="a broker whose certificate is not checked could be anyone"
    )
    trust_user_id: bool = setting(
        False,
        why="the original services named the caller in the request; on: the broker's "
        "validated user_id is the caller (recommended in production)",
    )
    trusted_users: tuple[str, ...] = setting(
        (),
        why="with trust_user_id, only these broker users (e.g. the process dispatcher) "
        "may act for another caller",
        check=non_empty_items,
    )
    provisioner_users: tuple[str, ...] = setting(
        (),
        why="with trust_user_id, instance_info is taken only from these broker users",
        check=non_empty_items,
    )
    agent_users: tuple[str, ...] = setting(
        (),
        why="with trust_user_id, heartbeats are taken only from these broker users",
        check=non_empty_items,
    )
    sysname: str | None = setting(
        None, why="one system per broker needs no namespace", check=non_empty
    )
    exchange: str = setting(
        "default_dashi_exchange", why="what every dashi service uses", check=non_empty
    )
    prefetch: int = setting(
        16,
        why="the next message is already there when a handler returns, and fires are "
        "acknowledged 8 at a time",
        check=positive,
    )
    handlers: int = setting(
        4,
        why="reports of different instances overlap their store round trips; each "
        "instance's reports, and every call, keep their arrival order",
        check=positive,
    )
    queue_shards: int = setting(
        1,
        why="one queue is one broker process; more (RabbitMQ's consistent-hash plugin) "
        "spread requests by sender for workers that together outrun one queue",
        check=between(1, MAX_QUEUE_SHARDS),
    )
    rpc_timeout: float = setting(
        30.0, why="long enough for a slow store write, short enough to notice", check=positive
    )
    # -- delayed retry, dead letters, and the bound of calls made while handling a message
    store_retries: int = setting(
        10,
        why="with the delays below a report outlives three minutes of store outage",
        check=non_negative,
    )
    store_retry_delay: float = setting(
        1.0, why="most store outages are a reconnect, over in a second", check=positive
    )
    store_retry_delay_max: float = setting(
        30.0,
        why="doubling stops at 30 s: a report is in within half a minute of the store's return",
        check=positive,
    )
    dead_letter: bool = setting(
        False, why="nothing drains <service>.dead by default; on where an operator watches it"
    )
    dtrs_timeout: float = setting(
        2.0,
        why="a DTRS check holds the consumer (and every call behind it) at most this long",
        check=positive,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ConfigError("server.amqp.ssl_keyfile needs ssl_certfile (the client certificate)")
        if self.store_retry_delay_max < self.store_retry_delay:
            raise ConfigError(
                "server.amqp.store_retry_delay_max must be >= store_retry_delay "
                f"({self.store_retry_delay_max} < {self.store_retry_delay})"
            )


@dataclass(frozen=True)
class ZooKeeperSettings(Checked):
    """``server.zookeeper``: the ZooKeeper store's ensemble (the only home of its defaults)."""

    hosts: str = setting("localhost:2181", why="a local ensemble", check=non_empty)
    path: str = setting("/epum", why="one base path per system", check=absolute_path)
    timeout: float = setting(10.0, why="session timeout: failover in about 10 s", check=positive)
    username: str | None = setting(None, why="no digest ACL by default", check=non_empty)
    password: str | None = setting(None, why="no digest ACL by default", secret=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.username and self.password is None:
            raise ConfigError(
                "server.zookeeper.username needs a password "
                "(initial_conf: persistence_user needs persistence_pw)"
            )


@dataclass(frozen=True)
class EPUMSettings(Checked):
    """``epumanagement``: the service itself, what the facade and its roles read."""

    service_name: str = setting(
        "epu_management_service",
        why="the queue clients know; also the heartbeat_dest agents are given",
        check=non_empty,
    )
    provisioner_service_name: str = setting(
        "provisioner", why="the provisioner's usual name", check=non_empty
    )
    dtrs_service_name: str = setting("dtrs", why="the DTRS's usual name", check=non_empty)
    dtrs_cache_seconds: float = setting(
        5.0,
        why="a burst of add_domain calls on the same sites asks the DTRS once; a site "
        "or credentials taken away from the DTRS are still accepted this long",
        check=non_negative,
    )
    default_user: str | None = setting(
        None, why="every domain op must say whose domain it is", check=non_empty
    )
    persistence_type: str = setting(
        "memory",
        why="a lone worker needs nothing else to run",
        check=one_of("memory", "zookeeper"),
    )
    external_decide: bool = setting(
        False, why="production runs the timed loops; only tests drive the roles by hand"
    )
    initial_definitions: dict[str, Any] = setting(
        why="definitions are usually added by RPC", factory=dict, check=definitions
    )
    initial_domains: dict[str, Any] = setting(
        why="domains are usually added by RPC", factory=dict, check=domains
    )
    needy_default_iaas_site: str | None = setting(None, why="engines name their site")
    needy_default_iaas_allocation: str | None = setting(None, why="engines name their allocation")
    provisioner_vars: dict[str, Any] = setting(
        why="launches need no extra vars; an engine's own provisioner_vars win", factory=dict
    )
    decider_loop_interval: float = setting(
        5.0,
        why="the timed safety-net pass: faster than a cloud autoscaler, slow enough to batch",
        check=positive,
    )
    decider_partitions: int = setting(
        1,
        why="one decider keeps tens of thousands of instances in step; more shares "
        "spread deciding over the workers (epum.partitions)",
        check=positive,
    )
    decider_partition_settle: float = setting(
        2.0,
        why="the shares are dealt out again once the workers have stayed the same this "
        "long: a rolling restart deals them once, not once per worker",
        check=positive,
    )
    doctor_loop_interval: float = setting(
        10.0, why="well under the shortest health timeout worth having", check=positive
    )
    reaper_loop_interval: float = setting(
        300.0, why="reaping is housekeeping; every five minutes is plenty", check=positive
    )
    record_reaping_max_age: float = setting(
        7200.0, why="terminal records stay two hours for operators to look", check=positive
    )
    decision_log_entries: int = setting(
        200,
        why="a day of a busy domain's decisions in well under ZooKeeper's 1 MB znode limit",
        check=positive,
    )
    decision_log_max_age: float = setting(
        86400.0, why="why it (did not) scale is asked about within the day", check=positive
    )
    allowed_engine_prefixes: tuple[str, ...] = setting(
        (),
        why="only the built-in engines and their aliases unless listed",
        check=non_empty_items,
    )


@dataclass(frozen=True)
class StatsdSettings(Checked):
    """``statsd``: where to send per-operation counters and timings."""

    host: str = setting("localhost", why="a local statsd agent", check=non_empty)
    port: int = setting(8125, why="statsd's port", check=tcp_port)
    prefix: str = setting("epum", why="metric names start with the service")


@dataclass(frozen=True)
class HttpSettings(Checked):
    """``server.http``: the worker's local ``/healthz``, ``/readyz`` and ``/metrics``."""

    port: int | None = setting(
        None,
        why="off unless asked: several workers on one host would fight over one port",
        check=tcp_port,
    )
    host: str = setting(
        "127.0.0.1", why="local only: a scraper or probe on the same host", check=non_empty
    )


def default_worker_name() -> str:
    """``<hostname>-<pid>``: unique among the workers of one host."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Settings(Checked):
    """The whole tree; each field's ``path`` is where it lives in a config file.

    ``warnings`` are not settings: they are the unknown keys met while
    building the tree, for its builder to log once (they do not count in
    comparisons).
    """

    amqp: AmqpSettings = setting(why="a local broker", factory=AmqpSettings, path="server.amqp")
    zookeeper: ZooKeeperSettings = setting(
        why="a local ensemble", factory=ZooKeeperSettings, path="server.zookeeper"
    )
    epum: EPUMSettings = setting(
        why="the service's defaults", factory=EPUMSettings, path="epumanagement"
    )
    http: HttpSettings = setting(
        why="no endpoint unless a port is given", factory=HttpSettings, path="server.http"
    )
    limits: LimitSettings = setting(
        why="safe bounds for a small deployment", factory=LimitSettings, path="limits"
    )
    sensors: SensorSettings = setting(
        why="the collector on, no secrets", factory=SensorSettings, path="server.sensors"
    )
    statsd: StatsdSettings | None = setting(None, why="metrics are opt-in", path="statsd")
    logging: dict[str, Any] | None = setting(
        None, why="the worker's console log (service.DEFAULT_LOGGING)", path="logging"
    )
    log_level: str | None = setting(
        None,
        why="the logging config decides",
        check=level_name,
        convert=str.upper,
        path="log_level",
    )
    worker_name: str = setting(
        why="unique per process on one host",
        factory=default_worker_name,
        check=non_empty,
        path="worker_name",
    )
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)


#: Each ``initial_conf`` key of the facade (PROTOCOL.md section 1, and the ones
#: epum adds) -> its place in the tree, as its dotted path in a config file.
INITIAL_CONF_KEYS: dict[str, str] = {
    "service_name": "epumanagement.service_name",
    "default_user": "epumanagement.default_user",
    # the original passed its whole epumanagement section as initial_conf
    "provisioner_service_name": "epumanagement.provisioner_service_name",
    "dtrs_service_name": "epumanagement.dtrs_service_name",
    "dtrs_cache_seconds": "epumanagement.dtrs_cache_seconds",
    "initial_definitions": "epumanagement.initial_definitions",
    "initial_domains": "epumanagement.initial_domains",
    "persistence_type": "epumanagement.persistence_type",
    "persistence_url": "server.zookeeper.hosts",
    "persistence_path": "server.zookeeper.path",
    "persistence_user": "server.zookeeper.username",
    "persistence_pw": "server.zookeeper.password",
    "persistence_timeout": "server.zookeeper.timeout",
    "worker_name": "worker_name",
    "_external_decide_invocations": "epumanagement.external_decide",
    "needy_default_iaas_site": "epumanagement.needy_default_iaas_site",
    "needy_default_iaas_allocation": "epumanagement.needy_default_iaas_allocation",
    "provisioner_vars": "epumanagement.provisioner_vars",
    "decider_loop_interval": "epumanagement.decider_loop_interval",
    "decider_partitions": "epumanagement.decider_partitions",
    "decider_partition_settle": "epumanagement.decider_partition_settle",
    "doctor_loop_interval": "epumanagement.doctor_loop_interval",
    "reaper_loop_interval": "epumanagement.reaper_loop_interval",
    "record_reaping_max_age": "epumanagement.record_reaping_max_age",
    "allowed_engine_prefixes": "epumanagement.allowed_engine_prefixes",
    "decision_log_entries": "epumanagement.decision_log_entries",
    "decision_log_max_age": "epumanagement.decision_log_max_age",
    "limits": "limits",
}
