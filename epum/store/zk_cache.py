"""A watch-fed cache of one ZooKeeper subtree that shows this client its own writes.

``SubtreeCache`` wraps kazoo's ``TreeCache`` (which keeps a copy of every
znode under a root fresh through watches) and adds one thing: the writes
this client has made and the cache has not caught up with yet.  Each write
records an *expectation* for the znodes it touched (present with at least
the write's zxid, or absent); ``caught_up(prefix)`` waits, briefly, until
the cache satisfies every expectation under ``prefix``.  A reader that gets
True may serve from the cache and still see its own writes; one that gets
False (the cache is lagging or not started) reads from the server instead.

Change stamps.  Given a ``group`` (path -> key, such as the domain a path
is part of), the cache draws a new number for a key whenever the copy of a
znode of it changes, before any reader can learn of the change (before the
change meets an expectation, before the listeners run);
``change_stamp(key)`` returns that number with the cache's epoch, which
rises at every (re)connection.  Two equal stamps of a key mean the copies
of its znodes did not change in between, as far as this client can know:
an own write is covered once ``caught_up`` says so, another client's once
its event is handled (when the listeners hear of it).

Only ``epum.store.zookeeper`` uses this module.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from kazoo.client import KazooClient
from kazoo.recipe.cache import TreeCache, TreeEvent

log = logging.getLogger(__name__)

#: How long a read waits for the cache to show this client's own writes
#: before it reads from the server instead.  The cache normally follows a
#: write within a round trip or two (milliseconds); past this it is stuck
#: (disconnected) or a later write by someone else superseded ours.
LAG_TIMEOUT = 2.0

#: Lookup results of ``SubtreeCache.lookup``.
ABSENT = "absent"
PENDING = "pending"  # listed by its parent, data not fetched yet
LOADED = "loaded"

PathListener = Callable[[str], None]


class SubtreeCache:
    """A ``TreeCache`` of ``root`` plus this client's writes in flight.

    ``lookup`` and ``children`` read the cached copy (never the server);
    ``expect_present`` / ``expect_absent`` record a write; ``caught_up``
    says whether the copy already shows the recorded writes under a path;
    ``change_stamp(key)`` tells whether a ``group`` changed (see the module).
    ``listen(fn)`` calls ``fn(path)`` after the copy of ``path`` changed,
    whoever changed it; listeners run on the cache's thread and must not
    block.
    """

    def __init__(
        self,
        client: KazooClient,
        root: str,
        lag_timeout: float = LAG_TIMEOUT,
        group: Callable[[str], Hashable | None] | None = None,
    ):
        self.root = root
        self._group = group
        # group key -> the number drawn at its last change; one count for all keys
        self._changes: dict[Hashable, int] = {}
        self._drawn = 0
        self._epoch = 0
        self._tree = TreeCache(client, root)
        self._lag_timeout = lag_timeout
        self._cond = threading.Condition()
        # path -> (present?, minimum mzxid or None)
        self._expected: dict[str, tuple[bool, int | None]] = {}
        self._initialized = threading.Event()
        self._listeners: list[PathListener] = []
        self._closed = False

    # lifecycle -------------------------------------------------------------
    def start(self, timeout: float) -> bool:
        """Start watching; wait up to ``timeout`` for the first full copy.

        Returns whether the copy is complete (reads fall back to the server
        until it is).
        """
        self._tree.listen(self._on_event)
        self._tree.listen_fault(self._on_fault)
        self._tree.start()
        return self._initialized.wait(timeout)

    def close(self) -> None:
        """Stop watching; every later ``caught_up`` says False."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._tree.close()

    @property
    def initialized(self) -> bool:
        """True once the first full copy is in (it stays True through reconnects)."""
        return self._initialized.is_set()

    def listen(self, listener: PathListener) -> None:
        """Call ``listener(path)`` after each change of a cached znode."""
        self._listeners.append(listener)

    # reads -----------------------------------------------------------------
    def lookup(self, path: str) -> tuple[str, Any]:
        """``(LOADED, NodeData)``, ``(PENDING, None)`` or ``(ABSENT, None)``."""
        data = self._tree.get_data(path)
        if data is not None:
            return LOADED, data
        if self._tree.get_children(path) is not None:
            return PENDING, None
        return ABSENT, None

    def children(self, path: str) -> frozenset[str] | None:
        """The cached children of ``path``, or None if it is not cached."""
        return self._tree.get_children(path)

    def change_stamp(self, key: Hashable) -> tuple[int, int]:
        """``(epoch, number)``: a new value after any change to the copy of a znode
        whose ``group`` is ``key``, or a (re)connection (see the module)."""
        with self._cond:
            return self._epoch, self._changes.get(key, 0)

    def _changed(self, path: str) -> None:
        """Draw a new number for the group of ``path`` (call under ``_cond``)."""
        if self._group is None:
            return
        key = self._group(path)
        if key is not None:
            self._drawn += 1
            self._changes[key] = self._drawn

    # own writes --------------------------------------------------------------
    def expect_present(self, path: str, mzxid: int) -> None:
        """Record that this client wrote ``path`` in the transaction ``mzxid``."""
        with self._cond:
            old = self._expected.get(path)
            if old is not None and old[0] and old[1] is not None and old[1] > mzxid:
                return  # a later write of ours is already recorded
            self._expected[path] = (True, mzxid)

    def expect_absent(self, path: str) -> None:
        """Record that this client deleted ``path``."""
        with self._cond:
            self._expected[path] = (False, None)

    def caught_up(self, prefix: str) -> bool:
        """Wait (briefly) until the copy shows this client's writes under ``prefix``.

        False if the copy is not complete or still lags after the lag
        timeout; the expectations it gave up on are forgotten, so one stuck
        write does not slow every later read.
        """
        if not self._initialized.is_set():
            return False
        if not self._expected:  # none of our writes in flight (ours would be seen: same thread)
            return not self._closed
        deadline = time.monotonic() + self._lag_timeout
        inside = prefix + "/"
        with self._cond:
            while True:
                if self._closed:
                    return False
                pending = (
                    [p for p in self._expected if p == prefix or p.startswith(inside)]
                    if self._expected
                    else []
                )
                waiting = [p for p in pending if not self._satisfied(p)]
                if not waiting:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning(
                        "cache of %s still lags behind %d own write(s) after %.1fs; "
                        "reading from the server",
                        prefix,
                        len(waiting),
                        self._lag_timeout,
                    )
                    for p in waiting:
                        self._expected.pop(p, None)
                    return False
                # Events wake us; the short slice also covers changes the
                # TreeCache applies without an event (a node deleted before
                # its data was fetched).
                self._cond.wait(min(remaining, 0.05))

    def _satisfied(self, path: str) -> bool:
        """Whether the copy shows the write recorded for ``path`` (drops it if so)."""
        present, mzxid = self._expected[path]
        state, data = self.lookup(path)
        if present:
            done = state == LOADED and (mzxid is None or data.stat.mzxid >= mzxid)
        else:
            done = state == ABSENT
        if done:
            del self._expected[path]
            self._changed(path)  # the copy may show it before its event is handled
        return done

    # TreeCache events (on the TreeCache's own thread) -----------------------
    def _on_event(self, event: TreeEvent) -> None:
        kind = event.event_type
        if kind == TreeEvent.INITIALIZED:
            self._initialized.set()
        if kind in (TreeEvent.NODE_ADDED, TreeEvent.NODE_UPDATED, TreeEvent.NODE_REMOVED):
            path = event.event_data.path
            with self._cond:
                self._changed(path)
                if path in self._expected:
                    self._satisfied(path)
                self._cond.notify_all()
            for listener in list(self._listeners):
                try:
                    listener(path)
                except Exception:
                    log.exception("cache listener failed for %s", path)
        elif kind in (TreeEvent.INITIALIZED, TreeEvent.CONNECTION_RECONNECTED):
            with self._cond:
                self._epoch += 1
                self._cond.notify_all()
        elif kind in (TreeEvent.CONNECTION_SUSPENDED, TreeEvent.CONNECTION_LOST):
            with self._cond:
                self._epoch += 1

    @staticmethod
    def _on_fault(exc: Exception) -> None:
        log.warning("tree cache error: %r", exc)
