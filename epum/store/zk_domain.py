"""One domain of the ZooKeeper store.

A ``ZooKeeperDomainStore`` is a handle: it holds no state of its own and
reads and writes through a ``ZkAccess`` (the session, the cache and the
codec) at the paths ``ZkPaths`` gives; ``epum.store.zookeeper`` documents
the layout, the caching and the guarantees.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import uuid
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.protocol.states import ZnodeStat

from epum.errors import (
    BadRequestError,
    CorruptDataError,
    NotFoundError,
    NotLeaderError,
    WriteConflictError,
)
from epum.instances import Instance
from epum.store import zk_history
from epum.store.base import CONFIG_SECTIONS, DomainStore, check_section
from epum.store.codec import dump, load
from epum.store.zk_access import MERGE_TRIES, ZkAccess, fence_name, term_seat
from epum.store.zk_paths import ZkPaths
from epum.store.zk_session import ZkCalls
from epum.term import Term

#: The znodes every domain has under its own, besides ``instances``.
DOMAIN_LEAVES = (*CONFIG_SECTIONS, "subscribers", "sensor_data")

T = TypeVar("T")


@functools.lru_cache(maxsize=64)
def _section_decoder(decode: Callable[[Any], T]) -> Callable[[Any, ZnodeStat, str], T]:
    """``decode`` in the shape ``ZkAccess.read_decoded`` takes, the same object for the
    same ``decode`` (so what it decoded is kept)."""
    return lambda value, stat, path: decode(value)


class ZooKeeperDomainStore(DomainStore):
    """A handle on one domain of a ``ZooKeeperEPUMStore``.

    Getters read the store's watch-fed cache (showing this store's own
    writes) except ``get_instance``, which reads the server.  Once the
    domain is gone they raise ``NotFoundError``, except ``is_removed``
    (then True) and ``get_instance`` (then None).
    """

    def __init__(self, access: ZkAccess, paths: ZkPaths, owner: str, domain_id: str):
        super().__init__(owner, domain_id)
        self._access = access
        self._paths = paths
        self._path = paths.domain(owner, domain_id)

    @property
    def path(self) -> str:
        """The domain's own znode."""
        return self._path

    def missing(self) -> NotFoundError:
        """The error for this domain being gone."""
        return NotFoundError(f"domain {self.domain_id} of {self.owner} not found")

    def _leaf(self, name: str) -> tuple[Any, ZnodeStat]:
        access = self._access
        return access.read_required(f"{self._path}/{name}", access.fresh(self._path), self.missing)

    # config ---------------------------------------------------------------
    def get_all_config(self) -> dict[str, dict[str, Any]]:
        """Every config section, as ``{section: dict}``."""
        access = self._access
        cached = access.fresh(self._path)
        return {
            s: access.read_required(f"{self._path}/{s}", cached, self.missing)[0]
            for s in CONFIG_SECTIONS
        }

    def get_versioned_config(self, section: str) -> tuple[dict[str, Any], int]:
        """One section and its version (the znode version)."""
        check_section(section)
        value, stat = self._leaf(section)
        return value, stat.version

    def get_config_as(self, section: str, decode: Callable[[dict[str, Any]], T]) -> T:
        """``decode`` of one section, kept from the cached znode until it changes."""
        check_section(section)
        access = self._access
        path = f"{self._path}/{section}"
        value = access.read_decoded(
            path, access.fresh(self._path), _section_decoder(decode), or_server=True
        )
        if value is None:
            raise self.missing()
        return value

    def update_config(self, changes: dict[str, dict[str, Any]]) -> None:
        """Merge each given section's keys over the stored ones, in one transaction."""
        for section in changes:
            check_section(section)
        if not changes:
            return
        dump(changes, "config")  # refuse what JSON cannot carry before touching anything
        access = self._access
        paths = {s: f"{self._path}/{s}" for s in changes}

        def op(zk: ZkCalls, retried: bool) -> list[ZnodeStat]:
            for _ in range(MERGE_TRIES):
                txn = zk.transaction()
                for section, path in paths.items():
                    try:
                        raw, stat = zk.get(path)
                    except NoNodeError:
                        raise self.missing() from None
                    merged = load(raw, path)
                    merged.update(copy.deepcopy(changes[section]))
                    txn.set_data(path, dump(merged), version=stat.version)
                try:
                    return zk.commit(txn)
                except BadVersionError:
                    continue
                except NoNodeError:
                    raise self.missing() from None
            raise WriteConflictError(f"config of {self.domain_id} kept changing")

        stats = access.call(op)
        for path, stat in zip(paths.values(), stats, strict=True):
            access.expect_present(path, stat)

    # removal --------------------------------------------------------------
    def is_removed(self) -> bool:
        """True once the domain is marked for removal (or no longer exists)."""
        access = self._access
        cached = access.fresh(self._path)
        if access.read(f"{self._path}/removed", cached) is not None:
            return True
        return access.read_or_server(self._path, cached) is None

    def mark_removed(self) -> None:
        """Create the ``removed`` marker (no error if already marked)."""
        access = self._access
        path = f"{self._path}/removed"

        def op(zk: ZkCalls, retried: bool) -> ZnodeStat | None:
            try:
                return zk.create(path, b"", include_data=True)[1]
            except NodeExistsError:
                return zk.exists(path)
            except NoNodeError:
                raise self.missing() from None

        access.expect_present(path, access.call(op))

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

        self._access.merge(f"{self._path}/subscribers", change, self.missing)

    def remove_subscriber(self, name: str) -> bool:
        """Unsubscribe ``name``; False if it was not subscribed."""

        def change(subs: list) -> tuple[list | None, bool]:
            kept = [s for s in subs if s[0] != name]
            return (kept, True) if len(kept) != len(subs) else (None, False)

        return self._access.merge(f"{self._path}/subscribers", change, self.missing)

    # sensor data ----------------------------------------------------------
    def get_domain_sensor_data(self) -> dict[str, Any]:
        """Domain-wide sensor data (empty dict when none)."""
        return self._leaf("sensor_data")[0] or {}

    def set_domain_sensor_data(self, data: dict[str, Any]) -> None:
        """Replace the domain-wide sensor data (a plain replace: no version check)."""
        access = self._access
        path = f"{self._path}/sensor_data"
        raw = dump(data, "sensor data")

        def op(zk: ZkCalls, retried: bool) -> ZnodeStat:
            try:
                return zk.set(path, raw)
            except NoNodeError:
                raise self.missing() from None

        access.expect_present(path, access.call(op))

    # decision log ---------------------------------------------------------
    def append_history(
        self,
        entries: list[dict[str, Any]],
        max_entries: int,
        max_age: float,
        now: float,
        term: Term | None = None,
    ) -> None:
        """One read and one compare-and-set of the domain's capped log znode (in a
        transaction with a check of the term's election seat when fenced)."""
        path = self._paths.history_of(self.owner, self.domain_id)
        limits = (max_entries, max_age, now)
        fence = (term_seat(term), term)
        zk_history.append(self._access, path, self._path, entries, limits, self.missing, fence)

    def get_history(self) -> list[dict[str, Any]]:
        """The domain's decision log, read from the server."""
        return zk_history.read(self._access, self._paths.history_of(self.owner, self.domain_id))

    # change stamps --------------------------------------------------------
    def change_stamp(self) -> Hashable | None:
        """The watch-fed cache's stamp of this domain's znodes (``SubtreeCache``), once
        it shows this store's writes to them; None while reads go to the server."""
        return self._access.change_stamp(self._path, self.key)

    # instances ------------------------------------------------------------
    def instance_path(self, instance_id: str) -> str:
        """The znode of one of this domain's records."""
        return self._paths.instance(self._path, instance_id)

    def confirm_term(self, term: Term) -> None:
        """Return if ``term``'s election seat exists on the server, else NotLeaderError."""
        seat = term_seat(term)
        if seat is None:
            return
        if self._access.call(lambda zk, retried: zk.exists(seat)) is None:
            raise NotLeaderError(f"{term!r} is out of office: its election seat is gone")

    def add_instance(self, instance: Instance, term: Term | None = None) -> Instance:
        """Create the record and its index entry in one transaction.

        WriteConflictError if the id exists in any domain, NotFoundError if
        this domain is gone.  With ``term``, the transaction also checks the
        term's election seat: NotLeaderError (nothing created) if it is gone.
        Returns the record at version 0.
        """
        seat = term_seat(term)
        access = self._access
        path = self.instance_path(instance.instance_id)
        index_path = self._paths.index_entry(instance.instance_id)
        token = uuid.uuid4().hex
        entry = dump({"owner": self.owner, "domain_id": self.domain_id, "token": token})
        record = dump(instance.to_dict(), f"instance {instance.instance_id}")

        def op(zk: ZkCalls, retried: bool) -> ZnodeStat:
            txn = zk.transaction()
            if seat is not None:
                txn.check(seat, -1)  # any version: the seat need only exist
            txn.create(path, record)
            txn.create(index_path, entry)
            txn.set_data(index_path, entry, version=0)  # its stat carries the zxid
            try:
                return zk.commit(txn, fence=fence_name(term, seat))[-1]
            except NodeExistsError:  # ours if our first try landed before the connection broke
                return zk.claim(index_path, token, retried, f"instance {instance.instance_id}")
            except NoNodeError:
                raise self.missing() from None

        access.expect_present(path, access.call(op))
        return instance.replace(version=0)

    def update_instance(self, instance: Instance, term: Term | None = None) -> Instance:
        """Set the record if its znode is still at ``instance.version``.

        With ``term``, a transaction that also checks the term's election
        seat: NotLeaderError (nothing written) if it is gone.
        """
        if instance.version is None or instance.version < 0:
            raise WriteConflictError(f"instance {instance.instance_id} was never read")
        seat = term_seat(term)
        access = self._access
        path = self.instance_path(instance.instance_id)
        record = dump(instance.to_dict(), f"instance {instance.instance_id}")
        gone = f"instance {instance.instance_id} not found"

        def op(zk: ZkCalls, retried: bool) -> ZnodeStat:
            try:
                if seat is None:
                    return zk.set(path, record, version=instance.version)
                txn = zk.transaction()
                txn.check(seat, -1)
                txn.set_data(path, record, version=instance.version)
                return zk.commit(txn, fence=fence_name(term, seat))[1]
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

        stat = access.call(op)
        access.expect_present(path, stat)
        return instance.replace(version=stat.version)

    def get_instance(self, instance_id: str) -> Instance | None:
        """One record read from the server (never from the cache), or None."""
        path = self.instance_path(instance_id)
        return self._access.read_decoded(path, False, decode_instance)

    def get_instance_cached(self, instance_id: str) -> Instance | None:
        """One record from the cache once it shows this store's writes to it, or None.

        The server is read when the cache lags this store's own writes or
        does not hold the record; another worker's write may show up a
        watch's delivery late (see ``DomainStore.get_instance_cached``).
        """
        path = self.instance_path(instance_id)
        access = self._access
        return access.read_decoded(path, access.fresh(path), decode_instance, or_server=True)

    def get_instances(self) -> list[Instance]:
        """Every record of the domain, sorted by instance id, from the cache."""
        access = self._access
        parent = f"{self._path}/instances"
        cached = access.fresh(parent)
        names = access.children(parent, cached)
        if names is None and cached:
            names = access.children(parent, False)
        if names is None:
            raise self.missing()
        out = []
        for name in names:
            path = f"{parent}/{name}"
            record = access.read_decoded(path, cached, decode_instance)
            if record is not None:
                out.append(record)
        out.sort(key=lambda i: i.instance_id)
        return out

    def remove_instance(self, instance_id: str) -> None:
        """Delete the record and its index entry together (no error if gone)."""
        access = self._access
        path = self.instance_path(instance_id)
        index_path = self._paths.index_entry(instance_id)

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

        access.call(op)
        access.expect_absent(path)


def decode_instance(value: Any, stat: ZnodeStat, path: str) -> Instance:
    """The record stored at ``path`` (at ``stat``'s version); CorruptDataError naming it
    if it is not a record."""
    version = stat.version
    if not isinstance(value, dict):
        raise CorruptDataError(f"{path} holds no instance record: {value!r:.200}")
    try:
        return Instance.from_dict(value, version=version)
    except (BadRequestError, TypeError, ValueError) as exc:
        raise CorruptDataError(f"{path} holds no valid instance record: {exc}") from exc
