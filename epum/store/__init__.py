"""Stores: where epum keeps its state (``memory`` or ``zookeeper``)."""

from __future__ import annotations

from epum.errors import ConfigError
from epum.settings import Settings
from epum.store.base import DomainStore, EPUMStore, Leader
from epum.store.memory import MemoryEPUMStore

__all__ = ["DomainStore", "EPUMStore", "Leader", "MemoryEPUMStore", "get_epum_store"]


def get_epum_store(settings: Settings) -> EPUMStore:
    """Build the store ``settings.epum.persistence_type`` names.

    ``memory``: a ``MemoryEPUMStore``; ``zookeeper``: a ``ZooKeeperEPUMStore``
    on ``settings.zookeeper``, entered in the elections as
    ``settings.worker_name``.  The store is returned uninitialized: call
    ``initialize()``.  ConfigError for any other kind (or a bad ensemble).
    """
    kind = settings.epum.persistence_type
    if kind == "memory":
        return MemoryEPUMStore()
    if kind == "zookeeper":
        from epum.store.zookeeper import ZooKeeperEPUMStore

        return ZooKeeperEPUMStore(settings.zookeeper, worker_name=settings.worker_name)
    raise ConfigError(
        f"epumanagement.persistence_type: unknown {kind!r}; expected memory or zookeeper"
    )
