"""Elections of the decider, the doctor and the reaper on ZooKeeper.

Each ``Leader`` entered by a store gets a ``Contender``: a daemon thread
that runs kazoo's ``Election`` recipe for its role and the state machine
documented on ``Contender``.  The ``ElectionBoard`` holds a store's
contenders and the session state they act on; its connection listener is
what deposes leaders the moment the connection is in doubt.

Only ``epum.store.zookeeper`` uses this module.
"""

from __future__ import annotations

import logging
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.protocol.states import KazooState
from kazoo.recipe.election import Election

from epum.store.base import Leader

log = logging.getLogger(__name__)

#: The elected roles, one election znode each under ``<base>/elections``.
ROLES = ("decider", "doctor", "reaper")

#: How often the board repeats ``depose()`` to a deposed leader whose
#: ``inaugurate`` has not returned yet: a leader that resets its stop flag
#: when its term starts could miss a ``depose()`` that raced with that
#: start, so one call is not enough.
REDEPOSE_INTERVAL = 0.05

#: Pause before re-entering an election after a failure (a kazoo error or
#: a leader whose ``inaugurate`` raised), so a broken leader or a flapping
#: connection cannot spin.
REJOIN_PAUSE = 0.5


class ContenderState:
    """The states of a ``Contender`` (see its docstring for the transitions)."""

    JOINING = "JOINING"
    CONTENDING = "CONTENDING"
    LEADING = "LEADING"
    HOLDING = "HOLDING"
    STOPPED = "STOPPED"


