"""The decision log of a domain on ZooKeeper: one capped znode per domain.

``/history/<owner>/<domain_id>`` holds the domain's whole log as one JSON
list, capped (``epum.decisions.bounded``) at each write, so one append is one
read and one compare-and-set, whatever the number of entries.  It lives
outside ``/domains`` on purpose: the watch-fed cache of the domains does not
carry it, and writing it wakes no change listener (a decider pass writing
its log must not wake the decider again).  It is deleted with its domain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from epum.decisions import bounded
from epum.errors import BadRequestError, CorruptDataError, EpumError, WriteConflictError
from epum.store.codec import dump, load
from epum.store.zk_access import MERGE_TRIES, ZkAccess, fence_name
from epum.store.zk_session import ZkCalls
from epum.term import Term

#: The most bytes a log znode holds: well under ZooKeeper's 1 MB jute.maxbuffer;
#: past it the oldest entries go first.
MAX_BYTES = 512 * 1024


def append(
    access: ZkAccess,
    path: str,
    domain_path: str,
    entries: list[dict[str, Any]],
    limits: tuple[int, float, float],
    missing: Callable[[], EpumError],
    fence: tuple[str | None, Term | None] = (None, None),
) -> None:
    """Add ``entries`` to the log at ``path`` (``limits``: max entries, max age, now).

    ``fence`` is ``(election seat, term)`` for a fenced write: the create or
    set goes in one transaction with a check of the seat, and NotLeaderError
    (nothing written) if the seat is gone.  The same transaction checks that
    the domain exists (``missing()``, nothing written, if it does not), so an
    append costs two round trips: the read of the log and the write.
    """
    if not entries:
        return
    dump(entries, "decision log")  # refuse what JSON cannot carry before touching anything
    max_entries, max_age, now = limits
    seat, term = fence

    def write(zk: ZkCalls, value: bytes, version: int | None) -> None:
        txn = zk.transaction()
        if seat is not None:
            txn.check(seat, -1)  # any version: the seat need only exist
        txn.check(domain_path, -1)  # the domain must exist: no log for a removed one
        if version is None:
            txn.create(path, value)
        else:
            txn.set_data(path, value, version=version)
        try:
            zk.commit(txn, fence=fence_name(term, seat))
        except NoNodeError:
            if zk.exists(domain_path) is None:
                raise missing() from None
            raise  # the log znode went: the caller reads it again

    def op(zk: ZkCalls, retried: bool) -> None:
        for _ in range(MERGE_TRIES):
            try:
                raw, stat = zk.get(path)
            except NoNodeError:
                value = _capped(bounded(entries, max_entries, max_age, now))
                zk.ensure_path(path.rpartition("/")[0])
                try:
                    write(zk, value, None)
                    return
                except NodeExistsError:
                    continue
            kept = bounded([*_entries(load(raw, path), path), *entries], max_entries, max_age, now)
            try:
                write(zk, _capped(kept), stat.version)
                return
            except (BadVersionError, NoNodeError):
                continue
        raise WriteConflictError(f"{path} kept changing")

    access.call(op)


def read(access: ZkAccess, path: str) -> list[dict[str, Any]]:
    """The log at ``path``, oldest first (empty when none was written)."""
    got = access.server_read(path)
    return [] if got is None else _entries(got[0], path)


def delete(access: ZkAccess, path: str) -> None:
    """Remove the log at ``path`` (no error if there is none)."""

    def op(zk: ZkCalls, retried: bool) -> None:
        with contextlib.suppress(NoNodeError):
            zk.delete(path)

    access.call(op)


def _capped(entries: list) -> bytes:
    """The encoded log, its oldest entries dropped until it fits ``MAX_BYTES``."""
    while True:
        try:
            raw: bytes | None = dump(entries)
        except BadRequestError:  # over the store's value bound, so over MAX_BYTES too
            raw = None
        if raw is not None and (len(raw) <= MAX_BYTES or not entries):
            return raw
        entries = entries[max(1, len(entries) // 4) :]


def _entries(value: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise CorruptDataError(f"{path} holds no decision log: {value!r:.200}")
    return value
