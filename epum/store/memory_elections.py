"""The memory store's elections: one process, so the first contender of a role leads.

States of a contender's thread: waiting for the role's lock -> in office
(``inaugurate(term)`` with a new term, numbered by the store) -> the term is
ended when ``inaugurate`` returns -> a pause of ``REJOIN_PAUSE`` -> waiting
again; shut down -> stopped.  Later contenders of a role wait their turn.
A term is created and recorded under the store's lock, and the store marks
itself closed under that lock, so ``shutdown`` ends every term that was or
will be handed out.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time

from epum.errors import NotLeaderError, StoreUnavailableError
from epum.store.base import DomainStore, Leader
from epum.term import Term

log = logging.getLogger(__name__)

#: Pause before a leader whose term ended re-enters its election (as on the
#: ZooKeeper store), so a leader that fails or quits at once cannot spin.
REJOIN_PAUSE = 0.5

#: How long ``shutdown`` waits for leaders to return once their terms ended.
SHUTDOWN_JOIN = 5.0

#: The roles a memory store holds elections for.
ROLES = ("decider", "doctor", "reaper")


class MemoryElections:
    """The terms of one memory store's roles, and the fence its writes pass.

    ``lock`` is the store's lock: terms are recorded under it, and ``fence``
    must be called under it.  ``closed`` is the store's shut-down flag, set
    under ``lock``; once it is set no term begins, and ``shutdown()`` ends
    the ones in office.
    """

    def __init__(self, lock: threading.RLock, closed: threading.Event):
        self._lock = lock
        self._closed = closed
        # a role's lock, made on first use: the decider's shares elect as decider/<i>
        self._role_locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        self._threads: list[threading.Thread] = []
        self._terms: set[Term] = set()
        self._numbers = itertools.count(1)

    def contend(self, role: str, leader: Leader) -> None:
        """Enter ``leader`` in ``role``'s election, on a thread of its own (see the module).

        StoreUnavailableError once the store is shut down.
        """
        if self._closed.is_set():
            raise StoreUnavailableError("the store is shut down")

        def run() -> None:
            while not self._closed.is_set():
                with self._role_locks[role]:
                    term = self._begin(role)
                    if term is None:
                        return
                    try:
                        leader.inaugurate(term)
                    except Exception:
                        log.exception("%s leader failed; rejoining the election", role)
                    finally:
                        term.end()
                        self._retire(term)
                # Outside the lock, so another contender may take the role
                # meanwhile; a leader that fails (or quits) at once must not spin.
                self._closed.wait(REJOIN_PAUSE)

        thread = threading.Thread(target=run, name=f"epum-{role}-election", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def new_term(self, role: str) -> Term:
        """A new term of ``role``, in office (its writes pass the fence) until it ends.

        StoreUnavailableError once the store is shut down.
        """
        term = self._begin(role)
        if term is None:
            raise StoreUnavailableError("the store is shut down")
        term.add_end_callback(lambda: self._retire(term))
        return term

    def fence(self, term: Term, domain: DomainStore) -> None:
        """NotLeaderError unless ``term`` is in office (call under the store's lock).

        In office: not ended, and either unelected (number 0) or a term this
        store handed out whose ``inaugurate`` has not returned.
        """
        elected = term.number != 0 or term.seat is not None
        if term.ended or (elected and term not in self._terms):
            raise NotLeaderError(
                f"{term.role} term {term.number} is out of office: "
                f"write to {domain.domain_id} of {domain.owner} refused"
            )

    def shutdown(self, join: float = SHUTDOWN_JOIN) -> None:
        """End every term in office and wait up to ``join`` seconds in all for the
        contenders' threads (not for the calling one: a leader may shut its store down).

        Call once the store's ``closed`` flag is set, so no term begins after.
        """
        with self._lock:
            terms, threads = list(self._terms), list(self._threads)
        for term in terms:
            term.end()
        deadline = time.monotonic() + join
        me = threading.current_thread()
        for thread in threads:
            if thread is not me:
                thread.join(max(0.0, deadline - time.monotonic()))

    def _begin(self, role: str) -> Term | None:
        """A new term of ``role``, recorded as in office; None once shut down."""
        with self._lock:
            if self._closed.is_set():
                return None
            term = Term(role, next(self._numbers))
            self._terms.add(term)
            return term

    def _retire(self, term: Term) -> None:
        with self._lock:
            self._terms.discard(term)
