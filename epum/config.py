"""Configuration: YAML files merged in order, defaults, ``EPUM_*`` overrides, validated.

``load_config(["base.yaml", "site.yaml"])`` deep-merges the files (later
files win key by key; lists and scalars are replaced whole), applies the
environment overrides below, fills every missing key from the defaults and
checks every value, raising ``ConfigError`` naming the key on a bad one.

The file has the shape of PROTOCOL.md section 6, plus these keys of ours:

- ``server.amqp.url``: a full broker URL; when set it wins over
  host/port/username/password/vhost.
- ``server.amqp.sysname``: the namespace prefix of every exchange and queue
  (chosen here rather than top-level because it is a property of the broker
  connection; every service of one system must use the same one).
- ``server.amqp.exchange``, ``server.amqp.prefetch``, ``server.amqp.ssl``,
  ``server.amqp.rpc_timeout``.
- ``epumanagement.allowed_engine_prefixes``: module prefixes engine classes
  outside the built-in registry may be imported from;
  ``epumanagement.doctor_loop_interval`` and ``reaper_loop_interval``.
- ``worker_name`` (top level): this worker's name in logs and on the broker
  connection; default ``<hostname>-<pid>``.
- ``log_level`` (top level): overrides the root level of ``logging``.

Environment overrides (applied after the files, before validation):

=========================  ======================================
``EPUM_AMQP_URL``          ``server.amqp.url``
``EPUM_SYSNAME``           ``server.amqp.sysname``
``EPUM_ZOOKEEPER_HOSTS``   ``server.zookeeper.hosts``
``EPUM_ZOOKEEPER_PATH``    ``server.zookeeper.path``
``EPUM_PERSISTENCE_TYPE``  ``epumanagement.persistence_type``
``EPUM_SERVICE_NAME``      ``epumanagement.service_name``
``EPUM_DEFAULT_USER``      ``epumanagement.default_user``
``EPUM_WORKER_NAME``       ``worker_name``
``EPUM_LOG_LEVEL``         ``log_level``
=========================  ======================================
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from epum.errors import ConfigError
from epum.mappings import deep_merge
from epum.settings import (
    AmqpSettings,
    EPUMSettings,
    StatsdSettings,
    ZooKeeperSettings,
)

#: Environment variable -> the dotted key it sets.
ENV_OVERRIDES: dict[str, str] = {
    "EPUM_AMQP_URL": "server.amqp.url",
    "EPUM_SYSNAME": "server.amqp.sysname",
    "EPUM_ZOOKEEPER_HOSTS": "server.zookeeper.hosts",
    "EPUM_ZOOKEEPER_PATH": "server.zookeeper.path",
    "EPUM_PERSISTENCE_TYPE": "epumanagement.persistence_type",
    "EPUM_SERVICE_NAME": "epumanagement.service_name",
    "EPUM_DEFAULT_USER": "epumanagement.default_user",
    "EPUM_WORKER_NAME": "worker_name",
    "EPUM_LOG_LEVEL": "log_level",
}


@dataclass(frozen=True)
class Config:
    """A loaded, validated configuration."""

    amqp: AmqpSettings
    zookeeper: ZooKeeperSettings
    epum: EPUMSettings
    statsd: StatsdSettings | None
    logging: dict[str, Any] | None
    log_level: str | None
    worker_name: str
    #: Unknown keys found (logged by the worker once logging is set up).
    warnings: tuple[str, ...] = ()

    def facade_conf(self) -> dict[str, Any]:
        """The ``initial_conf`` of ``EPUManagement`` and of ``get_epum_store``."""
        e, zk = self.epum, self.zookeeper
        return {
            "service_name": e.service_name,
            "default_user": e.default_user,
            "persistence_type": e.persistence_type,
            "persistence_url": zk.hosts,
            "persistence_path": zk.path,
            "persistence_user": zk.username,
            "persistence_pw": zk.password,
            "persistence_timeout": zk.timeout,
            "worker_name": self.worker_name,
            "needy_default_iaas_site": e.needy_default_iaas_site,
            "needy_default_iaas_allocation": e.needy_default_iaas_allocation,
            "provisioner_vars": copy.deepcopy(e.provisioner_vars),
            "decider_loop_interval": e.decider_loop_interval,
            "record_reaping_max_age": e.record_reaping_max_age,
            "doctor_loop_interval": e.doctor_loop_interval,
            "reaper_loop_interval": e.reaper_loop_interval,
            "allowed_engine_prefixes": list(e.allowed_engine_prefixes),
        }

    def statsd_conf(self) -> dict[str, Any] | None:
        """The ``statsd_cfg`` of the facade: ``{host, port, prefix}`` or None."""
        if self.statsd is None:
            return None
        return {"host": self.statsd.host, "port": self.statsd.port, "prefix": self.statsd.prefix}


def read_yaml(path: str | Path) -> dict[str, Any]:
    """One config file's mapping (an empty file is ``{}``)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    return data


