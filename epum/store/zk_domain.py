"""One domain of the ZooKeeper store, and the encoding both modules share.

A ``ZooKeeperDomainStore`` is a handle: it holds no state of its own and
reads and writes through its ``ZooKeeperEPUMStore`` (``epum.store.zookeeper``
documents the layout, the caching and the guarantees).  Only
``epum.store.zookeeper`` uses this module.
"""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.protocol.states import ZnodeStat

from epum.errors import BadRequestError, NotFoundError, WriteConflictError
from epum.instances import Instance
from epum.store.base import CONFIG_SECTIONS, DomainStore

if TYPE_CHECKING:
    from epum.store.zookeeper import ZkCalls, ZooKeeperEPUMStore

#: How often a merge (read, change, compare-and-set) is retried after
#: losing a race before it gives up with WriteConflictError; more than a
#: handful of lost races in a row means a writer storm worth reporting.
MERGE_TRIES = 20

#: The znodes every domain has under its own, besides ``instances``.
DOMAIN_LEAVES = (*CONFIG_SECTIONS, "subscribers", "sensor_data")


class ZooKeeperDomainStore(DomainStore):
    """A handle on one domain of a ``ZooKeeperEPUMStore``.

    Getters read the store's watch-fed cache (showing this store's own
    writes) except ``get_instance``, which reads the server.  Once the
    domain is gone they raise ``NotFoundError``, except ``is_removed``
    (then True) and ``get_instance`` (then None).
    """

    def __init__(self, store: ZooKeeperEPUMStore, owner: str, domain_id: str):
        super().__init__(owner, domain_id)
        self._store = store
        self._path = store._domain_path(owner, domain_id)

    def missing(self) -> NotFoundError:
        """The error for this domain being gone."""
        return NotFoundError(f"domain {self.domain_id} of {self.owner} not found")

    def _leaf(self, name: str) -> tuple[Any, ZnodeStat]:
        store = self._store
        return store._read_required(f"{self._path}/{name}", store._fresh(self._path), self)

    # config ---------------------------------------------------------------
    def get_all_config(self) -> dict[str, dict[str, Any]]:
        """Every config section, as ``{section: dict}``."""
        store = self._store
        cached = store._fresh(self._path)
        return {
            s: store._read_required(f"{self._path}/{s}", cached, self)[0] for s in CONFIG_SECTIONS
        }

    def get_versioned_config(self, section: str) -> tuple[dict[str, Any], int]:
        """One section and its version (the znode version)."""
        check_section(section)
        value, stat = self._leaf(section)
        return value, stat.version

    def update_config(self, changes: dict[str, dict[str, Any]]) -> None:
        """Merge each given section's keys over the stored ones, in one transaction."""
        for section in changes:
            check_section(section)
        if not changes:
            return
        dump(changes)  # refuse what JSON cannot carry before touching anything
        store = self._store
        paths = {s: f"{self._path}/{s}" for s in changes}

        def op(zk: ZkCalls, retried: bool) -> list[ZnodeStat]:
            for _ in range(MERGE_TRIES):
                txn = zk.transaction()
                for section, path in paths.items():
                    try:
                        raw, stat = zk.get(path)
                    except NoNodeError:
                        raise self.missing() from None
                    merged = load(raw)
                    merged.update(copy.deepcopy(changes[section]))
                    txn.set_data(path, dump(merged), version=stat.version)
                try:
                    return zk.commit(txn)
                except BadVersionError:
                    continue
                except NoNodeError:
                    raise self.missing() from None
            raise WriteConflictError(f"config of {self.domain_id} kept changing")

        stats = store._call(op)
        for path, stat in zip(paths.values(), stats, strict=True):
            store._cache_expect(path, stat)

    # removal --------------------------------------------------------------
    def is_removed(self) -> bool:
        """True once the domain is marked for removal (or no longer exists)."""
        store = self._store
        cached = store._fresh(self._path)
        if store._read(f"{self._path}/removed", cached) is not None:
            return True
        return store._read_or_server(self._path, cached) is None

    def mark_removed(self) -> None:
        """Create the ``removed`` marker (no error if already marked)."""
        store = self._store
        path = f"{self._path}/removed"

        def op(zk: ZkCalls, retried: bool) -> ZnodeStat | None:
            try:
                return zk.create(path, b"", include_data=True)[1]
            except NodeExistsError:
                return zk.exists(path)
            except NoNodeError:
                raise self.missing() from None

        store._cache_expect(path, store._call(op))

    # subscribers ----------------------------------------------------------
    def get_subscribers(self) -> list[tuple[str, str]]:
        """``[(subscriber_name, subscriber_op)]`` in the order they subscribed."""
        value, _ = self._leaf("subscribers")
        return [(name, op) for name, op in value]

    def add_subscriber(self, name: str, op: str) -> None:
        """Subscribe ``name`` (replacing its op if already subscribed)."""

        def change(subs: list) -> tuple[list | None, None]:
            if [name, op] in subs:
                return None, None
            if any(n == name for n, _ in subs):
                return [[n, op if n == name else o] for n, o in subs], None
            return [*subs, [name, op]], None

        self._store._merge(f"{self._path}/subscribers", change, self)

    def remove_subscriber(self, name: str) -> bool:
        """Unsubscribe ``name``; False if it was not subscribed."""

        def change(subs: list) -> tuple[list | None, bool]:
            kept = [s for s in subs if s[0] != name]
            return (kept, True) if len(kept) != len(subs) else (None, False)

        return self._store._merge(f"{self._path}/subscribers", change, self)

    # sensor data ----------------------------------------------------------
    def get_domain_sensor_data(self) -> dict[str, Any]:
        """Domain-wide sensor data (empty dict when none)."""
        return self._leaf("sensor_data")[0] or {}

    def set_domain_sensor_data(self, data: dict[str, Any]) -> None:
        """Replace the domain-wide sensor data (a plain replace: no version check)."""
        store = self._store
        path = f"{self._path}/sensor_data"
        raw = dump(data)

        def op(zk: ZkCalls, retried: bool) -> ZnodeStat:
            try:
                return zk.set(path, raw)
            except NoNodeError:
                raise self.missing() from None

        store._cache_expect(path, store._call(op))

    # instances ------------------------------------------------------------
    def _instance_path(self, instance_id: str) -> str:
        return f"{self._path}/instances/{quote_name(instance_id)}"

    def add_instance(self, instance: Instance) -> Instance:
        """Create the record and its index entry in one transaction.

        WriteConflictError if the id exists in any domain, NotFoundError if
        this domain is gone.  Returns the record at version 0.
        """
        store = self._store
        path = self._instance_path(instance.instance_id)
        index_path = store._index_path(instance.instance_id)
        token = uuid.uuid4().hex
        entry = dump({"owner": self.owner, "domain_id": self.domain_id, "token": token})
        record = dump(instance.to_dict())

        def op(zk: ZkCalls, retried: bool) -> ZnodeStat:
            txn = zk.transaction()
            txn.create(path, record)
            txn.create(index_path, entry)
            txn.set_data(index_path, entry, version=0)  # its stat carries the zxid
            try:
                return zk.commit(txn)[2]
            except NodeExistsError:
                if retried:  # our first try may have landed before the connection broke
                    stat = zk.own_creation(index_path, token)
                    if stat is not None:
                        return stat
                raise WriteConflictError(
                    f"instance {instance.instance_id} already exists"
                ) from None
            except NoNodeError:
                raise self.missing() from None

        store._cache_expect(path, store._call(op))
        return instance.replace(version=0)

    def update_instance(self, instance: Instance) -> Instance:
        """Set the record if its znode is still at ``instance.version``."""
        if instance.version is None or instance.version < 0:
            raise WriteConflictError(f"instance {instance.instance_id} was never read")
        store = self._store
        path = self._instance_path(instance.instance_id)
        record = dump(instance.to_dict())
        gone = f"instance {instance.instance_id} not found"

        def op(zk: ZkCalls, retried: bool) -> ZnodeStat:
            try:
                return zk.set(path, record, version=instance.version)
            except NoNodeError:
                raise NotFoundError(gone) from None
            except BadVersionError:
                if retried:  # our first try may have landed before the connection broke
                    try:
                        raw, stat = zk.get(path)
                    except NoNodeError:
                        raise NotFoundError(gone) from None
                    if raw == record and stat.version == instance.version + 1:
                        return stat
                raise WriteConflictError(
                    f"instance {instance.instance_id} changed since version {instance.version}"
                ) from None

        stat = store._call(op)
        store._cache_expect(path, stat)
        return instance.replace(version=stat.version)

    def get_instance(self, instance_id: str) -> Instance | None:
        """One record read from the server (never from the cache), or None."""
        got = self._store._server_read(self._instance_path(instance_id))
        if got is None:
            return None
        value, stat = got
        return Instance.from_dict(value, version=stat.version)

    def get_instances(self) -> list[Instance]:
        """Every record of the domain, sorted by instance id, from the cache."""
        store = self._store
        parent = f"{self._path}/instances"
        cached = store._fresh(parent)
        names = store._children(parent, cached)
        if names is None and cached:
            names = store._children(parent, False)
        if names is None:
            raise self.missing()
        out = []
        for name in names:
            got = store._read(f"{parent}/{name}", cached)
            if got is not None:
                out.append(Instance.from_dict(got[0], version=got[1].version))
        out.sort(key=lambda i: i.instance_id)
        return out

    def remove_instance(self, instance_id: str) -> None:
        """Delete the record and its index entry together (no error if gone)."""
        store = self._store
        path = self._instance_path(instance_id)
        index_path = store._index_path(instance_id)

        def op(zk: ZkCalls, retried: bool) -> None:
            txn = zk.transaction()
            txn.delete(path)
            txn.delete(index_path)
            try:
                zk.commit(txn)
            except NoNodeError:
                # Already gone (or, were its index entry lost, the record
                # goes on its own).
                with contextlib.suppress(NoNodeError):
                    zk.delete(path)

        store._call(op)
        store._cache_expect_absent(path)


def quote_name(name: str) -> str:
    """A znode name for an id: percent-quoted, never empty, ``.`` or ``..``."""
    if not isinstance(name, str) or not name:
        raise BadRequestError(f"invalid name {name!r}")
    quoted = quote(name, safe="")
    if quoted in (".", ".."):
        quoted = quoted.replace(".", "%2E")
    return quoted


def dump(value: Any) -> bytes:
    """JSON bytes of ``value``; BadRequestError if JSON cannot carry it."""
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    except (TypeError, ValueError) as exc:
        raise BadRequestError(f"value cannot be stored as JSON: {exc}") from exc


def load(raw: bytes | None) -> Any:
    """The value of JSON bytes (None for an empty znode)."""
    return json.loads(raw) if raw else None


def check_section(section: str) -> None:
    """BadRequestError unless ``section`` is a config section."""
    if section not in CONFIG_SECTIONS:
        raise BadRequestError(
            f"unknown config section {section!r}; expected one of {', '.join(CONFIG_SECTIONS)}"
        )
