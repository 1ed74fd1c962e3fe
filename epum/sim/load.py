"""A simulated workload that a real metrics source can read.

``SimulatedLoad`` spreads a demand (units of work) evenly over the running
instances of a domain and exposes each instance's share as the
prometheus-client gauge ``epum_sim_instance_load{instance_id=...}`` on an
HTTP endpoint of its own.  A Prometheus server scraping that endpoint is
then a real sensor source for a sensor domain (``prometheus_instance_query:
epum_sim_instance_load``, ``prometheus_instance_label: instance_id``,
``prometheus_instance_match: instance_id``): raise the demand and the
domain grows, as each added instance lowers the load of every one; drop it
and the domain shrinks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Gauge, start_http_server

#: The gauge's name and its label.
GAUGE_NAME = "epum_sim_instance_load"
LABEL = "instance_id"


class SimulatedLoad:
    """A demand shared by the running instances, served as one gauge per instance.

    ``set_demand(units)`` changes the demand; ``update(instance_ids)`` says
    which instances run now (others lose their series), and each one's
    gauge becomes ``demand / len(instance_ids)``.  ``serve()`` starts the
    endpoint on ``host:port`` (port 0: a free one); ``close()`` stops it.
    Thread-safe.  A negative demand raises ValueError.
    """

    def __init__(self, demand: float = 0.0) -> None:
        self.registry = CollectorRegistry()
        self._gauge = Gauge(
            GAUGE_NAME, "simulated load of one instance", [LABEL], registry=self.registry
        )
        self._lock = threading.Lock()
        self._instances: set[str] = set()
        self._demand = 0.0
        self._server = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        self.set_demand(demand)

    @property
    def demand(self) -> float:
        """The units of work to be shared."""
        return self._demand

    def set_demand(self, units: float) -> None:
        """Change the demand (>= 0) and every instance's gauge with it."""
        if not units >= 0:
            raise ValueError(f"the demand must be a number >= 0, got {units!r}")
        with self._lock:
            self._demand = float(units)
            self._publish()

    def update(self, instance_ids: Iterable[str]) -> None:
        """The instances running now share the demand; the others' series go away."""
        with self._lock:
            current = set(instance_ids)
            for gone in self._instances - current:
                self._gauge.remove(gone)
            self._instances = current
            self._publish()

    def load_of(self, instance_id: str) -> float | None:
        """The load ``instance_id`` reports now, or None when it does not run."""
        with self._lock:
            if instance_id not in self._instances:
                return None
            return self._demand / len(self._instances)

    def _publish(self) -> None:
        if not self._instances:
            return
        share = self._demand / len(self._instances)
        for instance_id in self._instances:
            self._gauge.labels(instance_id).set(share)

    def serve(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Serve the gauges at ``http://host:port/metrics``; return the port."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = self._server.server_port
        return self.port

    def close(self) -> None:
        """Stop serving (a no-op when not serving)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(5)
            self._server = None
