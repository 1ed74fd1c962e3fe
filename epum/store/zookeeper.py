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
znodes, by any worker (they come from the cache's watches), once the cache
shows the change, on the cache's thread: they must not block, nor read the
store (a read waiting for the cache would wait on its own thread).

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
import logging
import os
import posixpath
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote

from kazoo.client import KazooClient, TransactionRequest
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
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import ZnodeStat
from kazoo.retry import KazooRetry, RetryFailedError
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl

from epum.errors import (
    BadRequestError,
    NotFoundError,
    StoreUnavailableError,
    WriteConflictError,
)
from epum.store.base import (
    CONFIG_SECTIONS,
    ChangeListener,
    DomainStore,
    EPUMStore,
    Leader,
    notify_listeners,
)
from epum.store.zk_cache import ABSENT, LOADED, SubtreeCache
from epum.store.zk_domain import (
    DOMAIN_LEAVES,
    MERGE_TRIES,
    ZooKeeperDomainStore,
    dump,
    load,
    quote_name,
)
from epum.store.zk_elections import ROLES, ElectionBoard

__all__ = ["ZooKeeperDomainStore", "ZooKeeperEPUMStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How many znodes one removal transaction deletes; keeps each request far
#: below ZooKeeper's 1 MB packet limit.
DELETE_BATCH = 100

#: Instance-to-domain lookups remembered (the most recent ones): enough for
#: every instance of a large deployment, a few MB at most.
INSTANCE_DOMAINS_KEPT = 100_000

#: How long ``shutdown`` waits for leaders to return from ``inaugurate``
#: after ``depose()`` before it closes the session anyway.
SHUTDOWN_JOIN = 2.0


class ZkCalls:
    """The kazoo calls of one store operation, each bounded by its deadline.

    kazoo queues a request made while it reconnects and waits for the
    answer without a limit; these wait at most until the operation's
    deadline and then raise ``KazooTimeoutError``.
    """

    def __init__(self, client: KazooClient, deadline: float):
        self.client = client
        self.deadline = deadline

    def _wait(self, pending) -> Any:
        return pending.get(timeout=max(0.0, self.deadline - time.monotonic()))

    def get(self, path: str) -> tuple[bytes, ZnodeStat]:
        """Data and stat of ``path`` (NoNodeError if absent)."""
        return self._wait(self.client.get_async(path))

    def get_children(self, path: str) -> list[str]:
        """Child names of ``path`` (NoNodeError if absent)."""
        return self._wait(self.client.get_children_async(path))

    def exists(self, path: str) -> ZnodeStat | None:
        """The stat of ``path``, or None."""
        return self._wait(self.client.exists_async(path))

    def create(self, path: str, value: bytes = b"", include_data: bool = False) -> Any:
        """Create ``path`` with the client's default ACL."""
        return self._wait(self.client.create_async(path, value, include_data=include_data))

    def set(self, path: str, value: bytes, version: int = -1) -> ZnodeStat:
        """Set ``path`` if at ``version`` (-1: any); the new stat."""
        return self._wait(self.client.set_async(path, value, version))

    def delete(self, path: str, version: int = -1) -> None:
        """Delete ``path`` if at ``version`` (-1: any)."""
        self._wait(self.client.delete_async(path, version))

    def ensure_path(self, path: str, acl: list | None = None) -> None:
        """Create ``path`` and its missing parents (default ACL unless given)."""
        self._wait(self.client.ensure_path_async(path, acl))

    def transaction(self) -> TransactionRequest:
        """A new transaction; commit it with ``commit``."""
        return self.client.transaction()

    def commit(self, txn: TransactionRequest) -> list:
        """Commit ``txn``; raise the error of the op that failed."""
        results = self._wait(txn.commit_async())
        for result in results:
            if isinstance(result, Exception) and not isinstance(
                result, (RolledBackError, RuntimeInconsistency)
            ):
                raise result
        return results

    def own_creation(self, path: str, token: str) -> ZnodeStat | None:
        """The stat of ``path`` if it holds ``token`` (our own earlier create)."""
        try:
            raw, stat = self.get(path)
        except NoNodeError:
            return None
        value = load(raw)
        if isinstance(value, dict) and value.get("token") == token:
            return stat
        return None


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
        # instance id -> (owner, domain_id) as the index said once: an
        # instance never changes domain, so a hit needs only the cache to
        # confirm the record still exists.
        self._instance_domains: OrderedDict[str, tuple[str, str]] = OrderedDict()

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
        return f"{self._base}/domains/{quote_name(owner)}/{quote_name(domain_id)}"

    def _definition_path(self, definition_id: str) -> str:
        return f"{self._base}/definitions/{quote_name(definition_id)}"

    def _index_path(self, instance_id: str) -> str:
        return f"{self._base}/index/{quote_name(instance_id)}"

    # lifecycle ----------------------------------------------------------------
    def initialize(self) -> None:
        """Connect, create the layout, fill the cache and follow the session.

        Raises StoreUnavailableError (and leaves the store shut down) if
        ZooKeeper does not answer within the session timeout or refuses
        these credentials.
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
        try:
            self._call(self._ensure_layout)
            cache = SubtreeCache(self._client, self._domains_root())
            cache.listen(self._on_cache_change)
            self._cache = cache
            if not cache.start(self._timeout):
                log.warning("the domain cache is still loading; reading from the server meanwhile")
            board = ElectionBoard(self._client, f"{self._base}/elections", self.identifier)
            board.start()
            self._board = board
        except BaseException:
            self.shutdown()
            raise
        log.info("ZooKeeper store ready at %s as %s", self.base_path, self.identifier)

    def _ensure_layout(self, zk: ZkCalls, retried: bool) -> None:
        parent = posixpath.dirname(self._base) if self._base else "/"
        if parent != "/":
            zk.ensure_path(parent, acl=OPEN_ACL_UNSAFE)
        for path in (
            self._base or "/",
            f"{self._base}/definitions",
            f"{self._base}/domains",
            f"{self._base}/index",
            f"{self._base}/elections",
            *(f"{self._base}/elections/{role}" for role in ROLES),
        ):
            zk.ensure_path(path)
        # Fail here, loudly, if these credentials may not read the store.
        zk.get_children(f"{self._base}/domains")

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
    def _call(self, op: Callable[[ZkCalls, bool], T]) -> T:
        """Run ``op(zk, retried)`` through connection losses, within the session timeout.

        ``zk`` makes kazoo calls that give up at the operation's deadline;
        ``retried`` tells ``op`` that an earlier attempt was cut off and may
        have succeeded.  kazoo failures become StoreUnavailableError; epum
        errors raised by ``op`` pass through.
        """
        if not self._started or self._closed:
            raise StoreUnavailableError(
                "the store is shut down" if self._closed else "the store is not initialized"
            )
        zk = ZkCalls(self._client, time.monotonic() + self._timeout)
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return op(zk, attempts > 1)

        try:
            return self._retry.copy()(attempt)
        except NoAuthError as exc:
            raise StoreUnavailableError(
                f"ZooKeeper refused access to {self.base_path}: check the credentials"
            ) from exc
        except KazooTimeoutError as exc:
            raise StoreUnavailableError(
                f"ZooKeeper did not answer within {self._timeout:g}s"
            ) from exc
        except (RetryFailedError, InterruptedError) as exc:
            raise StoreUnavailableError(f"ZooKeeper unreachable: {exc}") from exc
        except KazooException as exc:
            raise StoreUnavailableError(f"ZooKeeper error: {exc!r}") from exc

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

        def op(zk: ZkCalls, retried: bool) -> tuple[Any, ZnodeStat] | None:
            try:
                raw, stat = zk.get(path)
            except NoNodeError:
                return None
            return load(raw), stat

        return self._call(op)

    def _read(self, path: str, cached: bool) -> tuple[Any, ZnodeStat] | None:
        """``(value, stat)`` from the cache if ``cached`` (server if not yet loaded)."""
        if cached and self._cache is not None:
            state, data = self._cache.lookup(path)
            if state == LOADED:
                return load(data.data), data.stat
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
            raise domain.missing()
        return got

    def _children(self, path: str, cached: bool) -> list[str] | None:
        """Sorted child names of ``path``, or None if it does not exist."""
        if cached and self._cache is not None:
            names = self._cache.children(path)
            return sorted(names) if names is not None else None

        def op(zk: ZkCalls, retried: bool) -> list[str] | None:
            try:
                return sorted(zk.get_children(path))
            except NoNodeError:
                return None

        return self._call(op)

    def _visible(self, path: str, cached: bool) -> bool:
        """Whether a listed domain is fully there (its node loaded in the cache)."""
        return not cached or self._cache is None or self._cache.lookup(path)[0] == LOADED

    def _merge(self, path: str, change: Callable[[Any], tuple[Any, T]], domain) -> T:
        """Read, ``change`` (-> new value or None, result), compare-and-set; retry races."""

        def op(zk: ZkCalls, retried: bool) -> tuple[T, ZnodeStat | None]:
            for _ in range(MERGE_TRIES):
                try:
                    raw, stat = zk.get(path)
                except NoNodeError:
                    raise domain.missing() from None
                new_value, result = change(load(raw))
                if new_value is None:
                    return result, None
                try:
                    return result, zk.set(path, dump(new_value), version=stat.version)
                except BadVersionError:
                    continue
                except NoNodeError:
                    raise domain.missing() from None
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
        notify_listeners(self._listeners, unquote(parts[0]), unquote(parts[1]))

    # definitions ----------------------------------------------------------------
    def add_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Create a definition; WriteConflictError if the id exists."""
        path = self._definition_path(definition_id)
        token = uuid.uuid4().hex
        raw = dump({"definition": definition, "token": token})

        def op(zk: ZkCalls, retried: bool) -> None:
            try:
                zk.create(path, raw)
            except NodeExistsError:
                if retried and zk.own_creation(path, token) is not None:
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
        dump(definition)

        def op(zk: ZkCalls, retried: bool) -> None:
            for _ in range(MERGE_TRIES):
                try:
                    raw, stat = zk.get(path)
                except NoNodeError:
                    raise NotFoundError(f"definition {definition_id} not found") from None
                value = load(raw)
                value["definition"] = definition
                try:
                    zk.set(path, dump(value), version=stat.version)
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

        def op(zk: ZkCalls, retried: bool) -> None:
            try:
                zk.delete(path)
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
        owner_path = f"{self._domains_root()}/{quote_name(owner)}"
        path = self._domain_path(owner, domain_id)
        token = uuid.uuid4().hex
        identity = dump({"owner": owner, "domain_id": domain_id, "token": token})
        leaves = {s: dump(config.get(s) or {}) for s in CONFIG_SECTIONS}
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
                    if retried:
                        stat = zk.own_creation(path, token)
                        if stat is not None:
                            return stat
                    raise WriteConflictError(
                        f"domain {domain_id} of {owner} already exists"
                    ) from None
                except NoNodeError:
                    zk.ensure_path(owner_path)  # the owner's first domain
            raise WriteConflictError(f"owner {owner} keeps disappearing")

        stat = self._call(op)
        for node in (path, *(f"{path}/{n}" for n in (*DOMAIN_LEAVES, "instances"))):
            self._cache_expect(node, stat)
        return ZooKeeperDomainStore(self, owner, domain_id)

    def get_domain(self, owner: str, domain_id: str) -> DomainStore | None:
        """A handle on the domain (removal-marked ones included), or None."""
        path = self._domain_path(owner, domain_id)
        if self._read_or_server(path, self._fresh(path)) is None:
            return None
        return ZooKeeperDomainStore(self, owner, domain_id)

    def list_domains_by_owner(self, owner: str) -> list[str]:
        """The ids of ``owner``'s domains, sorted: one read on the server.

        An RPC answer, so it reads the server rather than the cache: a
        domain added through any worker is listed by every worker at once.
        """
        names = self._children(f"{self._domains_root()}/{quote_name(owner)}", False) or []
        return sorted(unquote(n) for n in names)

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
        path = self._domain_path(owner, domain_id)
        gone: list[str] = []

        def op(zk: ZkCalls, retried: bool) -> None:
            while True:
                try:
                    names = zk.get_children(f"{path}/instances")
                except NoNodeError:
                    names = []
                for start in range(0, len(names), DELETE_BATCH // 2):
                    batch = names[start : start + DELETE_BATCH // 2]
                    paths = []
                    for name in batch:
                        paths.append(f"{path}/instances/{name}")
                        paths.append(f"{self._base}/index/{name}")
                    self._delete_all(zk, paths)
                    gone.extend(paths[::2])
                try:
                    children = zk.get_children(path)
                except NoNodeError:
                    return
                txn = zk.transaction()
                for child in children:
                    txn.delete(f"{path}/{child}")
                txn.delete(path)
                try:
                    zk.commit(txn)
                except (NotEmptyError, NoNodeError):
                    continue  # a record was added (or a removal raced us): go again
                gone.extend(f"{path}/{child}" for child in children)
                gone.append(path)
                return

        self._call(op)
        for node in gone:
            self._cache_expect_absent(node)

    @staticmethod
    def _delete_all(zk: ZkCalls, paths: list[str]) -> None:
        """Delete ``paths`` in one transaction, or one by one if some are gone."""
        txn = zk.transaction()
        for path in paths:
            txn.delete(path)
        try:
            zk.commit(txn)
        except NoNodeError:
            for path in paths:
                with contextlib.suppress(NoNodeError):
                    zk.delete(path)

    def get_domain_for_instance_id(self, instance_id: str) -> DomainStore | None:
        """The domain holding an instance: at most one read of its index entry.

        An instance this store has looked up before, whose record the cache
        still holds, costs no read at all (heartbeats find their domain so).
        """
        known = self._instance_domains.get(instance_id)
        if known is not None:
            domain = ZooKeeperDomainStore(self, *known)
            path = domain._instance_path(instance_id)
            if self._cache is not None and self._cache.lookup(path)[0] == LOADED:
                self._instance_domains.move_to_end(instance_id)
                return domain
            self._instance_domains.pop(instance_id, None)
        got = self._server_read(self._index_path(instance_id))
        if got is None:
            return None
        key = (got[0]["owner"], got[0]["domain_id"])
        self._instance_domains[instance_id] = key
        while len(self._instance_domains) > INSTANCE_DOMAINS_KEPT:
            self._instance_domains.popitem(last=False)
        return ZooKeeperDomainStore(self, *key)

    # change notification -----------------------------------------------------------
    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(owner, domain_id)`` after any change to a domain, by anyone.

        It runs on the cache's thread once the cache shows the change; it
        must not block nor read the store (note the domain, wake a loop).
        """
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
        return self._call(lambda zk, retried: board.contenders(role))
