"""The decider's shares on ZooKeeper, balanced over the workers by kazoo's ``SetPartitioner``.

A ``ShareContender`` enters one worker's leaders of a role's shares (one
``Leader`` per share, ``leaders[i]`` for share ``i``) in a
``SetPartitioner`` over the share names ``"0" .. "N-1"`` at
``<elections>/<role>-shares``.  The recipe splits the shares evenly among
the workers in its party and holds a kazoo ``Lock`` per share acquired: no
two workers hold a share at once.  Each share acquired becomes a new
``Term`` whose seat is that share's lock znode, so the share's writes are
fenced exactly as the single decider's are (a ``check`` of the seat in the
write's own transaction, ``epum.store.zk_access.term_seat``).

States and transitions (``state`` holds the current one):

JOINING
    Waiting for a live session; then a new ``SetPartitioner`` (this worker
    joins its party) -> ALLOCATING.  Shut down -> STOPPED.
ALLOCATING
    The recipe waits until the party has been unchanged for ``settle``
    seconds, then takes the locks of this worker's shares -> ACQUIRED.
ACQUIRED
    For each share held, a new term (seat: its lock znode, the session id)
    and ``leaders[i].inaugurate(term)`` in a thread of its own.  The party
    changed (a worker came or went) or the connection was SUSPENDED: the
    recipe asks for a release -> every term ended (the connection listener
    of the ``ElectionBoard`` ends them at once on SUSPENDED or LOST), their
    leaders' threads joined, the locks released -> ALLOCATING.
FAILURE
    The session was LOST, or allocating failed: terms ended, the recipe
    finished (locks released, party left, retried until done while the
    session lives; with a lost session its znodes are gone already) ->
    JOINING after ``REJOIN_PAUSE``.
STOPPED
    Shut down: terms ended, the recipe finished, the thread ended.

A worker that dies loses its session, its party znode and its locks go with
it, the others' recipes see the party change and share its shares out.
Only ``epum.store.zookeeper`` uses this module.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from kazoo.exceptions import KazooException
from kazoo.recipe.partitioner import SetPartitioner

from epum.store.base import Leader
from epum.store.zk_elections import REJOIN_PAUSE, ElectionBoard
from epum.term import Term

log = logging.getLogger(__name__)

#: How long a release waits for the leaders of the shares it gives up to end
#: their pass under way before it lets the locks go anyway (their writes are
#: fenced by their ended terms' seats, which the release deletes).
RELEASE_WAIT = 10.0

#: How often the contender looks at the recipe's state when nothing woke it.
LOOK_EVERY = 1.0


def held_lock_seats(partitioner: SetPartitioner) -> dict[str, str]:
    """The lock znode of every share ``partitioner`` holds, by share name.

    kazoo's recipe keeps its acquired ``Lock`` objects in ``_locks`` and has
    no public accessor for them; the seat of a share's term must be the
    lock znode itself, so it is read here, in one place.
    """
    seats = {}
    for lock in list(partitioner._locks):
        if lock.node:
            seats[lock.path.rsplit("/", 1)[-1]] = f"{lock.path}/{lock.node}"
    return seats


def left_behind(partitioner: SetPartitioner) -> bool:
    """True while ``partitioner`` still holds a lock or a party znode after ``finish()``.

    Both are kazoo internals (``_locks``, ``_party``): a lock or party znode
    left in a live session would be taken for a worker that is not there.
    """
    return bool(partitioner._locks) or bool(partitioner._party.participating)


class ShareContender:
    """One worker's leaders of ``role``'s shares, in kazoo's ``SetPartitioner`` (see the module)."""

    def __init__(
        self, board: ElectionBoard, role: str, leaders: Sequence[Leader], settle: float
    ) -> None:
        if not leaders:
            raise ValueError(f"{role}: a share contender needs at least one leader")
        if not settle > 0:
            raise ValueError(f"{role}: the party's settle time must be positive, got {settle!r}")
        self.board = board
        self.role = role
        self.leaders = list(leaders)
        self.names = tuple(str(i) for i in range(len(self.leaders)))
        self.settle = settle
        self.path = f"{board.path}/{role}-shares"
        self.state = "JOINING"
        #: The terms in office by share name; guarded by the board's condition.
        self.terms: dict[str, Term] = {}
        self.number = 0  # terms begun so far (each term's number)
        self._threads: dict[str, threading.Thread] = {}
        # leader threads of ended terms still running at their release, by share name
        self._lingering: dict[str, threading.Thread] = {}
        self.wakeup = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"epum-{role}-shares", daemon=True)

    def held(self) -> list[str]:
        """The names of the shares this worker leads now."""
        with self.board.condition:
            return sorted(name for name, term in self.terms.items() if not term.ended)

    def _run(self) -> None:
        board = self.board
        try:
            while True:
                self.state = "JOINING"
                generation = board.wait_for_session()
                if generation is None:
                    return
                failed = False
                try:
                    partitioner = board.client.SetPartitioner(
                        self.path,
                        set=self.names,
                        identifier=board.identifier,
                        time_boundary=self.settle,
                        state_change_event=self.wakeup,
                    )
                except KazooException as exc:
                    log.warning("%s shares: cannot join the party (%r)", self.role, exc)
                    failed = True
                else:
                    try:
                        failed = not self._follow(partitioner, generation)
                    except KazooException as exc:
                        log.warning("%s shares failed (%r); rejoining", self.role, exc)
                        failed = True
                    finally:
                        self._release()
                        self._leave(partitioner, generation)
                if board.closed:
                    return
                if failed:
                    board.pause(REJOIN_PAUSE)
        finally:
            self.state = "STOPPED"

    def _follow(self, partitioner: SetPartitioner, generation: int) -> bool:
        """Follow the recipe until it fails (False) or the board shuts down (True)."""
        while not self.board.closed:
            self.wakeup.clear()
            if partitioner.failed:
                self.state = "FAILURE"
                log.warning("%s shares: the partitioner failed; rejoining", self.role)
                return False
            if partitioner.release:
                self._release()
                partitioner.release_set()
                continue
            if partitioner.acquired and not self._threads:
                self.state = "ACQUIRED"
                self._take(partitioner, generation)
            elif partitioner.allocating:
                self.state = "ALLOCATING"
            self.wakeup.wait(LOOK_EVERY)
        return True

    def _take(self, partitioner: SetPartitioner, generation: int) -> None:
        seats = held_lock_seats(partitioner)
        names = [name for name in partitioner if name in seats]
        for name in names:
            term = self.board.begin_share_term(self, name, generation, seats[name])
            if term is None:
                return  # the connection wavered: the recipe asks for a release
            thread = threading.Thread(
                target=self._lead,
                args=(self.leaders[int(name)], term, self._lingering.pop(name, None)),
                name=f"epum-{self.role}-share-{name}",
                daemon=True,
            )
            self._threads[name] = thread
            thread.start()
        log.info("%s leads %s shares %s", self.board.identifier, self.role, ", ".join(names))

    def _lead(self, leader: Leader, term: Term, previous: threading.Thread | None) -> None:
        """Lead ``term``, once ``previous`` (the same leader's last term, still running at
        its release) has returned: one leader leads one term at a time."""
        try:
            while previous is not None and previous.is_alive() and not term.ended:
                previous.join(LOOK_EVERY)
            leader.inaugurate(term)
        except Exception:
            log.exception("%s leader of share failed; its share waits for the next release", term)
        finally:
            term.end()

    def _release(self) -> None:
        """End every term in office and wait (bounded) for their leaders to return."""
        self.board.end_share_terms(self)
        for name, thread in list(self._threads.items()):
            thread.join(RELEASE_WAIT)
            if thread.is_alive():
                log.warning(
                    "%s share %s: its leader is still running at release; its next term "
                    "starts once it returns",
                    self.role,
                    name,
                )
                self._lingering[name] = thread
        if self._threads:
            log.info("%s released %s shares", self.board.identifier, self.role)
        self._threads.clear()

    def _leave(self, partitioner: SetPartitioner, generation: int) -> None:
        """Finish the recipe; retried while the same session lives and something is left."""
        while True:
            partitioner.finish()
            if not left_behind(partitioner):
                return
            if not self.board.wait_connected(generation):
                return  # the session is gone, and its ephemeral znodes with it
            self.board.pause(0.1)
