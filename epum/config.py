"""The config loader: YAML files merged in order, ``EPUM_*`` overrides -> the settings tree.

``load_config(["base.yaml", "site.yaml"])`` deep-merges the files (later
files win key by key; lists and scalars are replaced whole), applies the
environment overrides below and builds ``epum.settings.Settings`` from the
result: every missing key takes its declared default, every value is checked
by its field's type hint and check (``ConfigError`` naming the key on a bad
one), and every unknown key becomes a warning in ``Settings.warnings``
naming the nearest known key (the worker logs them once logging is set up).
This module only reads; what the settings are lives in ``epum.settings``.

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

The original services' keys (``dashi.sysname``, ``dashi.serializer``,
``server.zookeeper.enabled`` and the choice of store it implies) are folded
into this shape first, by ``epum.settings.original.fold_original_keys``,
so the environment overrides still win over them.

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
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from epum.errors import ConfigError
from epum.mappings import deep_merge
from epum.settings import Settings, settings_from_dict
from epum.settings.original import fold_original_keys

__all__ = [
    "ENV_OVERRIDES",
    "ConfigError",
    "apply_env",
    "config_from_dict",
    "deep_merge",
    "load_config",
    "read_yaml",
]

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


def load_config(paths: Sequence[str | Path] = (), env: Mapping[str, str] | None = None) -> Settings:
    """Read and merge the files, override from the environment (``os.environ`` if None),
    build and check the settings tree."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = deep_merge(merged, read_yaml(path))
    return config_from_dict(merged, env)


def config_from_dict(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """The settings tree of an already merged mapping, after applying ``env`` overrides."""
    folded = fold_original_keys(data)
    return settings_from_dict(apply_env(folded, os.environ if env is None else env))


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