class ElectionBoard:
    """A store's contenders and the ZooKeeper session state they act on.

    The board listens to the kazoo client's connection state.  The listener
    never blocks: on SUSPENDED or LOST it calls ``depose()`` on every leader
    in office (``depose`` must not block either), and repeats it every
    ``REDEPOSE_INTERVAL`` until that leader's ``inaugurate`` has returned;
    on LOST it also cancels the elections of the contenders still queued so
    they re-enter with the new session.  A LOST also starts a new *session
    generation*: a seat won in an older generation is never used to lead.
    """

    def __init__(self, client: KazooClient, elections_path: str, identifier: str):
        self.client = client
        self.path = elections_path
        self.identifier = identifier
        self._cond = threading.Condition()
        self._state: str = KazooState.LOST
        self._generation = 0
        self._closed = False
        self._contenders: list[Contender] = []

    def start(self) -> None:
        """Follow the client's connection state (call once the client started)."""
        self.client.add_listener(self._on_state)
        with self._cond:
            self._state = self.client.state
            self._cond.notify_all()

    def contend(self, role: str, leader: Leader) -> Contender:
        """Enter ``leader`` in ``role``'s election (a daemon thread of its own)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        contender = Contender(self, role, leader)
        with self._cond:
            if self._closed:
                raise RuntimeError("the election board is shut down")
            self._contenders.append(contender)
        contender.thread.start()
        return contender

    def leading(self, role: str) -> bool:
        """True while one of this board's leaders of ``role`` is in office."""
        with self._cond:
            return any(c.role == role and c.in_term for c in self._contenders)

    def contenders(self, role: str) -> list[str]:
        """Identifiers queued in ``role``'s election (all boards), leader first."""
        return Election(self.client, f"{self.path}/{role}", self.identifier).contenders()

    def shutdown(self, timeout: float = 2.0) -> list[Contender]:
        """Depose every leader, cancel every election, join the threads.

        Returns the contenders whose thread did not finish within
        ``timeout`` (a leader that ignores ``depose``).  A leader that does
        return gives its seat up here (its lock znode is deleted), so a
        contender elsewhere is elected at once.
        """
        with self._cond:
            if self._closed:
                return []
            self._closed = True
            to_depose = self._mark_deposed()
            elections = [c.election for c in self._contenders if c.election is not None]
            contenders = list(self._contenders)
            self._cond.notify_all()
        self._depose(to_depose)
        for election in elections:
            election.cancel()
        deadline = time.monotonic() + timeout
        me = threading.current_thread()
        for contender in contenders:
            if contender.thread is not me:  # a leader may shut its own store down
                contender.thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [c for c in contenders if c.thread.is_alive() and c.thread is not me]
        for contender in stuck:
            log.warning(
                "%s contender %s still running at shutdown (state %s)",
                contender.role,
                self.identifier,
                contender.state,
            )
        return stuck

    # used by the contenders ------------------------------------------------
    def wait_for_session(self) -> int | None:
        """Block until connected; the session generation, or None once shut down."""
        with self._cond:
            while not self._closed and self._state != KazooState.CONNECTED:
                self._cond.wait()
            return None if self._closed else self._generation

    def wait_connected(self, generation: int) -> bool:
        """Block until connected in ``generation``; False if it ended or we shut down."""
        with self._cond:
            while (
                not self._closed
                and self._generation == generation
                and self._state != KazooState.CONNECTED
            ):
                self._cond.wait()
            return not self._closed and self._generation == generation

    def begin_term(self, contender: Contender, generation: int) -> bool:
        """Mark ``contender`` in office if still connected in ``generation``."""
        with self._cond:
            if (
                self._closed
                or self._generation != generation
                or self._state != KazooState.CONNECTED
            ):
                return False
            contender.in_term = True
            contender.deposed = False
            return True

    def end_term(self, contender: Contender) -> bool:
        """Mark ``contender`` out of office; whether the board had deposed it."""
        with self._cond:
            contender.in_term = False
            return contender.deposed

    def set_election(self, contender: Contender, election: Election | None) -> bool:
        """Remember ``contender``'s current election; False once shut down."""
        with self._cond:
            contender.election = election
            return not self._closed

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds`` unless the board shuts down first."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed, seconds)

    # the connection listener (kazoo's thread: must not block) --------------
    def _on_state(self, state: str) -> None:
        to_cancel: list[Election] = []
        with self._cond:
            self._state = state
            if state == KazooState.LOST:
                self._generation += 1
                to_cancel = [
                    c.election for c in self._contenders if c.election is not None and not c.in_term
                ]
            to_depose = self._mark_deposed() if state != KazooState.CONNECTED else []
            self._cond.notify_all()
        if to_depose:
            log.warning(
                "ZooKeeper connection %s: deposing %s", state, ", ".join(c.role for c in to_depose)
            )
        self._depose(to_depose)
        for election in to_cancel:
            election.cancel()

    def _mark_deposed(self) -> list[Contender]:
        # under self._cond
        out = [c for c in self._contenders if c.in_term and not c.deposed]
        for contender in out:
            contender.deposed = True
        return out

    def _depose(self, contenders: list[Contender]) -> None:
        """``depose()`` each, and keep at it until its ``inaugurate`` returns."""
        for contender in contenders:
            self._call_depose(contender)
            threading.Thread(
                target=self._keep_deposed,
                args=(contender,),
                name=f"epum-{contender.role}-depose",
                daemon=True,
            ).start()

    def _keep_deposed(self, contender: Contender) -> None:
        with self._cond:
            while True:
                self._cond.wait(REDEPOSE_INTERVAL)
                if not (contender.in_term and contender.deposed):
                    return
                # Under the lock, so it can never reach the leader's next term.
                self._call_depose(contender)

    @staticmethod
    def _call_depose(contender: Contender) -> None:
        try:
            contender.leader.depose()
        except Exception:
            log.exception("%s leader failed to depose", contender.role)


