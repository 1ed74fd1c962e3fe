"""Reads and merges of the ZooKeeper store: the session, the cache and the codec together.

``ZkAccess`` is what the top store and its domain handles read and write
through.  Cached reads come from the ``SubtreeCache`` once it shows this
store's own writes (``fresh``); writes report what they touched
(``expect_present`` / ``expect_absent``) so later cached reads wait for
them.  Values are decoded with ``epum.store.codec`` (a znode that is
not what epum wrote is a ``CorruptDataError`` naming its path).

``read_decoded`` also keeps what a cached znode decodes to (an instance
record) until the znode changes, so a read of data that did not change
costs no decoding: the decider's passes and steady heartbeats decode only
the records that changed since they last looked.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from kazoo.exceptions import BadVersionError, NoNodeError
from kazoo.protocol.states import ZnodeStat

from epum.errors import EpumError, NotLeaderError, WriteConflictError
from epum.store.codec import dump, load
from epum.store.zk_cache import ABSENT, LOADED, SubtreeCache
from epum.store.zk_session import ZkCalls, ZkSession
from epum.term import Term

T = TypeVar("T")

#: How often a merge (read, change, compare-and-set) is retried after
#: losing a race before it gives up with WriteConflictError; more than a
#: handful of lost races in a row means a writer storm worth reporting.
MERGE_TRIES = 20


class ZkAccess:
    """Server and cached reads, merges and cache expectations over one session.

    The cache is attached with ``attach_cache`` once it exists; until then
    (and after ``detach_cache``) every read goes to the server.
    """

    def __init__(self, session: ZkSession, where: str):
        self.session = session
        self._where = where
        self._cache: SubtreeCache | None = None
        # path -> (mzxid, decode, decoded value) of cached znodes read through read_decoded
        self._decoded: dict[str, tuple[int, Callable[..., Any], Any]] = {}

    @property
    def cache(self) -> SubtreeCache | None:
        """The attached cache, or None."""
        return self._cache

    def attach_cache(self, cache: SubtreeCache) -> None:
        """Serve reads under the cache's root from ``cache`` from now on."""
        cache.listen(self._forget_decoded)
        self._cache = cache

    def _forget_decoded(self, path: str) -> None:
        self._decoded.pop(path, None)

    def call(self, op: Callable[[ZkCalls, bool], T]) -> T:
        """Run one operation on the session (see ``ZkSession.call``)."""
        return self.session.call(op, self._where)

    def fresh(self, prefix: str) -> bool:
        """True if the cache may serve reads under ``prefix`` (shows our writes)."""
        cache = self._cache
        return cache is not None and not self.session.closed and cache.caught_up(prefix)

    def change_stamp(self, prefix: str, key: Hashable) -> Hashable | None:
        """The cache's change stamp of ``key`` (the group of the znodes under ``prefix``)
        once it shows our writes under ``prefix``; None while reads go to the server."""
        cache = self._cache
        if cache is None or not self.fresh(prefix):
            return None
        return cache.change_stamp(key)

    def cached_present(self, path: str) -> bool:
        """True if the cache holds ``path`` (loaded)."""
        return self._cache is not None and self._cache.lookup(path)[0] == LOADED

    def expect_present(self, path: str, stat: ZnodeStat | None) -> None:
        """Cached reads under ``path`` wait until the cache shows the write that made ``stat``."""
        if self._cache is not None and stat is not None:
            self._cache.expect_present(path, stat.mzxid)

    def expect_absent(self, path: str) -> None:
        """Cached reads under ``path`` wait until the cache shows it deleted."""
        if self._cache is not None:
            self._cache.expect_absent(path)

    def server_read(self, path: str) -> tuple[Any, ZnodeStat] | None:
        """``(value, stat)`` of ``path`` from the server, or None."""

        def op(zk: ZkCalls, retried: bool) -> tuple[Any, ZnodeStat] | None:
            try:
                raw, stat = zk.get(path)
            except NoNodeError:
                return None
            return load(raw, path), stat

        return self.call(op)

    def read(self, path: str, cached: bool) -> tuple[Any, ZnodeStat] | None:
        """``(value, stat)`` from the cache if ``cached`` (server if not yet loaded)."""
        if cached and self._cache is not None:
            state, data = self._cache.lookup(path)
            if state == LOADED:
                return load(data.data, path), data.stat
            if state == ABSENT:
                return None
        return self.server_read(path)

    def read_decoded(
        self,
        path: str,
        cached: bool,
        decode: Callable[[Any, ZnodeStat, str], T],
        or_server: bool = False,
    ) -> T | None:
        """``decode(value, stat, path)`` of the znode read as ``read`` (``read_or_server``
        with ``or_server``) reads it, or None if it is absent.

        What a cached znode decodes to is kept and returned again until the
        znode changes (or another ``decode`` reads it): ``decode`` must
        return an immutable value, and its callers must not change it.
        """
        if cached and self._cache is not None:
            state, data = self._cache.lookup(path)
            if state == LOADED:
                stamp = data.stat.mzxid
                kept = self._decoded.get(path)
                if kept is not None and kept[0] == stamp and kept[1] is decode:
                    return kept[2]
                value = decode(load(data.data, path), data.stat, path)
                self._decoded[path] = (stamp, decode, value)
                return value
            if state == ABSENT and not or_server:
                return None
        got = self.server_read(path)
        return None if got is None else decode(got[0], got[1], path)

    def read_or_server(self, path: str, cached: bool) -> tuple[Any, ZnodeStat] | None:
        """Like ``read``, but a znode the cache lacks is looked up on the server."""
        got = self.read(path, cached)
        if got is None and cached:
            got = self.server_read(path)
        return got

    def read_required(
        self, path: str, cached: bool, missing: Callable[[], EpumError]
    ) -> tuple[Any, ZnodeStat]:
        """A znode that must exist; raises ``missing()`` if it does not."""
        got = self.read_or_server(path, cached)
        if got is None:
            raise missing()
        return got

    def children(self, path: str, cached: bool) -> list[str] | None:
        """Sorted child names of ``path``, or None if it does not exist."""
        if cached and self._cache is not None:
            names = self._cache.children(path)
            return sorted(names) if names is not None else None

        def op(zk: ZkCalls, retried: bool) -> list[str] | None:
            try:
                return sorted(zk.get_children(path))
            except NoNodeError:
                return None

        return self.call(op)

    def visible(self, path: str, cached: bool) -> bool:
        """Whether a listed znode is fully there (loaded in the cache, if reading it)."""
        return not cached or self._cache is None or self._cache.lookup(path)[0] == LOADED

    def merge(
        self, path: str, change: Callable[[Any], tuple[Any, T]], missing: Callable[[], EpumError]
    ) -> T:
        """Read, ``change`` (-> new value or None, result), compare-and-set; retry races.

        ``missing()`` is raised if the znode does not exist.
        """

        def op(zk: ZkCalls, retried: bool) -> tuple[T, ZnodeStat | None]:
            for _ in range(MERGE_TRIES):
                try:
                    raw, stat = zk.get(path)
                except NoNodeError:
                    raise missing() from None
                new_value, result = change(load(raw, path))
                if new_value is None:
                    return result, None
                try:
                    return result, zk.set(path, dump(new_value), version=stat.version)
                except BadVersionError:
                    continue
                except NoNodeError:
                    raise missing() from None
            raise WriteConflictError(f"{path} kept changing")

        result, stat = self.call(op)
        self.expect_present(path, stat)
        return result


def term_seat(term: Term | None) -> str | None:
    """The election seat that fences a write under ``term`` (None: not fenced).

    NotLeaderError at once if ``term`` has ended, or is an elected term
    with no seat (not one a ZooKeeper election handed out).  An unelected
    term (number 0, no seat) is not fenced.
    """
    if term is None:
        return None
    if term.ended:
        raise NotLeaderError(f"{term!r} has ended: write refused")
    if term.seat is None and term.number != 0:
        raise NotLeaderError(f"{term!r} has no election seat on this store: write refused")
    return term.seat


def fence_name(term: Term | None, seat: str | None) -> str | None:
    """What ``ZkCalls.commit`` names when the seat check of ``term`` fails."""
    return None if seat is None else repr(term)
