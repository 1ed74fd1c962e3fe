"""The ZooKeeper store: epum's state shared by every worker, and its elections.

Layout under the base path (names percent-quoted, values JSON)::

    /definitions/<definition_id>      {"definition": {...}, "token": ...}
    /domains/<owner>/<domain_id>      {"owner", "domain_id", "token"}
        /general /engine_conf /health one config section each; the znode
                                      version is the section's version
        /removed                      exists once the domain is marked
        /subscribers                  [[name, op], ...]
        /sensor_data                  {...}
        /instances/<instance_id>      the record; the znode version is
                                      ``Instance.version``
    /index/<instance_id>              {"owner", "domain_id", "token"}
    /elections/decider|doctor|reaper  kazoo Election recipes

Writes always go to the server, as compare-and-sets on znode versions:
``update_instance`` sets the record at ``instance.version`` (a lost race is
a ``WriteConflictError``, a missing record ``NotFoundError``); merges
(``update_config``, subscribers) read, change and set at the version read,
retrying lost races themselves; writes that span znodes are transactions
(``add_domain`` creates the whole domain, ``add_instance`` the record with
its index entry, ``remove_instance`` deletes both).  Each operation runs
under a ``KazooRetry`` bounded by the session timeout; a create retried
after a connection loss may already have succeeded, so the znodes it makes
carry a random token and a retry that finds its own token is a success,
and a compare-and-set retried the same way succeeds if the znode holds our
data at the next version.  When ZooKeeper cannot be reached in time an
operation raises ``StoreUnavailableError``.

Reads.  ``/domains`` is mirrored by kazoo's ``TreeCache``, kept fresh by
watches, so ``get_all_domains``, ``list_domains_by_owner``, the config,
subscribers, sensor data, removal mark and ``get_instances`` cost no reads
on the server (a decider pass re-reads nothing that did not change).  The
index, definitions and ``get_instance`` read the server: ``get_instance``
is what a writer re-reads after a ``WriteConflictError``, so it always sees
the version that won; ``get_domain_for_instance_id`` costs one read however
many domains there are.

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
znodes, by any worker (they come from the cache's watches), on the cache's
thread: they must not block.

ACLs.  With ``username`` and ``password``, the client authenticates with
that digest and creates every znode (the base path, the layout, domains,
records, election seats) with an ACL that grants everything to that
identity alone; a client without the credentials can neither read, write,
create nor delete anything under the base path.  Missing parents of the
base path are created open.

Elections: see ``epum.store.zk_elections``; ``shutdown`` deposes this
store's leaders and gives up their seats at once, so a contender in
another process is elected within milliseconds, not after a session
timeout.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import posixpath
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import ZnodeStat
from kazoo.retry import KazooRetry, RetryFailedError
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl

from epum.errors import BadRequestError, EpumError, NotFoundError, WriteConflictError
from epum.instances import Instance
from epum.store.base import CONFIG_SECTIONS, ChangeListener, DomainStore, EPUMStore, Leader
from epum.store.zk_cache import ABSENT, LOADED, SubtreeCache
from epum.store.zk_elections import ROLES, ElectionBoard

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How often a merge (read, change, compare-and-set) is retried after
#: losing a race before it gives up with WriteConflictError; more than a
#: handful of lost races in a row means a writer storm worth reporting.
MERGE_TRIES = 20

#: How many znodes one removal transaction deletes; keeps each request far
#: below ZooKeeper's 1 MB packet limit.
DELETE_BATCH = 100

#: How long ``shutdown`` waits for leaders to return from ``inaugurate``
#: after ``depose()`` before it closes the session anyway.
SHUTDOWN_JOIN = 2.0

_DOMAIN_LEAVES = (*CONFIG_SECTIONS, "subscribers", "sensor_data")


class StoreUnavailableError(EpumError):
    """ZooKeeper did not answer within the session timeout, refused us, or
    the store is not running; nothing is known to have changed."""


class ZooKeeperDomainStore(DomainStore):
    """A handle on one domain in a ``ZooKeeperEPUMStore``.

    Getters read the store's cache (see the module docstring) and raise
    ``NotFoundError`` once the domain is gone, except ``is_removed``, which
    then says True, and ``get_instance``, which then says None.
    """

    def __init__(self, store: ZooKeeperEPUMStore, owner: str, domain_id: str):
        super().__init__(owner, domain_id)
        self._store = store
        self._path = store._domain_path(owner, domain_id)

    def _missing(self) -> NotFoundError:
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
        _check_section(section)
        value, stat = self._leaf(section)
        return value, stat.version

    def update_config(self, changes: dict[str, dict[str, Any]]) -> None:
        """Merge each given section's keys over the stored ones, in one transaction."""
        for section in changes:
            _check_section(section)
        if not changes:
            return
        _dump(changes)  # refuse what JSON cannot carry before touching anything
        store = self._store
        client = store._client
        paths = {s: f"{self._path}/{s}" for s in changes}

        def op(retried: bool) -> list[ZnodeStat]:
            for _ in range(MERGE_TRIES):
                txn = client.transaction()
                for section, path in paths.items():
                    try:
                        raw, stat = client.get(path)
                    except NoNodeError:
                        raise self._missing() from None
                    merged = _load(raw)
                    merged.update(copy.deepcopy(changes[section]))
                    txn.set_data(path, _dump(merged), version=stat.version)
                try:
                    return store._commit(txn)
                except BadVersionError:
                    continue
                except NoNodeError:
                    raise self._missing() from None
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
        client = store._client
        path = f"{self._path}/removed"

        def op(retried: bool) -> ZnodeStat | None:
            try:
                return client.create(path, b"", include_data=True)[1]
            except NodeExistsError:
                return client.exists(path)
            except NoNodeError:
                raise self._missing() from None

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
        client = store._client
        path = f"{self._path}/sensor_data"
        raw = _dump(data)

        def op(retried: bool) -> ZnodeStat:
            try:
                return client.set(path, raw)
            except NoNodeError:
                raise self._missing() from None

        store._cache_expect(path, store._call(op))

    # instances ------------------------------------------------------------
    def _instance_path(self, instance_id: str) -> str:
        return f"{self._path}/instances/{_quote(instance_id)}"

    def add_instance(self, instance: Instance) -> Instance:
        """Create the record and its index entry in one transaction.

        WriteConflictError if the id exists in any domain, NotFoundError if
        this domain is gone.  Returns the record at version 0.
        """
        store = self._store
        client = store._client
        path = self._instance_path(instance.instance_id)
        index_path = store._index_path(instance.instance_id)
        token = uuid.uuid4().hex
        entry = _dump({"owner": self.owner, "domain_id": self.domain_id, "token": token})
        record = _dump(instance.to_dict())

        def op(retried: bool) -> ZnodeStat:
            txn = client.transaction()
            txn.create(path, record)
            txn.create(index_path, entry)
            txn.set_data(index_path, entry, version=0)  # its stat carries the zxid
            try:
                return store._commit(txn)[2]
            except NodeExistsError:
                if retried:
                    stat = store._own_creation(index_path, token)
                    if stat is not None:
                        return stat
                raise WriteConflictError(
                    f"instance {instance.instance_id} already exists"
                ) from None
            except NoNodeError:
                raise self._missing() from None

        store._cache_expect(path, store._call(op))
        return instance.replace(version=0)

    def update_instance(self, instance: Instance) -> Instance:
        """Set the record if its znode is still at ``instance.version``."""
        if instance.version is None or instance.version < 0:
            raise WriteConflictError(f"instance {instance.instance_id} was never read")
        store = self._store
        client = store._client
        path = self._instance_path(instance.instance_id)
        record = _dump(instance.to_dict())

        def op(retried: bool) -> ZnodeStat:
            try:
                return client.set(path, record, version=instance.version)
            except NoNodeError:
                raise NotFoundError(f"instance {instance.instance_id} not found") from None
            except BadVersionError:
                if retried:  # our first try may have landed before the connection broke
                    try:
                        raw, stat = client.get(path)
                    except NoNodeError:
                        raise NotFoundError(f"instance {instance.instance_id} not found") from None
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
        """Every record of the domain, by instance id, from the cache."""
        store = self._store
        parent = f"{self._path}/instances"
        cached = store._fresh(parent)
        names = store._children(parent, cached)
        if names is None and cached:
            names = store._children(parent, False)
        if names is None:
            raise self._missing()
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
        client = store._client
        path = self._instance_path(instance_id)
        index_path = store._index_path(instance_id)

        def op(retried: bool) -> None:
            txn = client.transaction()
            txn.delete(path)
            txn.delete(index_path)
            try:
                store._commit(txn)
            except NoNodeError:
                # Already gone (or, if the index entry alone was lost, the
                # record goes on its own).
                with contextlib.suppress(NoNodeError):
                    client.delete(path)

        store._call(op)
        store._cache_expect_absent(path)


