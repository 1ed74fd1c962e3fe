"""Elections of the decider, the doctor and the reaper on ZooKeeper.

Each ``Leader`` entered by a store gets a ``Contender``: a daemon thread
that runs kazoo's ``Election`` recipe for its role and the state machine
documented on ``Contender``.  Each time a contender takes office it creates
a new ``Term`` (``epum.term``), tied to its election znode and the session,
and hands it to ``leader.inaugurate(term)``.  The ``ElectionBoard`` holds a
store's contenders and the session state they act on; its connection
listener is what ends the terms in office the moment the connection is in
doubt.

Only ``epum.store.zookeeper`` uses this module.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.protocol.states import KazooState
from kazoo.recipe.election import Election

from epum.store.base import Leader
from epum.term import Term

log = logging.getLogger(__name__)

#: The elected roles, one election znode each under ``<base>/elections``.
ROLES = ("decider", "doctor", "reaper")

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
    never blocks: on SUSPENDED or LOST it ends the term of every leader in
    office, under its condition (``Term.end`` never blocks); on LOST it
    also cancels the elections of the contenders still queued so they
    re-enter with the new session.  A LOST also starts a new *session generation*: a seat won in
    an older generation is never used to lead.  A term is created and
    recorded under the board's condition, so no end meant for it can be
    missed, and a term once ended stays ended: the next term is a new one.
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
        self._shares: list[Any] = []  # epum.store.zk_partitions.ShareContender

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

    def add_shares(self, contender: Any) -> None:
        """Start a ``zk_partitions.ShareContender``: its terms are ended with the others'."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the election board is shut down")
            self._shares.append(contender)
        contender.thread.start()

    @property
    def condition(self) -> threading.Condition:
        """The condition guarding the board's session state and every term it records."""
        return self._cond

    @property
    def closed(self) -> bool:
        """True once ``shutdown`` began."""
        with self._cond:
            return self._closed

    def leading(self, role: str) -> bool:
        """True while one of this board's leaders of ``role`` holds a term not yet ended."""
        with self._cond:
            return any(t.role == role and not t.ended for t in self._terms_recorded())

    def contenders(self, role: str) -> list[str]:
        """Identifiers queued in ``role``'s election (all boards), leader first."""
        return Election(self.client, f"{self.path}/{role}", self.identifier).contenders()

    def shutdown(self, timeout: float = 2.0) -> list[Contender]:
        """End every term, cancel every election, join the threads.

        Returns the contenders whose thread did not finish within
        ``timeout`` (a leader that ignores its term's end).  A leader that
        does return gives its seat up here (its lock znode is deleted), so a
        contender elsewhere is elected at once.
        """
        with self._cond:
            if self._closed:
                return []
            self._closed = True
            self._end_terms()
            elections = [c.election for c in self._contenders if c.election is not None]
            contenders = [*self._contenders, *self._shares]
            self._cond.notify_all()
        for election in elections:
            election.cancel()
        for shares in self._shares:
            shares.wakeup.set()
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

    def begin_term(self, contender: Contender, generation: int, seat: str) -> Term | None:
        """A new term for ``contender`` won with ``seat``, if still connected in ``generation``.

        The term carries the seat's znode path and the session id; it is
        recorded as ``contender.term`` under the board's condition, so a
        connection change from now on ends it.  None if the connection
        wavered or the board shut down.
        """
        with self._cond:
            if not self._connected_in(generation):
                return None
            contender.terms += 1
            contender.term = Term(
                contender.role, contender.terms, seat=seat, session=self._session_id()
            )
            return contender.term

    def begin_share_term(
        self, contender: Any, name: str, generation: int, seat: str
    ) -> Term | None:
        """A new term for share ``name`` of ``contender`` held with lock znode ``seat``.

        As ``begin_term``: recorded in ``contender.terms`` under the board's
        condition, None if the connection wavered or the board shut down.
        """
        with self._cond:
            if not self._connected_in(generation):
                return None
            contender.number += 1
            term = Term(contender.role, contender.number, seat=seat, session=self._session_id())
            contender.terms[name] = term
            return term

    def _connected_in(self, generation: int) -> bool:
        # Under self._cond: open, connected, and still in session ``generation``.
        return (
            not self._closed
            and self._generation == generation
            and self._state == KazooState.CONNECTED
        )

    def _session_id(self) -> int | None:
        client_id = self.client.client_id
        return client_id[0] if client_id else None

    def end_share_terms(self, contender: Any) -> None:
        """End every term of ``contender``'s shares and forget them."""
        with self._cond:
            terms, contender.terms = list(contender.terms.values()), {}
            for term in terms:
                term.end()

    def end_term(self, contender: Contender) -> bool:
        """End ``contender``'s term and mark it out of office; whether it ended before this."""
        with self._cond:
            term, contender.term = contender.term, None
            return term is not None and not term.end()

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
                    c.election
                    for c in self._contenders
                    if c.election is not None and c.term is None
                ]
            ended = self._end_terms() if state != KazooState.CONNECTED else []
            self._cond.notify_all()
        if ended:
            log.warning(
                "ZooKeeper connection %s: deposed %s", state, ", ".join(t.role for t in ended)
            )
        for election in to_cancel:
            election.cancel()

    def _end_terms(self) -> list[Term]:
        # Under self._cond, so whether a term was ended by the board or by
        # its leader returning (``end_term``) is decided in one place.
        # ``Term.end`` never blocks (nor may its callbacks).
        return [t for t in self._terms_recorded() if t.end()]

    def _terms_recorded(self) -> list[Term]:
        # Under self._cond: every term this board handed out and not yet forgot.
        terms = [c.term for c in self._contenders if c.term is not None]
        return terms + [t for s in self._shares for t in s.terms.values()]


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
        A new ``Term`` (seat znode path, session id, term number) is
        created and ``leader.inaugurate(term)`` runs.  SUSPENDED or LOST:
        the term is ended at once, from the connection listener, before the
        session could expire and anyone else be elected; when
        ``inaugurate`` returns -> HOLDING.  Shut down: the term is ended,
        seat released -> STOPPED.  ``inaugurate`` returns on its own or
        raises: the term is ended, seat released -> JOINING (after
        ``REJOIN_PAUSE`` if it raised).
    HOLDING
        Deposed, seat kept: the session may still be alive, and while it
        is nobody else can win.  CONNECTED again in generation *g* and the
        lock znode still there -> LEADING (a new term, same seat).  LOST
        (generation moved on) -> seat released -> JOINING, so the contender
        rejoins behind whoever was elected meanwhile.  Shut down -> STOPPED.
    STOPPED
        The thread has ended.

    Only one thread ever calls ``inaugurate`` for a contender, and never
    twice at once.  A term's end comes from the connection listener or from
    ``shutdown``, possibly before ``inaugurate`` has started running: the
    leader then finds its term already ended.  Each term is a new object,
    so an end meant for an earlier term never reaches a later one.
    """

    def __init__(self, board: ElectionBoard, role: str, leader: Leader):
        self.board = board
        self.role = role
        self.leader = leader
        self.state = ContenderState.JOINING
        self.election: Election | None = None
        self.term: Term | None = None  # the term in office; guarded by the board's condition
        self.terms = 0  # terms begun so far (each term's number)
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
            term = board.begin_term(self, generation, f"{election.lock.path}/{election.lock.node}")
            if term is None:
                continue  # the connection wavered again: wait for it
            first = False
            self.state = ContenderState.LEADING
            log.info("%s is %s (%r)", board.identifier, self.role, term)
            try:
                self.leader.inaugurate(term)
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
