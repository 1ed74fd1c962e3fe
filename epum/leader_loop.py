"""A base for elected roles that act in passes: the decider, doctor and reaper."""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable

from epum.errors import StoreUnavailableError
from epum.term import Term

log = logging.getLogger(__name__)


class LeaderLoop(abc.ABC):
    """An elected role that runs ``run_pass(now)`` every ``interval`` seconds.

    It implements the store's ``Leader`` protocol.  ``term`` is the term the
    role acts under; passes take it when they start and check
    ``term.ended`` (a long pass between steps), so a pass of one term never
    acts once that term is over.  States and transitions:

    - **follower** (initial): not leading; ``is_leader`` and ``deposed`` are
      False.  ``term`` is the role's *unelected* term
      (``Term.unelected``): passes called by hand (external-decide mode in
      tests) run under it, and it ends only on ``depose()``.
    - follower -> **leader**: the election calls ``inaugurate(term)`` in a
      thread of its own with a new term.  If that term has already ended
      (deposed before the role got to it), ``inaugurate`` returns at once
      and nothing runs.  Otherwise ``on_elected()`` runs once, then a first
      pass at once, then a pass every ``interval`` seconds, or at once after
      ``wake()``.  A pass that raises is logged and the loop goes on; so
      does a failing ``on_elected()``.
    - leader -> **deposed**: the term ends (the election's ``term.end()``,
      or ``depose()`` here, from any thread, never blocking).  ``deposed``
      is True from then on; no new pass starts.
    - deposed -> **follower**: ``inaugurate`` returns once the pass under
      way (if any) is over and ``on_term_over()`` has run.  ``term`` stays
      the ended term, so passes called by hand bail out, until the next
      ``inaugurate(term)`` starts a new term: it never inherits the old
      term's stop, and ending the old term again later does nothing to it.

    Passes are never run concurrently by the loop itself; whoever calls
    ``run_pass`` by hand must not do so while the loop leads.
    """

    def __init__(self, name: str, interval: float, clock: Callable[[], float] = time.time):
        self.name = name
        self.interval = interval
        self.clock = clock
        # Set by wake() and by the end of the term: whatever ends the wait between passes.
        self._wakeup = threading.Event()
        self._lock = threading.Lock()
        self._term = Term.unelected(name)
        self._leading = False

    @abc.abstractmethod
    def run_pass(self, now: float) -> None:
        """Do one round of the role's work as of ``now`` (seconds since the epoch).

        It runs under ``self.term`` (read it once, at the start) and should
        stop early once that term has ended.
        """

    def on_elected(self) -> None:
        """Run once at the start of each term, before the first pass (default: nothing)."""

    def on_term_over(self) -> None:
        """Run once when a term's loop is over, before ``inaugurate`` returns (default: nothing).

        It runs after ``on_elected`` ran, even if that failed; it is where a
        role waits for the helpers of its term to stop.
        """

    @property
    def term(self) -> Term:
        """The term the role acts under now (see the class docstring)."""
        with self._lock:
            return self._term

    @property
    def is_leader(self) -> bool:
        """True while ``inaugurate(term)`` runs and ``term`` has not ended."""
        with self._lock:
            return self._leading and not self._term.ended

    @property
    def deposed(self) -> bool:
        """True once the current ``term`` has ended: passes should stop early."""
        return self.term.ended

    def inaugurate(self, term: Term) -> None:
        """Lead until ``term`` ends, then return (after the pass under way).

        Returns at once if ``term`` has already ended.  Raises RuntimeError
        if this loop is already leading in another thread, and ValueError if
        ``term`` is not a ``Term``.
        """
        if not isinstance(term, Term):
            raise ValueError(f"{self.name}: inaugurate needs a Term, got {term!r}")
        with self._lock:
            if self._leading:
                raise RuntimeError(f"{self.name} is already leading")
            self._leading = True
            self._term = term
            self._wakeup.clear()
        term.add_end_callback(self._wakeup.set)
        try:
            if term.ended:
                log.info("%s: term %s ended before it began", self.name, term.number)
                return
            log.info("%s: elected (term %s)", self.name, term.number)
            self._guarded(self.on_elected, "on_elected")
            while not term.ended:
                # Cleared before the pass: a wake() during the pass means the
                # pass may have missed something, so another one follows at once.
                self._wakeup.clear()
                self._guarded(lambda: self.run_pass(self.clock()), "pass")
                if term.ended:
                    break
                self._wakeup.wait(self.interval)
            self._guarded(self.on_term_over, "on_term_over")
            log.info("%s: deposed, back to follower", self.name)
        finally:
            with self._lock:
                self._leading = False

    def depose(self) -> None:
        """End the current term as soon as the pass under way allows; never blocks, thread-safe.

        While not leading this ends the unelected term (passes called by
        hand then bail out); an election's next term is not affected.
        """
        self.term.end()

    def wake(self) -> None:
        """Make the leading loop run a pass now (a no-op effect while not leading)."""
        self._wakeup.set()

    def _guarded(self, step: Callable[[], None], what: str) -> None:
        try:
            step()
        except StoreUnavailableError as exc:  # an outage or a shutdown: no trace to show
            log.warning(
                "%s: %s stopped, the store is unavailable (%s); carrying on", self.name, what, exc
            )
        except Exception:
            log.exception("%s: %s failed; carrying on", self.name, what)
