"""Per-operation metrics: a counter and a timing for each RPC op, to statsd.

``OpMetrics.from_config(None)`` measures nothing, so the server code is the
same with and without statsd.  Metric names: ``<prefix>.rpc.<op>.calls``,
``<prefix>.rpc.<op>.errors`` and the timing ``<prefix>.rpc.<op>.time`` (ms);
and the server's message counters ``<prefix>.rpc.retried`` (a report sent
for a delayed retry) and ``<prefix>.rpc.dead_lettered``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from epum.settings import StatsdSettings

log = logging.getLogger(__name__)

#: What ``measure`` gives without a client: a ``with`` that does nothing (reusable).
_NOTHING = contextlib.nullcontext()


class OpMetrics:
    """Sends a counter and a timing per handled operation (no-op without a client)."""

    def __init__(self, client: Any = None):
        self._client = client

    @classmethod
    def from_config(cls, statsd: StatsdSettings | None) -> OpMetrics:
        """Metrics to the statsd ``statsd`` names; none when it is None."""
        if statsd is None:
            return cls(None)
        try:
            from statsd import StatsClient
        except ImportError:
            log.warning("statsd is configured but the statsd package is not installed")
            return cls(None)
        client = StatsClient(host=statsd.host, port=statsd.port, prefix=statsd.prefix)
        return cls(client)

    @property
    def measuring(self) -> bool:
        """True if ``measure`` sends anything (there is a statsd client)."""
        return self._client is not None

    def measure(self, op: str) -> contextlib.AbstractContextManager[None]:
        """Count ``op`` and time the ``with`` block; count an error if it raises."""
        if self._client is None:
            return _NOTHING
        return self._measured(op)

    @contextlib.contextmanager
    def _measured(self, op: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self._send("incr", f"rpc.{op}.errors")
            raise
        finally:
            self._send("incr", f"rpc.{op}.calls")
            self._send("timing", f"rpc.{op}.time", (time.perf_counter() - start) * 1000.0)

    def count(self, event: str) -> None:
        """Count one ``event`` of the server (``retried``, ``dead_lettered``)."""
        if self._client is not None:
            self._send("incr", f"rpc.{event}")

    def close(self) -> None:
        """Release the statsd socket."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _send(self, kind: str, *args: Any) -> None:
        try:
            getattr(self._client, kind)(*args)
        except OSError:  # a metric is never worth failing a request
            log.debug("statsd send failed", exc_info=True)
