"""The ZooKeeper store: epum's state shared by every worker, and its elections.

The layout under the base path is drawn in ``epum.store.zk_paths``.

Writes always go to the server, as compare-and-sets on znode versions:
``update_instance`` sets the record at ``instance.version`` (a lost race is
a ``WriteConflictError``, a missing record ``NotFoundError``); merges
(``update_config``, subscribers) read, change and set at the version read,
retrying lost races themselves; writes that span znodes are transactions
(``add_domain`` creates the whole domain, ``add_instance`` the record with
its index entry, ``remove_instance`` deletes both).  Each operation runs
under a ``KazooRetry``, and it and every kazoo call in it are bounded by
the session timeout (kazoo itself would wait for a reconnection forever).
A create retried after a connection loss may already have succeeded, so
the znodes it makes carry a random token and a retry that finds its own
token is a success; a compare-and-set retried the same way succeeds if the
znode holds our data at the next version.  When ZooKeeper cannot be
reached in time an operation raises ``StoreUnavailableError``; a write's
outcome is then unknown (it may still be applied once the connection comes
back), so the caller re-reads before trying again, as after a conflict.

Reads.  ``/domains`` is mirrored by kazoo's ``TreeCache``, kept fresh by
watches, so ``get_all_domains``, ``get_domain`` (a miss is checked on the
server), the config, subscribers, sensor data, removal mark and
``get_instances`` cost no reads on the server (a decider pass re-reads
nothing that did not change).  The index, definitions,
``list_domains_by_owner`` (an RPC answer: one read, so every worker lists
a domain as soon as any worker added it) and ``get_instance`` read the
server: ``get_instance``
is what a writer re-reads after a ``WriteConflictError``, so it always sees
the version that won (``get_instance_cached`` is the cached read a
heartbeat judges on).  ``get_domain_for_instance_id`` finds a record the
cache holds with no read (``epum.store.zk_index``), any other with one
read of its index entry.

Read-your-writes.  A store object's reads reflect every write it has
completed (or something newer): each write records the znodes it touched
and the transaction id it got, and a cached read first waits until the
cache shows those writes (normally a round trip; after ``LAG_TIMEOUT`` it
reads the server instead).  Writes by other workers show up in the cache
after their watch fires, typically within milliseconds; nothing is ever
read older than a version this store object wrote or already returned
from the server.  A stale cached version only makes a compare-and-set
fail with ``WriteConflictError``, and the re-read through ``get_instance``
sees the winner.

Change listeners get ``(owner, domain_id)`` after any change to a domain's
znodes, by any worker (they come from the cache's watches), once the cache
shows the change, on the cache's thread: they must not block, nor read the
store (a read waiting for the cache would wait on its own thread).

ACLs: see ``epum.store.zk_session``.  Elections: see
``epum.store.zk_elections``; ``shutdown`` deposes this store's leaders
and gives up their seats at once, so a contender in another process is
elected within milliseconds, not after a session timeout.  The decider's
shares, when there are several: see ``epum.store.zk_partitions``.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError
from kazoo.protocol.states import ZnodeStat
from kazoo.security import OPEN_ACL_UNSAFE

from epum.errors import StoreUnavailableError, WriteConflictError
from epum.settings import ZooKeeperSettings
from epum.store import zk_removal
from epum.store.base import (
    CONFIG_SECTIONS,
    ChangeListener,
    DomainStore,
    EPUMStore,
    Leader,
    notify_listeners,
)
from epum.store.codec import dump, field
from epum.store.zk_access import ZkAccess
from epum.store.zk_cache import ABSENT, SubtreeCache
from epum.store.zk_definitions import ZkDefinitions
from epum.store.zk_domain import DOMAIN_LEAVES, ZooKeeperDomainStore
from epum.store.zk_elections import ROLES, ElectionBoard
from epum.store.zk_index import InstanceDomains
from epum.store.zk_partitions import ShareContender
from epum.store.zk_paths import ZkPaths, unquote_name
from epum.store.zk_session import ZkCalls, ZkSession

__all__ = ["ZooKeeperDomainStore", "ZooKeeperEPUMStore"]

log = logging.getLogger(__name__)


#: How long ``shutdown`` waits for leaders to return from ``inaugurate``
#: after ``depose()`` before it closes the session anyway.
SHUTDOWN_JOIN = 2.0
#: Domain handles kept for reuse (``_domain``); past it the kept ones are dropped.
KEPT_HANDLES = 100_000


class ZooKeeperEPUMStore(EPUMStore):
    """The store every worker shares, in ZooKeeper under ``settings.path``.

    ``settings`` (``server.zookeeper``) gives the ensemble: ``hosts`` a
    kazoo connection string (``"h1:2181,h2:2181"``, optionally with a
    chroot), ``timeout`` the session timeout in seconds (also the bound on
    how long one operation retries through a connection loss),
    ``username`` / ``password`` a digest identity that alone may touch the
    store's znodes; ``worker_name`` is the name this worker shows in
    elections (its identifier is ``"<worker_name>@<host>:<pid>"``).
    ConfigError if there are no hosts or a username has no password.

    Nothing connects until ``initialize()``; ``shutdown()`` leaves the
    elections at once and closes the session, after which every operation
    raises ``StoreUnavailableError``.  See the module docstring for the
    layout, the caching and the read-your-writes guarantee.
    """

    def __init__(self, settings: ZooKeeperSettings, worker_name: str | None = None):
        self._paths = ZkPaths(settings.path)
        self._session = ZkSession(settings)
        self._access = ZkAccess(self._session, self._paths.base)
        # the definitions have a cache of their own (they live outside the domains' tree)
        self._definitions_access = ZkAccess(self._session, self._paths.base)
        self._definitions = ZkDefinitions(self._definitions_access, self._paths)
        self.identifier = f"{worker_name or 'epum'}@{socket.gethostname()}:{os.getpid()}"
        self._board: ElectionBoard | None = None
        self._shares: ShareContender | None = None
        self._listeners: list[ChangeListener] = []
        # instance id -> (owner, domain_id), fed by the cache and index reads
        self._instance_domains = InstanceDomains(self._paths)
        self._handles: dict[tuple[str, str], ZooKeeperDomainStore] = {}

    @property
    def base_path(self) -> str:
        """Where the store lives (``"/"`` for the root)."""
        return self._paths.base

    @property
    def kazoo_client(self) -> KazooClient:
        """The underlying kazoo client (for tests and diagnostics only)."""
        return self._session.client

    def _domain(self, owner: str, domain_id: str) -> ZooKeeperDomainStore:
        """The handle on a domain: stateless, so one is kept per domain and handed out
        again (a heartbeat looks its domain up on every beat)."""
        key = (owner, domain_id)
        handle = self._handles.get(key)
        if handle is None:
            if len(self._handles) >= KEPT_HANDLES:
                self._handles.clear()  # domains gone long ago: start again
            handle = self._handles[key] = ZooKeeperDomainStore(
                self._access, self._paths, owner, domain_id
            )
        return handle

    # lifecycle ----------------------------------------------------------------
    def initialize(self) -> None:
        """Connect, create the layout, fill the cache and follow the session.

        Raises StoreUnavailableError if the store was shut down, or (and
        leaves the store shut down) if ZooKeeper does not answer within the
        session timeout or refuses these credentials.
        """
        if not self._session.start():
            return
        try:
            self._access.call(self._ensure_layout)
            cache = SubtreeCache(
                self._session.client, self._paths.domains, group=self._paths.domain_of
            )
            cache.listen(self._on_cache_change)
            cache.listen(self._follow_record)
            self._access.attach_cache(cache)
            if not cache.start(self._session.timeout):
                log.warning("the domain cache is still loading; reading from the server meanwhile")
            definitions = SubtreeCache(self._session.client, self._paths.definitions)
            self._definitions_access.attach_cache(definitions)
            definitions.start(self._session.timeout)
            board = ElectionBoard(self._session.client, self._paths.elections, self.identifier)
            board.start()
            self._board = board
        except BaseException:
            self.shutdown()
            raise
        log.info("ZooKeeper store ready at %s as %s", self.base_path, self.identifier)

    def _ensure_layout(self, zk: ZkCalls, retried: bool) -> None:
        paths = self._paths
        if paths.parent != "/":
            zk.ensure_path(paths.parent, acl=OPEN_ACL_UNSAFE)
        for path in (
            paths.base,
            paths.definitions,
            paths.domains,
            paths.index,
            paths.history,
            paths.elections,
            *(f"{paths.elections}/{role}" for role in ROLES),
        ):
            zk.ensure_path(path)
        # Fail here, loudly, if these credentials may not read the store.
        zk.get_children(paths.domains)

    def shutdown(self) -> None:
        """Depose this store's leaders, give up their seats, close the session."""
        if not self._session.mark_closed():
            return
        if self._board is not None:
            self._board.shutdown(SHUTDOWN_JOIN)
        for access in (self._access, self._definitions_access):
            if access.cache is not None:
                access.cache.close()
        self._session.stop()
        log.info("ZooKeeper store %s closed", self.identifier)

    def _on_cache_change(self, path: str) -> None:
        """Tell the change listeners which domain a cache event belongs to."""
        cache = self._access.cache
        if cache is None or not cache.initialized or not self._listeners:
            return
        key = self._paths.domain_of(path)
        if key is not None:
            notify_listeners(self._listeners, *key)

    def _follow_record(self, path: str) -> None:
        """Keep the instance-to-domain map in step with the records the cache holds."""
        cache = self._access.cache
        if cache is not None:
            self._instance_domains.follow(path, cache.lookup(path)[0] != ABSENT)

    # definitions ----------------------------------------------------------------
    def add_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Create a definition; WriteConflictError if the id exists."""
        self._definitions.add(definition_id, definition)

    def get_domain_definition(self, definition_id: str) -> dict[str, Any] | None:
        """A definition read from the server, or None."""
        return self._definitions.get(definition_id)

    def update_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Replace a definition; NotFoundError if it does not exist."""
        self._definitions.update(definition_id, definition)

    def remove_domain_definition(self, definition_id: str) -> None:
        """Delete a definition; NotFoundError if it does not exist."""
        self._definitions.remove(definition_id)

    def list_domain_definitions(self) -> list[str]:
        """Every definition id, sorted."""
        return self._definitions.ids()

    # domains --------------------------------------------------------------------
    def add_domain(self, owner: str, domain_id: str, config: dict[str, Any]) -> DomainStore:
        """Create the domain with all its znodes in one transaction."""
        owner_path = self._paths.owner(owner)
        path = self._paths.domain(owner, domain_id)
        token = uuid.uuid4().hex
        identity = dump({"owner": owner, "domain_id": domain_id, "token": token}, "domain")
        leaves = {s: dump(config.get(s) or {}, "config") for s in CONFIG_SECTIONS}
        leaves["subscribers"] = dump([])
        leaves["sensor_data"] = dump({})

        def op(zk: ZkCalls, retried: bool) -> ZnodeStat:
            for _ in range(2):
                txn = zk.transaction()
                txn.create(path, identity)
                for name, raw in leaves.items():
                    txn.create(f"{path}/{name}", raw)
                txn.create(f"{path}/instances", b"")
                txn.set_data(path, identity, version=0)  # its stat carries the zxid
                try:
                    return zk.commit(txn)[-1]
                except NodeExistsError:
                    return zk.claim(path, token, retried, f"domain {domain_id} of {owner}")
                except NoNodeError:
                    zk.ensure_path(owner_path)  # the owner's first domain
            raise WriteConflictError(f"owner {owner} keeps disappearing")

        stat = self._access.call(op)
        for node in (path, *(f"{path}/{n}" for n in (*DOMAIN_LEAVES, "instances"))):
            self._access.expect_present(node, stat)
        return self._domain(owner, domain_id)

    def get_domain(self, owner: str, domain_id: str) -> DomainStore | None:
        """A handle on the domain (removal-marked ones included), or None."""
        path = self._paths.domain(owner, domain_id)
        if self._access.read_or_server(path, self._access.fresh(path)) is None:
            return None
        return self._domain(owner, domain_id)

    def list_domains_by_owner(self, owner: str) -> list[str]:
        """The ids of ``owner``'s domains, sorted: one read on the server.

        An RPC answer, so it reads the server rather than the cache: a
        domain added through any worker is listed by every worker at once.
        """
        names = self._access.children(self._paths.owner(owner), False) or []
        return sorted(unquote_name(n) for n in names)

    def count_domains_by_owner(self, owner: str) -> int:
        """How many domains ``owner`` has, from the loaded cache as it is now (no wait for
        this store's own latest writes, no round trip); from the server until it loads.

        A limit checked so lets a caller adding domains back to back through one
        worker past it by the few domains added while the cache lags (milliseconds).
        """
        cache = self._access.cache
        cached = cache is not None and cache.initialized
        return len(self._access.children(self._paths.owner(owner), cached) or [])

    def get_all_domains(self) -> list[DomainStore]:
        """Every domain of every owner, sorted by ``(owner, domain_id)`` (from the cache)."""
        access = self._access
        root = self._paths.domains
        cached = access.fresh(root)
        out: list[DomainStore] = []
        for owner in access.children(root, cached) or []:
            for name in access.children(f"{root}/{owner}", cached) or []:
                if access.visible(f"{root}/{owner}/{name}", cached):
                    out.append(self._domain(unquote_name(owner), unquote_name(name)))
        out.sort(key=lambda domain: domain.key)  # by id, not by quoted name
        return out

    def remove_domain(self, owner: str, domain_id: str) -> None:
        """Delete the domain, its records, their index entries and its decision log (no
        error if gone; see ``zk_removal.remove_domain``)."""
        zk_removal.remove_domain(self._access, self._paths, owner, domain_id)

    def get_domain_for_instance_id(self, instance_id: str) -> DomainStore | None:
        """The domain holding an instance: from the cache, or one read of its index entry.

        A record the cache holds (once the cache shows this store's own
        writes to its domain, so a removed record or domain is not found)
        costs no read at all: heartbeats find their domain so.  Only an
        instance the cache does not show is looked up on the server.
        """
        known = self._instance_domains.get(instance_id)
        if known is not None:
            domain = self._domain(*known)
            if self._access.fresh(domain.path) and self._access.cached_present(
                domain.instance_path(instance_id)
            ):
                return domain
        path = self._paths.index_entry(instance_id)
        got = self._access.server_read(path)
        if got is None:
            self._instance_domains.forget(instance_id)
            return None
        key = (field(got[0], "owner", path), field(got[0], "domain_id", path))
        self._instance_domains.learn(instance_id, key)
        return self._domain(*key)

    # change notification -----------------------------------------------------------
    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(owner, domain_id)`` after any change to a domain, by anyone.

        It runs on the cache's thread once the cache shows the change; it
        must not block nor read the store (note the domain, wake a loop).
        """
        self._listeners.append(listener)

    # elections ---------------------------------------------------------------------
    def _contend(self, role: str, leader: Leader) -> None:
        self._open_board().contend(role, leader)

    def contend_decider_shares(self, leaders: Sequence[Leader], settle: float = 2.0) -> None:
        """Enter ``leaders`` for the decider's shares, balanced over the workers by kazoo's
        ``SetPartitioner`` (``epum.store.zk_partitions``); each share's writes are fenced
        by its lock znode as the single decider's are by its election seat."""
        board = self._open_board()
        self._shares = ShareContender(board, "decider", leaders, settle)
        board.add_shares(self._shares)

    def decider_shares_held(self) -> list[str]:
        """The names of the decider shares this store's leaders hold now (none: [])"""
        return [] if self._shares is None else self._shares.held()

    def _open_board(self) -> ElectionBoard:
        if self._session.closed:
            raise StoreUnavailableError("the store is shut down")
        if self._board is None:
            raise StoreUnavailableError("the store is not initialized")
        return self._board

    def is_leading(self, role: str) -> bool:
        """True while one of this store's leaders of ``role`` is in office."""
        return self._board is not None and self._board.leading(role)

    def election_contenders(self, role: str) -> list[str]:
        """Identifiers of every worker queued in ``role``'s election, leader first."""
        if self._board is None:
            raise StoreUnavailableError("the store is not initialized")
        board = self._board
        return self._access.call(lambda zk, retried: board.contenders(role))