class Contender:
    """One ``Leader`` in one role's election, run by a daemon thread.

    States and transitions (``state`` holds the current one):

    JOINING
        Waiting for a live session.  Connected (generation *g*): enter a
        fresh kazoo ``Election`` -> CONTENDING.  Shut down -> STOPPED.
    CONTENDING
        Queued in ``Election.run`` (an ephemeral sequential lock znode).
        Won while connected in generation *g* -> LEADING.  Won while
        SUSPENDED: wait for the connection; LOST meanwhile -> seat released,
        JOINING.  Cancelled (LOST, shutdown) or a kazoo error -> JOINING
        (after ``REJOIN_PAUSE`` on error) or STOPPED.
    LEADING
        ``leader.inaugurate()`` runs.  SUSPENDED or LOST: ``depose()`` is
        called at once, from the connection listener, before the session
        could expire and anyone else be elected; when ``inaugurate``
        returns -> HOLDING.  Shut down: ``depose()``, seat released ->
        STOPPED.  ``inaugurate`` returns on its own or raises: seat released
        -> JOINING (after ``REJOIN_PAUSE`` if it raised).
    HOLDING
        Deposed, seat kept: the session may still be alive, and while it
        is nobody else can win.  CONNECTED again in generation *g* and the
        lock znode still there -> LEADING (a new term, same seat).  LOST
        (generation moved on) -> seat released -> JOINING, so the contender
        rejoins behind whoever was elected meanwhile.  Shut down -> STOPPED.
    STOPPED
        The thread has ended.

    Only one thread ever calls ``inaugurate`` for a contender, and never
    twice at once.  ``depose`` comes from the connection listener or from
    ``shutdown``, possibly before ``inaugurate`` has started running, and is
    repeated every ``REDEPOSE_INTERVAL`` until ``inaugurate`` returns (never
    after): a leader that resets its stop flag when a term starts, as
    ``epum.leader_loop.LeaderLoop`` does, cannot miss it.
    """

    def __init__(self, board: ElectionBoard, role: str, leader: Leader):
        self.board = board
        self.role = role
        self.leader = leader
        self.state = ContenderState.JOINING
        self.election: Election | None = None
        self.in_term = False  # guarded by the board's condition
        self.deposed = False  # guarded by the board's condition
        self.terms = 0
        self.thread = threading.Thread(target=self._run, name=f"epum-{role}-election", daemon=True)

    def _run(self) -> None:
        board = self.board
        try:
            while True:
                self.state = ContenderState.JOINING
                generation = board.wait_for_session()
                if generation is None:
                    return
                election = board.client.Election(f"{board.path}/{self.role}", board.identifier)
                if not board.set_election(self, election):
                    return
                self.state = ContenderState.CONTENDING
                failed = False
                try:
                    election.run(self._lead, election, generation)
                except KazooException as exc:
                    log.warning("%s election failed (%r); rejoining", self.role, exc)
                    failed = True
                except Exception:
                    log.exception("%s leader failed; rejoining the election", self.role)
                    failed = True
                finally:
                    board.set_election(self, None)
                if failed:
                    board.pause(REJOIN_PAUSE)
        finally:
            self.state = ContenderState.STOPPED

    def _lead(self, election: Election, generation: int) -> None:
        """Run while holding the seat (kazoo's Election calls this)."""
        board = self.board
        first = True
        while True:
            if not board.wait_connected(generation):
                return
            if not first:
                seated = self._still_seated(election)
                if seated is None:  # could not tell: the connection wavered again
                    board.pause(0.1)
                    continue
                if not seated:
                    log.warning(
                        "%s lost its %s seat while deposed; rejoining", board.identifier, self.role
                    )
                    return
            if not board.begin_term(self, generation):
                continue  # the connection wavered again: wait for it
            first = False
            self.state = ContenderState.LEADING
            self.terms += 1
            log.info("%s is %s (term %d)", board.identifier, self.role, self.terms)
            try:
                self.leader.inaugurate()
            finally:
                deposed = board.end_term(self)
            if not deposed:
                log.info("%s leader returned on its own; rejoining the election", self.role)
                return
            self.state = ContenderState.HOLDING
            log.info("%s deposed as %s; holding the seat", board.identifier, self.role)

    def _still_seated(self, election: Election) -> bool | None:
        """Whether our lock znode still exists (None: could not ask)."""
        node = election.lock.node
        if not node:
            return False
        try:
            return self.board.client.exists(f"{election.lock.path}/{node}") is not None
        except KazooException:
            return None
