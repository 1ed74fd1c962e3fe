"""The ZooKeeper session of one store: the kazoo client and bounded, retried calls.

``ZkSession`` owns the ``KazooClient`` built from ``ZooKeeperSettings``
(digest ACL, reconnect backoff, command retry) and its lifecycle states:

- *new*: built, not connected; ``call`` raises ``StoreUnavailableError``.
- *started*: ``start()`` connected; ``call`` runs operations.
- *closed*: ``mark_closed()`` ended it (``stop()`` then closes the
  client); for good: ``start`` and ``call`` raise ``StoreUnavailableError``.

``call(op)`` runs one store operation through connection losses under a
``KazooRetry``, bounded by the session timeout: ``op(zk, retried)`` gets a
``ZkCalls`` whose every kazoo call gives up at the operation's deadline
(kazoo itself would wait for a reconnection forever).

ACLs.  With ``username`` and ``password``, the client authenticates with
that digest and creates every znode (the base path, the layout, domains,
records, election seats) with an ACL that grants everything to that
identity alone; a client without the credentials can neither read, write,
create nor delete anything under the base path.  Missing parents of the
base path are created open.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kazoo.client import KazooClient, TransactionRequest
from kazoo.exceptions import (
    KazooException,
    NoAuthError,
    NoNodeError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import ZnodeStat
from kazoo.retry import KazooRetry, RetryFailedError
from kazoo.security import make_digest_acl

from epum.errors import ConfigError, NotLeaderError, StoreUnavailableError, WriteConflictError
from epum.settings import ZooKeeperSettings
from epum.store.codec import load

T = TypeVar("T")

#: The shortest cap on the reconnect backoff: below it a down ensemble
#: would be hammered with connection attempts.
MIN_RECONNECT_DELAY = 0.1

#: The reconnect backoff is capped at this fraction of the session timeout,
#: so even after the longest back-off the client tries again several times
#: before the session can expire (a fixed 2 s cap let a 2 s cut expire a
#: 4 s session).
RECONNECT_FRACTION = 1 / 8


def reconnect_max_delay(timeout: float) -> float:
    """The cap on kazoo's reconnect backoff for a session of ``timeout`` seconds.

    ``timeout * RECONNECT_FRACTION``, but at least ``MIN_RECONNECT_DELAY``;
    ConfigError if ``timeout`` is not a positive number.
    """
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
        raise ConfigError(f"the ZooKeeper session timeout must be positive, not {timeout!r}")
    return max(MIN_RECONNECT_DELAY, timeout * RECONNECT_FRACTION)


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

    def commit(self, txn: TransactionRequest, fence: str | None = None) -> list:
        """Commit ``txn``; raise the error of the op that failed.

        ``fence`` says that ``txn``'s first op is a ``check`` standing for
        a leader's term (``fence`` names it): if that check failed, the
        error is NotLeaderError and nothing was written.
        """
        results = self._wait(txn.commit_async())
        if fence is not None and results and _failed(results[0]):
            raise NotLeaderError(f"{fence} is out of office: its election seat is gone")
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
        value = load(raw, path)
        if isinstance(value, dict) and value.get("token") == token:
            return stat
        return None

    def claim(self, path: str, token: str, retried: bool, what: str) -> ZnodeStat:
        """For a create that found ``path`` there already: its stat if it is our own
        earlier create (``retried``, the first try's answer lost, and ``token`` in its
        data), else ``WriteConflictError`` saying ``"<what> already exists"``."""
        stat = self.own_creation(path, token) if retried else None
        if stat is None:
            raise WriteConflictError(f"{what} already exists") from None
        return stat


def _failed(result: Any) -> bool:
    return isinstance(result, Exception) and not isinstance(
        result, (RolledBackError, RuntimeInconsistency)
    )


class ZkSession:
    """One kazoo session, its states (new, started, closed) and bounded calls.

    ``settings.hosts`` is a kazoo connection string (optionally with a
    chroot), ``settings.timeout`` the session timeout (also the bound on
    one operation), ``settings.username``/``password`` the digest identity
    the client authenticates with and gives every znode it creates.
    ConfigError if there are no hosts or a username has no password.
    ``connection_retry`` is kazoo's reconnect policy (its backoff capped by
    ``reconnect_max_delay``).
    """

    def __init__(self, settings: ZooKeeperSettings):
        if not settings.hosts:
            raise ConfigError("server.zookeeper.hosts: ZooKeeper hosts are required")
        if settings.username and settings.password is None:
            raise ConfigError("server.zookeeper.username needs a password")
        self.timeout = float(settings.timeout)
        user, password = settings.username, settings.password
        self.acl = [make_digest_acl(user, password, all=True)] if user else None
        # Reconnect quickly after an outage, and often enough that a cut
        # shorter than the session timeout never expires it.
        self.connection_retry: dict[str, float] = {
            "max_tries": -1,
            "delay": 0.1,
            "backoff": 2,
            "max_delay": reconnect_max_delay(self.timeout),
        }
        self.client = KazooClient(
            hosts=settings.hosts,
            timeout=self.timeout,
            auth_data=[("digest", f"{user}:{password}")] if user else None,
            default_acl=self.acl,
            connection_retry=self.connection_retry,
            # Used by kazoo's recipes (e.g. releasing an election seat).
            command_retry={
                "max_tries": -1,
                "delay": 0.05,
                "backoff": 2,
                "max_delay": 1.0,
                "deadline": self.timeout,
            },
        )
        self._retry = KazooRetry(
            max_tries=-1,
            delay=0.05,
            backoff=2,
            max_delay=1.0,
            deadline=self.timeout,
            interrupt=lambda: self._closed,
        )
        self._lock = threading.Lock()
        self._started = False
        self._closed = False

    @property
    def started(self) -> bool:
        """True once ``start()`` connected (also once closed)."""
        return self._started

    @property
    def closed(self) -> bool:
        """True once ``mark_closed()`` was called."""
        return self._closed

    def start(self) -> bool:
        """Connect; False if already started.

        StoreUnavailableError if closed, or if ZooKeeper does not answer in time
        (the session stays new).
        """
        with self._lock:
            if self._closed:
                raise StoreUnavailableError("the store is shut down")
            if self._started:
                return False
            try:
                self.client.start(timeout=self.timeout)
            except Exception as exc:
                self.client.stop()
                self.client.close()
                raise StoreUnavailableError(f"cannot reach ZooKeeper: {exc!r}") from exc
            self._started = True
            return True

    def mark_closed(self) -> bool:
        """Enter the closed state; True if the client was started and must be stopped."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            return self._started

    def stop(self) -> None:
        """Stop and close the client (after ``mark_closed``)."""
        try:
            self.client.stop()
        finally:
            self.client.close()

    def check_open(self) -> None:
        """StoreUnavailableError unless started and not closed."""
        if not self._started or self._closed:
            raise StoreUnavailableError(
                "the store is shut down" if self._closed else "the store is not initialized"
            )

    def call(self, op: Callable[[ZkCalls, bool], T], where: str = "/") -> T:
        """Run ``op(zk, retried)`` through connection losses, within the session timeout.

        ``zk`` makes kazoo calls that give up at the operation's deadline;
        ``retried`` tells ``op`` that an earlier attempt was cut off and may
        have succeeded.  kazoo failures become StoreUnavailableError (a
        refusal names ``where``); epum errors raised by ``op`` pass through.
        """
        self.check_open()
        zk = ZkCalls(self.client, time.monotonic() + self.timeout)
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return op(zk, attempts > 1)

        try:
            return self._retry.copy()(attempt)
        except NoAuthError as exc:
            raise StoreUnavailableError(
                f"ZooKeeper refused access to {where}: check the credentials"
            ) from exc
        except KazooTimeoutError as exc:
            raise StoreUnavailableError(
                f"ZooKeeper did not answer within {self.timeout:g}s"
            ) from exc
        except (RetryFailedError, InterruptedError) as exc:
            raise StoreUnavailableError(f"ZooKeeper unreachable: {exc}") from exc
        except KazooException as exc:
            raise StoreUnavailableError(f"ZooKeeper error: {exc!r}") from exc


def remove_tree(settings: ZooKeeperSettings) -> None:
    """Delete ``settings.path`` and everything under it, on a session of its own.

    For throw-away namespaces (the server demo's); a path already gone is
    no error.  StoreUnavailableError if ZooKeeper cannot be reached.
    """
    session = ZkSession(settings)
    session.start()

    def op(zk: ZkCalls, retried: bool) -> None:
        with contextlib.suppress(NoNodeError):
            session.client.delete(settings.path, recursive=True)

    try:
        session.call(op, settings.path)
    finally:
        session.mark_closed()
        session.stop()
