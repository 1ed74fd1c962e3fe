"""A worker's Prometheus metrics: one registry, filled by observing the parts.

Nothing here imports kombu or kazoo, so any layer may use it.  The worker
builds one ``WorkerMetrics`` and hands out adapters that observe its parts
without changing them:

- ``OpObserver`` stands in for the RPC server's ``OpMetrics`` (same
  ``measure`` / ``count`` / ``close``), forwards to it (statsd stays as it
  is) and records per-op requests, errors, latency, messages in hand,
  heartbeats and reports ingested, retried and dead-lettered messages;
- ``StatsdObserver`` stands in for the facade's statsd client (``gauge``,
  ``timing``, ``incr``, ``close``), forwards to it and records the decider's
  pass duration;
- ``CountingProvisioner`` wraps the provisioner client and counts launches
  and terminations;
- a scrape-time collector reads domains and instances by state and health,
  leadership per role and the ZooKeeper connection from callables given by
  the worker (``StateProbe``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

#: The ops whose requests are a heartbeat or a provisioner report.
HEARTBEAT_OPS = frozenset({"heartbeat", "ou_heartbeat"})
REPORT_OPS = frozenset({"instance_info"})
#: The elected roles.
ROLES = ("decider", "doctor", "reaper")


@dataclass
class StateProbe:
    """What the scrape-time collector reads; each callable is called at every scrape.

    ``instances`` yields ``(state, health)`` per instance record and
    ``domains`` the number of domains; ``leading(role)`` says whether this
    worker leads ``role``; ``zookeeper_connected`` is None without ZooKeeper.
    """

    domains: Callable[[], int] = lambda: 0
    instances: Callable[[], Iterable[tuple[str, str]]] = lambda: ()
    leading: Callable[[str], bool] = lambda role: False
    zookeeper_connected: Callable[[], bool] | None = None
    roles: tuple[str, ...] = field(default=ROLES)


class _StateCollector(Collector):
    """Reads the probe at scrape time; a probe that fails leaves its family out."""

    def __init__(self, probe: StateProbe):
        self.probe = probe

    def collect(self) -> Iterator[GaugeMetricFamily]:
        probe = self.probe
        try:
            yield GaugeMetricFamily("epum_domains", "Domains in the store", value=probe.domains())
            by_state = GaugeMetricFamily(
                "epum_instances", "Instance records by state and health", labels=["state", "health"]
            )
            for (state, health), n in sorted(Tally(probe.instances()).items()):
                by_state.add_metric([state, health], n)
            yield by_state
        except Exception as exc:  # a store outage must not break the scrape
            log.warning("metrics: could not read the store: %s", exc)
        leader = GaugeMetricFamily(
            "epum_leader", "1 while this worker leads the role", labels=["role"]
        )
        for role in probe.roles:
            leader.add_metric([role], 1.0 if probe.leading(role) else 0.0)
        yield leader
        if probe.zookeeper_connected is not None:
            yield GaugeMetricFamily(
                "epum_zookeeper_connected",
                "1 while the ZooKeeper session is connected",
                value=1.0 if probe.zookeeper_connected() else 0.0,
            )


class WorkerMetrics:
    """The metric families of one worker, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("epum_rpc_requests", "RPC requests handled", ["op"], registry=r)
        self.errors = Counter("epum_rpc_errors", "RPC requests that failed", ["op"], registry=r)
        self.latency = Histogram(
            "epum_rpc_duration_seconds", "Time to handle an RPC request", ["op"], registry=r
        )
        self.in_hand = Gauge("epum_rpc_in_hand", "Messages being handled now", registry=r)
        self.server_events = Counter(
            "epum_rpc_messages",
            "Messages retried later or dead-lettered, by event",
            ["event"],
            registry=r,
        )
        self.heartbeats = Counter("epum_heartbeats", "Heartbeats ingested", registry=r)
        self.reports = Counter(
            "epum_instance_reports", "instance_info reports ingested", registry=r
        )
        self.decider_pass = Histogram(
            "epum_decider_pass_seconds", "Duration of a full decider pass", registry=r
        )
        self.launches = Counter("epum_launches", "Instances asked of the provisioner", registry=r)
        self.terminations = Counter(
            "epum_terminations", "Instances the provisioner was told to terminate", registry=r
        )
        for event in ("retried", "dead_lettered"):
            self.server_events.labels(event)
        self._children: dict[str, tuple[Any, Any, Any]] = {}

    def observe_state(self, probe: StateProbe) -> None:
        """Read ``probe`` at every scrape (domains, instances, leadership, ZooKeeper)."""
        self.registry.register(_StateCollector(probe))

    def measure(self, op: str) -> contextlib.AbstractContextManager[None]:
        """Count ``op``, time it, count an error if it raises; one more message in hand
        (a context manager for one ``with`` block)."""
        children = self._children.get(op)
        if children is None:
            children = self._children[op] = self._op_children(op)
        return _Measurement(self, op, *children)

    def _op_children(self, op: str) -> tuple[Any, Any, Any]:
        """The metrics one ``op`` records into (labelled once, not on every request)."""
        kind = (
            self.heartbeats if op in HEARTBEAT_OPS else self.reports if op in REPORT_OPS else None
        )
        return self.requests.labels(op), self.latency.labels(op), kind

    def count(self, event: str) -> None:
        """Count one server ``event`` (``retried``, ``dead_lettered``)."""
        self.server_events.labels(event).inc()


