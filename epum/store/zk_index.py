"""The ZooKeeper store's instance-to-domain map, fed by the domain cache.

Heartbeats name only an instance; finding its domain through the index
znode would cost a round trip each.  ``InstanceDomains`` keeps
``instance id -> (owner, domain_id)`` for every record the watch-fed cache
holds (``follow`` is a cache listener) and for the index entries read from
the server for records the cache does not show yet.  An entry is a hint:
an instance never changes domain, but the store confirms with the cache
that the record still exists before trusting one.

Only ``epum.store.zookeeper`` uses this module.
"""

from __future__ import annotations

from epum.store.zk_paths import ZkPaths, unquote_name

#: Entries learned from index reads (records the cache does not show yet)
#: are kept only while the map is smaller than this; entries for records
#: the cache holds are always kept (the cache holds the records themselves,
#: so the map adds a fraction of their memory).
LEARNED_KEPT = 100_000


class InstanceDomains:
    """``instance id -> (owner, domain_id)`` for the records under ``paths.domains``.

    ``follow(path, present)`` is called from the cache's thread, the
    lookups from any thread; each is a single dict operation.  Domain keys
    are shared between the instances of a domain.
    """

    def __init__(self, paths: ZkPaths, learned_kept: int = LEARNED_KEPT):
        self._paths = paths
        self._learned_kept = learned_kept
        self._domains: dict[str, tuple[str, str]] = {}
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}

    def __len__(self) -> int:
        return len(self._domains)

    def get(self, instance_id: str) -> tuple[str, str] | None:
        """The domain the instance was last seen in, or None (a hint: confirm it)."""
        return self._domains.get(instance_id)

    def follow(self, path: str, present: bool) -> None:
        """Note that the cached znode at ``path`` is ``present`` or gone (records only)."""
        prefix = self._paths.domains + "/"
        if not path.startswith(prefix):
            return
        parts = path[len(prefix) :].split("/")
        if len(parts) != 4 or parts[2] != "instances":
            return
        instance_id = unquote_name(parts[3])
        if not present:
            self._domains.pop(instance_id, None)
            return
        quoted = (parts[0], parts[1])
        key = self._keys.get(quoted)
        if key is None:
            key = self._keys.setdefault(quoted, (unquote_name(parts[0]), unquote_name(parts[1])))
        self._domains[instance_id] = key

    def learn(self, instance_id: str, key: tuple[str, str]) -> None:
        """Remember what the index said (unless the map is full of others)."""
        if len(self._domains) < self._learned_kept or instance_id in self._domains:
            self._domains[instance_id] = self._keys.setdefault(key, key)

    def forget(self, instance_id: str) -> None:
        """Drop a hint the store found wrong (the instance is gone)."""
        self._domains.pop(instance_id, None)
