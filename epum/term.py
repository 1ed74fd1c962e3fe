"""A leader's term of office: created by an election, held by the role, ended by deposing.

A ``Term`` is the stop token of one term of one role.  The election creates
a new one each time it hands the role office and passes it to
``Leader.inaugurate(term)``; deposing ends that term and no other, so a
depose that arrives before the role started running the term is never lost
(the term is already ended when the role first looks), and a later term
never inherits an earlier one's stop (it is a different object).

Its ``identity`` says which term it is, for fencing a deposed leader's
writes: ``(role, seat, session, number)``.  On ZooKeeper ``seat`` is the
path of the election znode this term was won with and ``session`` the
ZooKeeper session id; on the memory store both are None and ``number``
counts the store's terms.  No two terms handed out by one store share an
identity.  ``Term.unelected(role)`` (number 0, no seat) is the term a role
acts under when no election made one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: ``(role, seat, session, number)``: see the module docstring.
TermIdentity = tuple[str, "str | None", "int | None", int]


class Term:
    """One term of office of ``role``: a stop token that ends once and stays ended.

    ``end()`` is thread-safe, never blocks and may be called any number of
    times; ``ended`` is True from the first call on.  Callbacks added with
    ``add_end_callback`` run once, in the thread that ends the term (or at
    once if it has ended), and must not block either.  A bad argument
    raises ValueError naming it.
    """

    __slots__ = ("_callbacks", "_ended", "_lock", "number", "role", "seat", "session")

    def __init__(
        self,
        role: str,
        number: int,
        seat: str | None = None,
        session: int | None = None,
    ):
        if not isinstance(role, str) or not role:
            raise ValueError(f"a term needs a role name, got {role!r}")
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ValueError(f"a term's number must be an int >= 0, got {number!r}")
        if seat is not None and (not isinstance(seat, str) or not seat):
            raise ValueError(f"a term's seat must be a non-empty path or None, got {seat!r}")
        if session is not None and (isinstance(session, bool) or not isinstance(session, int)):
            raise ValueError(f"a term's session must be an int or None, got {session!r}")
        self.role = role
        self.number = number
        self.seat = seat
        self.session = session
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @classmethod
    def unelected(cls, role: str) -> Term:
        """The term a role acts under before any election: number 0, no seat.

        Passes run by hand (external-decide mode) run under it; it ends only
        when its holder ends it (the role's ``depose()``).
        """
        return cls(role, 0)

    @property
    def identity(self) -> TermIdentity:
        """``(role, seat, session, number)``: which term this is (see the module docstring)."""
        return (self.role, self.seat, self.session, self.number)

    @property
    def ended(self) -> bool:
        """True once ``end()`` was called: the holder must stop acting."""
        return self._ended.is_set()

    def end(self) -> bool:
        """End the term (thread-safe, never blocks); True if this call ended it."""
        with self._lock:
            if self._ended.is_set():
                return False
            self._ended.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._run(callback)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: forever) for the end; whether it ended."""
        return self._ended.wait(timeout)

    def add_end_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the term ends (at once, here, if it already has)."""
        with self._lock:
            if not self._ended.is_set():
                self._callbacks.append(callback)
                return
        self._run(callback)

    def _run(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("%r: an end callback failed", self)

    def __repr__(self) -> str:
        where = f" at {self.seat}" if self.seat else ""
        if self.session is not None:
            where += f" session {self.session:#x}"
        state = "ended" if self.ended else "in office"
        return f"<Term {self.role} #{self.number}{where} {state}>"
