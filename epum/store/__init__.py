"""Stores: where epum keeps its state (``memory`` or ``zookeeper``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from epum.errors import BadRequestError
from epum.store.base import DomainStore, EPUMStore, Leader
from epum.store.memory import MemoryEPUMStore

__all__ = ["DomainStore", "EPUMStore", "Leader", "MemoryEPUMStore", "get_epum_store"]


def get_epum_store(config: Mapping[str, Any]) -> EPUMStore:
    """Build the store ``config['persistence_type']`` names (default ``memory``).

    For ``zookeeper``: ``persistence_url`` (hosts), ``persistence_path``
    (base path, default ``/epum``), ``persistence_user`` / ``persistence_pw``
    (digest ACL), ``persistence_timeout`` (session timeout, seconds) and
    ``worker_name`` (this worker's name in the elections).
    The store is returned uninitialized: call ``initialize()``.
    """
    kind = config.get("persistence_type") or "memory"
    if kind == "memory":
        return MemoryEPUMStore()
    if kind == "zookeeper":
        from epum.store.zookeeper import ZooKeeperEPUMStore

        hosts = config.get("persistence_url")
        if not hosts:
            raise BadRequestError("persistence_type zookeeper needs persistence_url (hosts)")
        return ZooKeeperEPUMStore(
            hosts,
            config.get("persistence_path") or "/epum",
            username=config.get("persistence_user"),
            password=config.get("persistence_pw"),
            timeout=float(config.get("persistence_timeout") or 10.0),
            worker_name=config.get("worker_name"),
        )
    raise BadRequestError(f"unknown persistence_type {kind!r}; expected memory or zookeeper")
