"""A base for elected roles that act in passes: the decider, doctor and reaper."""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class LeaderLoop(abc.ABC):
    """An elected role that runs ``run_pass(now)`` every ``interval`` seconds.

    It implements the store's ``Leader`` protocol.  Its states and
    transitions:

    - **follower** (initial): not leading; ``is_leader`` and ``deposed`` are
      False.  ``run_pass`` may still be called directly (external-decide
      mode in tests).
    - follower -> **leader**: the store calls ``inaugurate()`` in a thread of
      its own.  ``on_elected()`` runs once, then a first pass at once, then a
      pass every ``interval`` seconds, or at once after ``wake()``.  A pass
      that raises is logged and the loop goes on; so does a failing
      ``on_elected()``.
    - leader -> **deposed**: ``depose()`` (from any thread, never blocks).
      ``deposed`` is True from then on: a long pass should check it and
      return early.  No new pass starts.
    - deposed -> **follower**: ``inaugurate()`` returns once the pass under
      way (if any) is over.  A later ``inaugurate()`` starts a new term.

    ``depose()`` while not leading only sets ``deposed`` (a pass run by hand
    then bails out early); the next ``inaugurate()`` clears it.  Passes are
    never run concurrently by the loop itself; whoever calls ``run_pass`` by
    hand must not do so while the loop leads.
    """

    def __init__(self, name: str, interval: float, clock: Callable[[], float] = time.time):
        self.name = name
        self.interval = interval
        self.clock = clock
        self._deposed = threading.Event()
        # Set by wake() and by depose(): whatever ends the wait between passes.
        self._wakeup = threading.Event()
        self._lock = threading.Lock()
        self._leading = False

    @abc.abstractmethod
    def run_pass(self, now: float) -> None:
        """Do one round of the role's work as of ``now`` (seconds since the epoch)."""

    def on_elected(self) -> None:
        """Run once at the start of each term, before the first pass (default: nothing)."""

    @property
    def is_leader(self) -> bool:
        """True while ``inaugurate()`` runs and no ``depose()`` came."""
        with self._lock:
            return self._leading and not self._deposed.is_set()

    @property
    def deposed(self) -> bool:
        """True from ``depose()`` until the next ``inaugurate()``: passes should stop early."""
        return self._deposed.is_set()

    def inaugurate(self) -> None:
        """Lead until ``depose()`` is called, then return (after the pass under way).

        Raises RuntimeError if this loop is already leading in another thread.
        """
        with self._lock:
            if self._leading:
                raise RuntimeError(f"{self.name} is already leading")
            self._leading = True
            self._deposed.clear()
            self._wakeup.clear()
        log.info("%s: elected", self.name)
        try:
            self._guarded(self.on_elected, "on_elected")
            while not self._deposed.is_set():
                # Cleared before the pass: a wake() during the pass means the
                # pass may have missed something, so another one follows at once.
                self._wakeup.clear()
                self._guarded(lambda: self.run_pass(self.clock()), "pass")
                if self._deposed.is_set():
                    break
                self._wakeup.wait(self.interval)
        finally:
            with self._lock:
                self._leading = False
            log.info("%s: deposed, back to follower", self.name)

    def depose(self) -> None:
        """Stop leading as soon as the pass under way allows; never blocks, thread-safe."""
        self._deposed.set()
        self._wakeup.set()

    def wake(self) -> None:
        """Make the leading loop run a pass now (a no-op effect while not leading)."""
        self._wakeup.set()

    def _guarded(self, step: Callable[[], None], what: str) -> None:
        try:
            step()
        except Exception:
            log.exception("%s: %s failed; carrying on", self.name, what)