class ZooKeeperEPUMStore(EPUMStore):
    """The store every worker shares, in ZooKeeper under ``base_path``.

    ``hosts`` is a kazoo connection string (``"h1:2181,h2:2181"``, optionally
    with a chroot), ``timeout`` the session timeout in seconds (also the
    bound on how long one operation retries through a connection loss),
    ``username`` / ``password`` a digest identity that alone may touch the
    store's znodes, ``worker_name`` the name this worker shows in elections
    (its identifier is ``"<worker_name>@<host>:<pid>"``).

    Nothing connects until ``initialize()``; ``shutdown()`` leaves the
    elections at once and closes the session.  See the module docstring
    for the layout, the caching and the read-your-writes guarantee.
    """

    def __init__(
        self,
        hosts: str,
        base_path: str = "/epum",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        worker_name: str | None = None,
    ):
        if not hosts:
            raise BadRequestError("ZooKeeper hosts are required")
        if username and password is None:
            raise BadRequestError("a ZooKeeper username needs a password")
        base = "/" + base_path.strip("/")
        self._base = "" if base == "/" else base
        self._timeout = float(timeout)
        self.identifier = f"{worker_name or 'epum'}@{socket.gethostname()}:{os.getpid()}"
        self._acl = [make_digest_acl(username, password, all=True)] if username else None
        self._client = KazooClient(
            hosts=hosts,
            timeout=self._timeout,
            auth_data=[("digest", f"{username}:{password}")] if username else None,
            default_acl=self._acl,
            # Reconnect quickly after an outage: back off to 2 s at most.
            connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 2.0},
            # Used by kazoo's recipes (e.g. releasing an election seat).
            command_retry={
                "max_tries": -1,
                "delay": 0.05,
                "backoff": 2,
                "max_delay": 1.0,
                "deadline": self._timeout,
            },
        )
        self._retry = KazooRetry(
            max_tries=-1,
            delay=0.05,
            backoff=2,
            max_delay=1.0,
            deadline=self._timeout,
            interrupt=lambda: self._closed,
        )
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._cache: SubtreeCache | None = None
        self._board: ElectionBoard | None = None
        self._listeners: list[ChangeListener] = []

    # paths ------------------------------------------------------------------
    @property
    def base_path(self) -> str:
        """Where the store lives (``"/"`` for the root)."""
        return self._base or "/"

    @property
    def kazoo_client(self) -> KazooClient:
        """The underlying kazoo client (for tests and diagnostics only)."""
        return self._client

    def _domains_root(self) -> str:
        return f"{self._base}/domains"

    def _domain_path(self, owner: str, domain_id: str) -> str:
        return f"{self._base}/domains/{_quote(owner)}/{_quote(domain_id)}"

    def _definition_path(self, definition_id: str) -> str:
        return f"{self._base}/definitions/{_quote(definition_id)}"

    def _index_path(self, instance_id: str) -> str:
        return f"{self._base}/index/{_quote(instance_id)}"

    # lifecycle ----------------------------------------------------------------
    def initialize(self) -> None:
        """Connect, create the layout, fill the cache and follow the session.

        Raises StoreUnavailableError if ZooKeeper does not answer within
        the session timeout.
        """
        with self._lock:
            if self._closed:
                raise StoreUnavailableError("the store is shut down")
            if self._started:
                return
            try:
                self._client.start(timeout=self._timeout)
            except Exception as exc:
                self._client.stop()
                self._client.close()
                raise StoreUnavailableError(f"cannot reach ZooKeeper: {exc!r}") from exc
            self._started = True
        self._call(self._ensure_layout)
        cache = SubtreeCache(self._client, self._domains_root())
        cache.listen(self._on_cache_change)
        self._cache = cache
        if not cache.start(self._timeout):
            log.warning("the domain cache is still loading; reading from the server meanwhile")
        board = ElectionBoard(self._client, f"{self._base}/elections", self.identifier)
        board.start()
        self._board = board
        log.info("ZooKeeper store ready at %s as %s", self.base_path, self.identifier)

    def _ensure_layout(self, retried: bool) -> None:
        client = self._client
        parent = posixpath.dirname(self._base) if self._base else "/"
        if parent != "/":
            client.ensure_path(parent, acl=OPEN_ACL_UNSAFE)
        for path in (
            self._base or "/",
            f"{self._base}/definitions",
            f"{self._base}/domains",
            f"{self._base}/index",
            f"{self._base}/elections",
            *(f"{self._base}/elections/{role}" for role in ROLES),
        ):
            client.ensure_path(path)

    def shutdown(self) -> None:
        """Depose this store's leaders, give up their seats, close the session."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        if not started:
            return
        if self._board is not None:
            self._board.shutdown(SHUTDOWN_JOIN)
        if self._cache is not None:
            self._cache.close()
        try:
            self._client.stop()
        finally:
            self._client.close()
        log.info("ZooKeeper store %s closed", self.identifier)

    # plumbing -----------------------------------------------------------------
    def _call(self, op: Callable[[bool], T]) -> T:
        """Run ``op(retried)`` through connection losses, within the session timeout.

        ``retried`` tells ``op`` that an earlier attempt was cut off and may
        have succeeded.  kazoo failures become StoreUnavailableError; epum
        errors raised by ``op`` pass through.
        """
        if not self._started or self._closed:
            raise StoreUnavailableError(
                "the store is shut down" if self._closed else "the store is not initialized"
            )
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return op(attempts > 1)

        try:
            return self._retry.copy()(attempt)
        except NoAuthError as exc:
            raise StoreUnavailableError(
                f"ZooKeeper refused access to {self.base_path}: check the credentials"
            ) from exc
        except (RetryFailedError, InterruptedError) as exc:
            raise StoreUnavailableError(f"ZooKeeper unreachable: {exc}") from exc
        except KazooException as exc:
            raise StoreUnavailableError(f"ZooKeeper error: {exc!r}") from exc

    @staticmethod
    def _commit(txn) -> list:
        """Commit a kazoo transaction; raise the error of the op that failed."""
        results = txn.commit()
        for result in results:
            if isinstance(result, Exception) and not isinstance(
                result, (RolledBackError, RuntimeInconsistency)
            ):
                raise result
        return results

    def _own_creation(self, path: str, token: str) -> ZnodeStat | None:
        """The stat of ``path`` if it holds ``token`` (our own earlier create)."""
        try:
            raw, stat = self._client.get(path)
        except NoNodeError:
            return None
        value = _load(raw)
        if isinstance(value, dict) and value.get("token") == token:
            return stat
        return None

    def _fresh(self, prefix: str) -> bool:
        """True if the cache may serve reads under ``prefix`` (shows our writes)."""
        cache = self._cache
        return cache is not None and not self._closed and cache.caught_up(prefix)

    def _cache_expect(self, path: str, stat: ZnodeStat | None) -> None:
        if self._cache is not None and stat is not None:
            self._cache.expect_present(path, stat.mzxid)

    def _cache_expect_absent(self, path: str) -> None:
        if self._cache is not None:
            self._cache.expect_absent(path)

    def _server_read(self, path: str) -> tuple[Any, ZnodeStat] | None:
        """``(value, stat)`` of ``path`` from the server, or None."""

        def op(retried: bool) -> tuple[Any, ZnodeStat] | None:
            try:
                raw, stat = self._client.get(path)
            except NoNodeError:
                return None
            return _load(raw), stat

        return self._call(op)

    def _read(self, path: str, cached: bool) -> tuple[Any, ZnodeStat] | None:
        """``(value, stat)`` from the cache if ``cached`` (server if not yet loaded)."""
        if cached and self._cache is not None:
            state, data = self._cache.lookup(path)
            if state == LOADED:
                return _load(data.data), data.stat
            if state == ABSENT:
                return None
        return self._server_read(path)

    def _read_or_server(self, path: str, cached: bool) -> tuple[Any, ZnodeStat] | None:
        """Like ``_read``, but a znode the cache lacks is looked up on the server."""
        got = self._read(path, cached)
        if got is None and cached:
            got = self._server_read(path)
        return got

    def _read_required(
        self, path: str, cached: bool, domain: ZooKeeperDomainStore
    ) -> tuple[Any, ZnodeStat]:
        """A znode every live domain has; NotFoundError if the domain is gone."""
        got = self._read_or_server(path, cached)
        if got is None:
            raise domain._missing()
        return got

    def _children(self, path: str, cached: bool) -> list[str] | None:
        """Sorted child names of ``path``, or None if it does not exist."""
        if cached and self._cache is not None:
            names = self._cache.children(path)
            return sorted(names) if names is not None else None

        def op(retried: bool) -> list[str] | None:
            try:
                return sorted(self._client.get_children(path))
            except NoNodeError:
                return None

        return self._call(op)

    def _visible(self, path: str, cached: bool) -> bool:
        """Whether a listed domain is fully there (its node loaded in the cache)."""
        return not cached or self._cache is None or self._cache.lookup(path)[0] == LOADED

    def _merge(self, path: str, change: Callable[[Any], tuple[Any, T]], domain) -> T:
        """Read, ``change`` (-> new value or None, result), compare-and-set; retry races."""
        client = self._client

        def op(retried: bool) -> tuple[T, ZnodeStat | None]:
            for _ in range(MERGE_TRIES):
                try:
                    raw, stat = client.get(path)
                except NoNodeError:
                    raise domain._missing() from None
                new_value, result = change(_load(raw))
                if new_value is None:
                    return result, None
                try:
                    return result, client.set(path, _dump(new_value), version=stat.version)
                except BadVersionError:
                    continue
                except NoNodeError:
                    raise domain._missing() from None
            raise WriteConflictError(f"{path} kept changing")

        result, stat = self._call(op)
        self._cache_expect(path, stat)
        return result

    def _on_cache_change(self, path: str) -> None:
        """Tell the change listeners which domain a cache event belongs to."""
        cache = self._cache
        if cache is None or not cache.initialized or not self._listeners:
            return
        parts = path[len(self._domains_root()) + 1 :].split("/")
        if len(parts) < 2:
            return  # an owner's node
        owner, domain_id = unquote(parts[0]), unquote(parts[1])
        for listener in list(self._listeners):
            try:
                listener(owner, domain_id)
            except Exception:
                log.exception("change listener failed for %s/%s", owner, domain_id)

    # definitions ----------------------------------------------------------------
    def add_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Create a definition; WriteConflictError if the id exists."""
        path = self._definition_path(definition_id)
        token = uuid.uuid4().hex
        raw = _dump({"definition": definition, "token": token})

        def op(retried: bool) -> None:
            try:
                self._client.create(path, raw)
            except NodeExistsError:
                if retried and self._own_creation(path, token) is not None:
                    return
                raise WriteConflictError(f"definition {definition_id} already exists") from None

        self._call(op)

    def get_domain_definition(self, definition_id: str) -> dict[str, Any] | None:
        """A definition read from the server, or None."""
        got = self._server_read(self._definition_path(definition_id))
        return None if got is None else got[0]["definition"]

    def update_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Replace a definition; NotFoundError if it does not exist."""
        path = self._definition_path(definition_id)
        _dump(definition)
        client = self._client

        def op(retried: bool) -> None:
            for _ in range(MERGE_TRIES):
                try:
                    raw, stat = client.get(path)
                except NoNodeError:
                    raise NotFoundError(f"definition {definition_id} not found") from None
                value = _load(raw)
                value["definition"] = definition
                try:
                    client.set(path, _dump(value), version=stat.version)
                    return
                except BadVersionError:
                    continue
                except NoNodeError:
                    raise NotFoundError(f"definition {definition_id} not found") from None
            raise WriteConflictError(f"definition {definition_id} kept changing")

        self._call(op)

    def remove_domain_definition(self, definition_id: str) -> None:
        """Delete a definition; NotFoundError if it does not exist."""
        path = self._definition_path(definition_id)

        def op(retried: bool) -> None:
            try:
                self._client.delete(path)
            except NoNodeError:
                if retried:  # our first try may have deleted it
                    return
                raise NotFoundError(f"definition {definition_id} not found") from None

        self._call(op)

    def list_domain_definitions(self) -> list[str]:
        """Every definition id, sorted."""
        names = self._children(f"{self._base}/definitions", False) or []
        return sorted(unquote(n) for n in names)

    # domains --------------------------------------------------------------------
    def add_domain(self, owner: str, domain_id: str, config: dict[str, Any]) -> DomainStore:
        """Create the domain with all its znodes in one transaction."""
        client = self._client
        owner_path = f"{self._domains_root()}/{_quote(owner)}"
        path = self._domain_path(owner, domain_id)
        token = uuid.uuid4().hex
        identity = _dump({"owner": owner, "domain_id": domain_id, "token": token})
        leaves = {s: _dump(config.get(s) or {}) for s in CONFIG_SECTIONS}
        leaves["subscribers"] = _dump([])
        leaves["sensor_data"] = _dump({})

        def op(retried: bool) -> ZnodeStat:
            client.ensure_path(owner_path)
            txn = client.transaction()
            txn.create(path, identity)
            for name, raw in leaves.items():
                txn.create(f"{path}/{name}", raw)
            txn.create(f"{path}/instances", b"")
            txn.set_data(path, identity, version=0)  # its stat carries the zxid
            try:
                return self._commit(txn)[-1]
            except NodeExistsError:
                if retried:
                    stat = self._own_creation(path, token)
                    if stat is not None:
                        return stat
                raise WriteConflictError(f"domain {domain_id} of {owner} already exists") from None

        stat = self._call(op)
        for node in (path, *(f"{path}/{n}" for n in (*leaves, "instances"))):
            self._cache_expect(node, stat)
        return ZooKeeperDomainStore(self, owner, domain_id)

    def get_domain(self, owner: str, domain_id: str) -> DomainStore | None:
        """A handle on the domain (removal-marked ones included), or None."""
        path = self._domain_path(owner, domain_id)
        if self._read_or_server(path, self._fresh(path)) is None:
            return None
        return ZooKeeperDomainStore(self, owner, domain_id)

    def list_domains_by_owner(self, owner: str) -> list[str]:
        """The ids of ``owner``'s domains, sorted (from the cache)."""
        owner_path = f"{self._domains_root()}/{_quote(owner)}"
        cached = self._fresh(owner_path)
        names = self._children(owner_path, cached) or []
        return sorted(unquote(n) for n in names if self._visible(f"{owner_path}/{n}", cached))

    def get_all_domains(self) -> list[DomainStore]:
        """Every domain of every owner (from the cache)."""
        root = self._domains_root()
        cached = self._fresh(root)
        out: list[DomainStore] = []
        for owner in self._children(root, cached) or []:
            for name in self._children(f"{root}/{owner}", cached) or []:
                if self._visible(f"{root}/{owner}/{name}", cached):
                    out.append(ZooKeeperDomainStore(self, unquote(owner), unquote(name)))
        return out

    def remove_domain(self, owner: str, domain_id: str) -> None:
        """Delete the domain, its records and their index entries (no error if gone).

        Records go first, with their index entries, in batched
        transactions; then the domain's own znodes in one transaction,
        which fails (and the whole removal repeats) if a record was added
        meanwhile.
        """
        client = self._client
        path = self._domain_path(owner, domain_id)
        gone: list[str] = []

        def op(retried: bool) -> None:
            while True:
                try:
                    names = client.get_children(f"{path}/instances")
                except NoNodeError:
                    names = []
                for start in range(0, len(names), DELETE_BATCH // 2):
                    batch = names[start : start + DELETE_BATCH // 2]
                    paths = []
                    for name in batch:
                        paths.append(f"{path}/instances/{name}")
                        paths.append(f"{self._base}/index/{name}")
                    self._delete_all(paths)
                    gone.extend(paths[::2])
                try:
                    children = client.get_children(path)
                except NoNodeError:
                    return
                txn = client.transaction()
                for child in children:
                    txn.delete(f"{path}/{child}")
                txn.delete(path)
                try:
                    self._commit(txn)
                except (NotEmptyError, NoNodeError):
                    continue  # a record was added (or a removal raced us): go again
                gone.extend(f"{path}/{child}" for child in children)
                gone.append(path)
                return

        self._call(op)
        for node in gone:
            self._cache_expect_absent(node)

    def _delete_all(self, paths: list[str]) -> None:
        """Delete ``paths`` in one transaction, or one by one if some are gone."""
        txn = self._client.transaction()
        for path in paths:
            txn.delete(path)
        try:
            self._commit(txn)
        except NoNodeError:
            for path in paths:
                with contextlib.suppress(NoNodeError):
                    self._client.delete(path)

    def get_domain_for_instance_id(self, instance_id: str) -> DomainStore | None:
        """The domain holding an instance: one read of its index entry."""
        got = self._server_read(self._index_path(instance_id))
        if got is None:
            return None
        entry = got[0]
        return ZooKeeperDomainStore(self, entry["owner"], entry["domain_id"])

    # change notification -----------------------------------------------------------
    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(owner, domain_id)`` after any change to a domain, by anyone."""
        self._listeners.append(listener)

    # elections ---------------------------------------------------------------------
    def _contend(self, role: str, leader: Leader) -> None:
        if self._closed:
            raise BadRequestError("store is shut down")
        if self._board is None:
            raise StoreUnavailableError("the store is not initialized")
        self._board.contend(role, leader)

    def contend_decider(self, leader: Leader) -> None:
        """Enter ``leader`` in the decider election."""
        self._contend("decider", leader)

    def contend_doctor(self, leader: Leader) -> None:
        """Enter ``leader`` in the doctor election."""
        self._contend("doctor", leader)

    def contend_reaper(self, leader: Leader) -> None:
        """Enter ``leader`` in the reaper election."""
        self._contend("reaper", leader)

    def is_leading(self, role: str) -> bool:
        """True while one of this store's leaders of ``role`` is in office."""
        return self._board is not None and self._board.leading(role)

    def election_contenders(self, role: str) -> list[str]:
        """Identifiers of every worker queued in ``role``'s election, leader first."""
        if self._board is None:
            raise StoreUnavailableError("the store is not initialized")
        board = self._board
        return self._call(lambda retried: board.contenders(role))


def _quote(name: str) -> str:
    """A znode name for an id: percent-quoted, never empty, ``.`` or ``..``."""
    if not isinstance(name, str) or not name:
        raise BadRequestError(f"invalid name {name!r}")
    quoted = quote(name, safe="")
    if quoted in (".", ".."):
        quoted = quoted.replace(".", "%2E")
    return quoted


def _dump(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    except (TypeError, ValueError) as exc:
        raise BadRequestError(f"value cannot be stored as JSON: {exc}") from exc


def _load(raw: bytes | None) -> Any:
    return json.loads(raw) if raw else None


def _check_section(section: str) -> None:
    if section not in CONFIG_SECTIONS:
        raise BadRequestError(
            f"unknown config section {section!r}; expected one of {', '.join(CONFIG_SECTIONS)}"
        )
