"""The test kit's waiting helpers: tests wait on conditions, never on the clock.

``wait_until(predicate, timeout, what)`` polls a condition and returns the
first truthy value it gives, or fails the test with ``WaitTimeout`` naming
what was awaited.  ``PassCounter`` counts the passes an elected role
(decider, doctor, reaper) has run, so a test can wait for "a few more
passes" instead of sleeping through them.  ``threads_left`` is the rule of
the leaked-thread check (``tests/conftest.py``): epum's threads all carry
``EPUM_THREAD_PREFIX`` in their name, so a leaked one is found even when it
is a daemon.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Every thread epum starts is named with this prefix (the leaked-thread
#: check in ``tests/conftest.py`` relies on it).
EPUM_THREAD_PREFIX = "epum-"

#: The first pause between two polls; it doubles up to the ``interval`` cap,
#: so a condition that holds soon is seen soon and a slow one costs little.
FIRST_POLL = 0.002


class WaitTimeout(AssertionError):
    """A condition a test waited for did not hold in time (the message says which)."""


def describe(predicate: Callable[[], object]) -> str:
    """A readable name for ``predicate``: a lambda's source text, else its qualified name."""
    name = getattr(predicate, "__qualname__", None) or repr(predicate)
    if name.endswith("<lambda>"):
        try:
            return " ".join(inspect.getsource(predicate).split())
        except (OSError, TypeError):
            return name
    return name


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 5.0,
    what: str | Callable[[], object] | None = None,
    *,
    interval: float = 0.05,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Fails with ``WaitTimeout`` after ``timeout`` seconds, naming what was
    awaited: ``what`` (a string, or a function called only then, to show the
    state at the time), else the predicate's source; the last value seen is
    added.  An exception from the predicate propagates at once.  The pause
    between polls grows from ``FIRST_POLL`` to ``interval`` seconds.
    Raises ValueError for a ``timeout`` or ``interval`` that is not positive.
    """
    if not timeout > 0:
        raise ValueError(f"wait_until: timeout must be positive, got {timeout!r}")
    if not interval > 0:
        raise ValueError(f"wait_until: interval must be positive, got {interval!r}")
    deadline = time.monotonic() + timeout
    pause = min(FIRST_POLL, interval)
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            break
        # the pause between polls of the condition, not time the test needs to pass
        time.sleep(min(pause, left))
        pause = min(pause * 2, interval)
    awaited = what() if callable(what) else what
    raise WaitTimeout(
        f"timed out after {timeout:g}s waiting for {awaited or describe(predicate)}"
        f" (last value: {value!r})"
    )


class PassCounter:
    """Counts the passes a ``LeaderLoop`` role runs from now on.

    It wraps the role's ``run_pass`` on that one object (the class is left
    alone); ``wait_for_more(n)`` returns once ``n`` more passes than at the
    call have finished, so "several passes of the decider" is a condition.
    """

    def __init__(self, role: Any):
        self.role = role
        self._cond = threading.Condition()
        self._passes = 0
        inner = role.run_pass

        def counted(now: float) -> None:
            try:
                inner(now)
            finally:
                with self._cond:
                    self._passes += 1
                    self._cond.notify_all()

        role.run_pass = counted

    @property
    def passes(self) -> int:
        """Passes finished since the counter was made."""
        with self._cond:
            return self._passes

    def wait_for_more(self, n: int, timeout: float = 10.0) -> int:
        """Wait until ``n`` more passes have finished; the total. WaitTimeout if not in time."""
        with self._cond:
            target = self._passes + n
            if not self._cond.wait_for(lambda: self._passes >= target, timeout):
                raise WaitTimeout(
                    f"timed out after {timeout:g}s waiting for {n} more passes of "
                    f"{getattr(self.role, 'name', self.role)} ({target - self._passes} missing)"
                )
            return self._passes


def is_epum_thread(thread: threading.Thread) -> bool:
    """True for a thread epum started (by its name, ``EPUM_THREAD_PREFIX``)."""
    return thread.name.startswith(EPUM_THREAD_PREFIX)


def threads_left(before: set[threading.Thread], settle: float) -> list[threading.Thread]:
    """The threads started since ``before`` was taken that should have ended, and have not.

    Those are epum's threads (daemon or not) and every non-daemon thread;
    other daemon threads belong to libraries (kazoo's and kombu's workers)
    that end them on their own schedule and are ignored.  Each is joined
    for what is left of ``settle`` seconds in all; the ones still alive
    after that are returned.
    """
    suspects = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and (is_epum_thread(t) or not t.daemon)
    ]
    deadline = time.monotonic() + settle
    for thread in suspects:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return [t for t in suspects if t.is_alive()]
