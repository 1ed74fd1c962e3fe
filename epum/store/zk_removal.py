"""Removing one domain from the ZooKeeper store: its records, index entries and log.

Records go first, with their index entries, in batched transactions of at
most ``DELETE_BATCH`` znodes (far below ZooKeeper's 1 MB packet limit);
then the domain's own znodes in one transaction, which fails (and the
whole removal repeats) if a record was added meanwhile; then its decision
log.  Later cached reads wait until the cache shows every znode gone.
"""

from __future__ import annotations

import contextlib

from kazoo.exceptions import NoNodeError, NotEmptyError

from epum.store import zk_history
from epum.store.zk_access import ZkAccess
from epum.store.zk_paths import ZkPaths
from epum.store.zk_session import ZkCalls

#: How many znodes one removal transaction deletes; keeps each request far
#: below ZooKeeper's 1 MB packet limit.
DELETE_BATCH = 100


def remove_domain(access: ZkAccess, paths: ZkPaths, owner: str, domain_id: str) -> None:
    """Delete the domain, its records and their index entries, then its log (no error
    if gone)."""
    path = paths.domain(owner, domain_id)
    gone: list[str] = []

    def op(zk: ZkCalls, retried: bool) -> None:
        while True:
            try:
                names = zk.get_children(f"{path}/instances")
            except NoNodeError:
                names = []
            for start in range(0, len(names), DELETE_BATCH // 2):
                batch = names[start : start + DELETE_BATCH // 2]
                doomed = []
                for name in batch:
                    doomed.append(f"{path}/instances/{name}")
                    doomed.append(f"{paths.index}/{name}")
                delete_all(zk, doomed)
                gone.extend(doomed[::2])
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

    access.call(op)
    zk_history.delete(access, paths.history_of(owner, domain_id))
    for node in gone:
        access.expect_absent(node)


def delete_all(zk: ZkCalls, doomed: list[str]) -> None:
    """Delete ``doomed`` in one transaction, or one by one if some are gone."""
    txn = zk.transaction()
    for path in doomed:
        txn.delete(path)
    try:
        zk.commit(txn)
    except NoNodeError:
        for path in doomed:
            with contextlib.suppress(NoNodeError):
                zk.delete(path)
