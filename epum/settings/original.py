"""The original EPU services' config keys, folded into epum's shape before the tree is built.

A config file of the original deployments (``epu/config/service.yml`` and
``epumanagement.yml``, with dashi's keys) means the same to epum:

- ``dashi.sysname`` is ``server.amqp.sysname`` (both given and different:
  ``ConfigError``, since one system has one namespace);
- ``dashi.serializer: json`` is what epum speaks anyway; any other value is
  refused, naming the key: epum never deserializes anything but JSON;
- a ``server.zookeeper`` section selects the ZooKeeper store when
  ``epumanagement.persistence_type`` is not given, unless its ``enabled`` is
  false (a bool, or the strings ``"true"``/``"false"`` in any case, as the
  original read it); ``enabled`` itself is consumed here;
- ``server.memory`` (dashi's in-process transport for tests) is refused:
  epum needs a broker.

Keys the original had and epum does not use are listed in
``IGNORED_ORIGINAL_KEYS`` here and reported by the builder.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from epum.errors import ConfigError

__all__ = ["IGNORED_ORIGINAL_KEYS", "fold_original_keys"]

#: Keys of the original EPU services' configs that epum accepts and does not
#: use, as dotted paths (``epumanagement.<key>`` for a file, ``initial_conf.<key>``
#: for the facade's argument) -> why, or what to do instead.  A key listed here
#: is reported once as ignored (in ``Settings.warnings``), not as unknown.  This
#: is the one place such keys go.
_IGNORED_EPUM_KEYS: dict[str, str] = {
    "proc_name": "each worker names itself (worker_name); the store needs no process name",
    "mock_provisioner": "epum always calls the provisioner service; run epum.sim's "
    "simulated provisioner for a mock",
    "provisioner_topic": "the provisioner's queue is provisioner_service_name",
}
IGNORED_ORIGINAL_KEYS: dict[str, str] = {
    **{f"epumanagement.{k}": why for k, why in _IGNORED_EPUM_KEYS.items()},
    **{f"initial_conf.{k}": why for k, why in _IGNORED_EPUM_KEYS.items()},
    "system": "dashi's system name: set the namespace with dashi.sysname",
}


def fold_original_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` (the config file's shape) with the original's keys moved to epum's.

    Idempotent: folding a folded mapping changes nothing.  Raises
    ``ConfigError`` naming the key where epum refuses the original's value.
    """
    out = copy.deepcopy(dict(data))
    server = out.get("server")
    if isinstance(server, Mapping):
        _refuse_memory_transport(server)
        _select_zookeeper(out, server)
    dashi = out.pop("dashi", None)
    if dashi is None:
        return out
    if not isinstance(dashi, Mapping):
        raise ConfigError(f"dashi: expected a mapping, got {type(dashi).__name__}")
    dashi = dict(dashi)
    _check_serializer(dashi.pop("serializer", None))
    sysname = dashi.pop("sysname", None)
    if sysname is not None:
        amqp = _child(_child(out, "server"), "amqp")
        given = amqp.get("sysname")
        if given is not None and given != sysname:
            raise ConfigError(
                f"dashi.sysname ({sysname!r}) and server.amqp.sysname ({given!r}) differ: "
                "a system has one namespace; keep one of them"
            )
        amqp["sysname"] = sysname
    if dashi:  # other keys: reported as unknown by the builder
        out["dashi"] = dashi
    return out


def _child(node: dict[str, Any], key: str) -> dict[str, Any]:
    child = node.get(key)
    if child is None:
        child = node[key] = {}
    elif not isinstance(child, dict):
        raise ConfigError(f"{key}: expected a mapping, got {type(child).__name__}")
    return child


def _check_serializer(serializer: Any) -> None:
    if serializer is None or serializer == "json":
        return
    raise ConfigError(
        f"dashi.serializer: epum speaks JSON only, not {serializer!r}; set it to json "
        "(on every service of the system) or remove it"
    )


def _refuse_memory_transport(server: Mapping[str, Any]) -> None:
    if "memory" in server:
        raise ConfigError(
            "server.memory: dashi's in-memory transport is not supported; "
            "remove it and give server.amqp (tests can use a local RabbitMQ)"
        )


def _select_zookeeper(out: dict[str, Any], server: Mapping[str, Any]) -> None:
    """Make the original's choice explicit: ``persistence_type`` from the section."""
    zookeeper = server.get("zookeeper")
    if not isinstance(zookeeper, Mapping) or not zookeeper:
        return
    enabled = True
    if "enabled" in zookeeper:
        enabled = _enabled(zookeeper["enabled"])
        out["server"]["zookeeper"] = {k: v for k, v in zookeeper.items() if k != "enabled"}
    epum = out.get("epumanagement")
    if epum is None:
        epum = out["epumanagement"] = {}
    if isinstance(epum, dict) and "persistence_type" not in epum:
        epum["persistence_type"] = "zookeeper" if enabled else "memory"


def _enabled(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"server.zookeeper.enabled: expected true or false, got {value!r}")