class _Measurement:
    """One ``WorkerMetrics.measure`` block (a class, not a generator: it runs per message)."""

    __slots__ = ("kind", "latency", "metrics", "op", "requests", "start")

    def __init__(self, metrics: WorkerMetrics, op: str, requests: Any, latency: Any, kind: Any):
        self.metrics, self.op = metrics, op
        self.requests, self.latency, self.kind = requests, latency, kind

    def __enter__(self) -> None:
        self.start = time.perf_counter()
        self.metrics.in_hand.inc()

    def __exit__(self, error: Any, exc: Any, trace: Any) -> None:
        self.metrics.in_hand.dec()
        if error is not None:
            self.metrics.errors.labels(self.op).inc()
        self.requests.inc()
        self.latency.observe(time.perf_counter() - self.start)
        if self.kind is not None:
            self.kind.inc()


@contextlib.contextmanager
def _measured_in_both(
    first: contextlib.AbstractContextManager[None], second: contextlib.AbstractContextManager[None]
) -> Iterator[None]:
    with first, second:
        yield


class OpObserver:
    """The RPC server's metrics hook: records into ``metrics`` and forwards to ``inner``."""

    def __init__(self, metrics: WorkerMetrics, inner: Any = None):
        self.metrics = metrics
        self.inner = inner

    def measure(self, op: str) -> contextlib.AbstractContextManager[None]:
        """Like ``OpMetrics.measure``, recorded in both."""
        if self.inner is None or not getattr(self.inner, "measuring", True):
            return self.metrics.measure(op)
        return _measured_in_both(self.metrics.measure(op), self.inner.measure(op))

    def count(self, event: str) -> None:
        """Like ``OpMetrics.count``, recorded in both."""
        self.metrics.count(event)
        if self.inner is not None:
            self.inner.count(event)

    def close(self) -> None:
        """Close the inner hook (its statsd socket)."""
        if self.inner is not None:
            self.inner.close()


class StatsdObserver:
    """Stands in for a statsd client: records the decider's pass, forwards everything."""

    def __init__(self, metrics: WorkerMetrics, inner: Any = None):
        self.metrics = metrics
        self.inner = inner

    def timing(self, stat: str, ms: float, *args: Any, **kwargs: Any) -> None:
        """Record ``decider.pass`` (milliseconds) as seconds; forward."""
        if stat == "decider.pass":
            self.metrics.decider_pass.observe(ms / 1000.0)
        self._forward("timing", stat, ms, *args, **kwargs)

    def gauge(self, stat: str, value: float, *args: Any, **kwargs: Any) -> None:
        """Forward a gauge (domains are read at scrape time instead)."""
        self._forward("gauge", stat, value, *args, **kwargs)

    def incr(self, stat: str, *args: Any, **kwargs: Any) -> None:
        """Forward a counter."""
        self._forward("incr", stat, *args, **kwargs)

    def close(self) -> None:
        """Close the inner client."""
        if self.inner is not None:
            self.inner.close()

    def _forward(self, kind: str, *args: Any, **kwargs: Any) -> None:
        if self.inner is not None:
            getattr(self.inner, kind)(*args, **kwargs)


class CountingProvisioner:
    """A provisioner client that counts the launches and terminations sent through it."""

    def __init__(self, metrics: WorkerMetrics, inner: Any):
        self.metrics = metrics
        self.inner = inner

    def provision(self, launch_id: str, instance_ids: list[str], *args: Any, **kwargs: Any) -> Any:
        """Forward, then count one launch per instance id."""
        result = self.inner.provision(launch_id, instance_ids, *args, **kwargs)
        self.metrics.launches.inc(len(instance_ids))
        return result

    def terminate_nodes(self, nodes: list[str], *args: Any, **kwargs: Any) -> Any:
        """Forward, then count one termination per node."""
        result = self.inner.terminate_nodes(nodes, *args, **kwargs)
        self.metrics.terminations.inc(len(nodes))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