def load_config(paths: Sequence[str | Path] = (), env: Mapping[str, str] | None = None) -> Config:
    """Read, merge, override from the environment (``os.environ`` if None), validate."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = deep_merge(merged, read_yaml(path))
    return config_from_dict(merged, env)


def config_from_dict(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Validate an already merged mapping (after applying ``env`` overrides)."""
    data = apply_env(data, os.environ if env is None else env)
    warnings: list[str] = []
    server = _mapping(data.get("server"), "server")
    for key in server:
        if key not in ("amqp", "zookeeper"):
            warnings.append(f"unknown key server.{key} ignored")
    amqp = _section(AmqpSettings, server.get("amqp"), "server.amqp", warnings)
    zk = _section(ZooKeeperSettings, server.get("zookeeper"), "server.zookeeper", warnings)
    epum = _section(EPUMSettings, data.get("epumanagement"), "epumanagement", warnings)
    statsd = None
    if data.get("statsd") is not None:
        statsd = _section(StatsdSettings, data["statsd"], "statsd", warnings)
    log_cfg = data.get("logging")
    if log_cfg is not None and not isinstance(log_cfg, dict):
        raise ConfigError("logging: expected a logging.config.dictConfig mapping")
    log_level = _optional_str(data.get("log_level"), "log_level")
    if log_level is not None:
        log_level = log_level.upper()
        if not isinstance(logging.getLevelName(log_level), int):
            raise ConfigError(f"log_level: unknown level {log_level!r}")
    worker_name = _optional_str(data.get("worker_name"), "worker_name")
    _check_values(amqp, zk, epum, statsd)
    return Config(
        amqp=amqp,
        zookeeper=zk,
        epum=epum,
        statsd=statsd,
        logging=log_cfg,
        log_level=log_level,
        worker_name=worker_name or f"{socket.gethostname()}-{os.getpid()}",
        warnings=tuple(warnings),
    )


def apply_env(data: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``data`` with every set ``EPUM_*`` override of ``ENV_OVERRIDES`` applied."""
    out = copy.deepcopy(dict(data))
    for var, dotted in ENV_OVERRIDES.items():
        value = env.get(var)
        if value is None or value == "":
            continue
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    return out


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _optional_str(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected a string, got {value!r}")


_T = typing.TypeVar("_T")


def _section(cls: type[_T], value: Any, where: str, warnings: list[str]) -> _T:
    """Build one settings dataclass from its mapping, checking each value's type."""
    data = _mapping(value, where)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in names:
            warnings.append(f"unknown key {where}.{key} ignored")
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], f"{where}.{name}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against ``hint`` (ints allowed for floats); ConfigError if not."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if args and type(None) in args:  # X | None
        if value is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    if origin is dict and isinstance(value, dict):
        return copy.deepcopy(value)
    if origin is list and isinstance(value, list):
        if args and args[0] is str and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return list(value)
    expected = getattr(origin or hint, "__name__", str(hint))
    shown = "a value" if key.endswith("password") else repr(value)  # never echo a secret
    raise ConfigError(f"{key}: expected {expected}, got {shown} ({type(value).__name__})")


def _check_values(
    amqp: AmqpSettings, zk: ZooKeeperSettings, epum: EPUMSettings, statsd: StatsdSettings | None
) -> None:
    """Range and choice checks the types alone do not express."""
    checks = [
        (1 <= amqp.port <= 65535, "server.amqp.port", "must be 1..65535"),
        (amqp.heartbeat >= 0, "server.amqp.heartbeat", "must be >= 0 (0 disables)"),
        (amqp.prefetch >= 1, "server.amqp.prefetch", "must be >= 1"),
        (amqp.rpc_timeout > 0, "server.amqp.rpc_timeout", "must be > 0"),
        (bool(amqp.exchange), "server.amqp.exchange", "must not be empty"),
        (amqp.sysname is None or amqp.sysname != "", "server.amqp.sysname", "must not be empty"),
        (zk.timeout > 0, "server.zookeeper.timeout", "must be > 0"),
        (zk.path.startswith("/"), "server.zookeeper.path", "must start with /"),
        (
            epum.persistence_type in ("memory", "zookeeper"),
            "epumanagement.persistence_type",
            "must be memory or zookeeper",
        ),
        (bool(epum.service_name), "epumanagement.service_name", "must not be empty"),
        (epum.decider_loop_interval > 0, "epumanagement.decider_loop_interval", "must be > 0"),
        (epum.record_reaping_max_age > 0, "epumanagement.record_reaping_max_age", "must be > 0"),
        (epum.doctor_loop_interval > 0, "epumanagement.doctor_loop_interval", "must be > 0"),
        (epum.reaper_loop_interval > 0, "epumanagement.reaper_loop_interval", "must be > 0"),
    ]
    if statsd is not None:
        checks.append((1 <= statsd.port <= 65535, "statsd.port", "must be 1..65535"))
    for ok, key, why in checks:
        if not ok:
            raise ConfigError(f"{key} {why}")
    for def_id, definition in epum.initial_definitions.items():
        if not isinstance(definition, dict):
            raise ConfigError(f"epumanagement.initial_definitions.{def_id}: expected a mapping")
    for dom_id, entry in epum.initial_domains.items():
        where = f"epumanagement.initial_domains.{dom_id}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with definition and config")
        if not isinstance(entry.get("definition"), str):
            raise ConfigError(f"{where}.definition: expected a definition id (string)")
        if not isinstance(entry.get("config", {}), dict):
            raise ConfigError(f"{where}.config: expected a mapping")
        if not isinstance(entry.get("caller", ""), str):
            raise ConfigError(f"{where}.caller: expected a string")
