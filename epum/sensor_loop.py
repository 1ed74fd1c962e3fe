"""Runs the sensor collector in the decider leader's term, in a thread of its own.

Why the decider's term and not an elected role of its own: the collector
writes what the decider reads, and one leader per worker pool is enough
for both; it runs in its own thread, so a slow metrics server never delays
a decision pass.  The thread starts when the decider is elected and stops
when that term ends (a later term starts a new collector).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from epum.term import Term

log = logging.getLogger(__name__)

#: Seconds between the collector's looks for due domains; a domain is
#: polled only once its own sample_period has passed.
DEFAULT_TICK = 1.0

#: How long ``stop_collector`` waits for a collector whose term ended: a
#: poll under way ends within the collector's query timeout.
STOP_WAIT = 3.0


def start_collector(
    term: Term, make_collector: Callable[[], Any], tick: float = DEFAULT_TICK
) -> threading.Thread:
    """Start a daemon thread polling ``make_collector()``'s due domains until ``term`` ends.

    The loop is ``while not term.wait(tick): collector.poll_due()``: the
    first look is at once, every failure of ``poll_due`` is logged and the
    loop goes on, and the collector is closed when the term ends.  Raises
    ValueError for a tick that is not positive.
    """
    if not tick > 0:
        raise ValueError(f"the collector's tick must be positive, got {tick!r}")

    def run() -> None:
        collector = make_collector()
        try:
            while not term.ended:
                try:
                    collector.poll_due()
                except Exception:
                    log.exception("sensor collector pass failed; carrying on")
                if term.wait(tick):
                    break
        finally:
            collector.close()
            log.info("sensor collector stopped (term %s ended)", term.number)

    thread = threading.Thread(target=run, name=f"epum-sensors-{term.number}", daemon=True)
    thread.start()
    return thread


def stop_collector(thread: threading.Thread, wait: float = STOP_WAIT) -> bool:
    """Wait up to ``wait`` seconds for a collector whose term has ended; True if it stopped.

    A collector still polling then is logged and left to end on its own
    (its thread is a daemon, and it acts on nothing once its term is over).
    """
    thread.join(wait)
    if thread.is_alive():
        log.warning(
            "sensor collector %s still polling %.1f s after its term ended", thread.name, wait
        )
        return False
    return True
