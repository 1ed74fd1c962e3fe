"""A statsd server for a benchmark: it hears the timings workers send, as they send them.

A worker with a ``statsd`` section sends, at the end of every full decider
pass, ``<prefix>.decider.pass:<ms>|ms`` over UDP (``epum.decider``).
``StatsdSink`` listens on a free local port in a thread of its own and
keeps every timing it hears with the time it arrived
(``time.monotonic()``), so a benchmark learns both how long each pass took
(the worker's own measure) and when it ended, without asking the worker
anything.  Counters and gauges are ignored.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """One timing heard: its full stat name, milliseconds, and when it arrived."""

    stat: str
    ms: float
    arrived: float


def parse_timings(packet: str, arrived: float) -> list[Timing]:
    """The timings (``name:value|ms`` lines) in one statsd packet; other lines skipped."""
    found = []
    for line in packet.splitlines():
        name, colon, rest = line.partition(":")
        value, bar, kind = rest.partition("|")
        if not (colon and bar) or kind.split("|")[0] != "ms":
            continue
        try:
            found.append(Timing(name, float(value), arrived))
        except ValueError:
            continue
    return found


class StatsdSink:
    """Timings sent to ``127.0.0.1:port`` over UDP, kept in arrival order (a context manager).

    ``config(prefix)`` is the ``statsd`` section that points a worker here;
    ``wait_for(stat, count, timeout)`` returns the ``count``-th timing of
    ``stat`` once it has arrived.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._timings: list[Timing] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._listen, name="statsd-sink", daemon=True)

    def __enter__(self) -> StatsdSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def config(self, prefix: str) -> dict[str, Any]:
        """The ``statsd`` settings section that makes a worker send here under ``prefix``."""
        return {"host": "127.0.0.1", "port": self.port, "prefix": prefix}

    def timings(self, stat: str) -> list[Timing]:
        """Every timing of ``stat`` heard so far, in arrival order."""
        with self._cond:
            return [t for t in self._timings if t.stat == stat]

    def wait_for(self, stat: str, count: int, timeout: float) -> Timing:
        """The ``count``-th timing of ``stat`` (1-based) once it has arrived;
        RuntimeError after ``timeout`` seconds without it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                heard = [t for t in self._timings if t.stat == stat]
                if len(heard) >= count:
                    return heard[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise RuntimeError(
                        f"heard {len(heard)} timings of {stat}, not {count}, within {timeout:g} s"
                    )
                self._cond.wait(left)

    def close(self) -> None:
        """Stop listening (the timings heard stay readable)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(5)
        self._sock.close()

    def _listen(self) -> None:
        while not self._closed:
            try:
                packet = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            found = parse_timings(packet.decode(errors="replace"), time.monotonic())
            if found:
                with self._cond:
                    self._timings.extend(found)
                    self._cond.notify_all()
