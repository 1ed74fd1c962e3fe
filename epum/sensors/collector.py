"""The sensor collector: polls each domain's metric source on its sample period.

Off the decision path: the decider never waits for a metrics server.  The
collector fetches readings and stores them, stamped with the time they were
taken, as the domain's ``sensor_data`` and each instance's ``sensor_data``;
engines read them from their state, and a new decider leader starts with
what is stored.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from epum.errors import NotFoundError, WriteConflictError
from epum.sensors.credentials import SensorCredentials
from epum.sensors.factory import SENSOR_TYPE_KEY, get_sensor_source, is_polled
from epum.sensors.polled import (
    DEFAULT_SAMPLE_PERIOD,
    MIN_SAMPLE_PERIOD,
    CredentialsLookup,
    PolledSensorSource,
    PollTarget,
    Readings,
    sample_period,
    stored_reading,
)

__all__ = [
    "DEFAULT_SAMPLE_PERIOD",
    "MIN_SAMPLE_PERIOD",
    "MISSING_KEY",
    "PollFailure",
    "SensorCollector",
]

log = logging.getLogger(__name__)

#: A query taking longer than this (seconds) counts as failed.
DEFAULT_QUERY_TIMEOUT = 10.0

#: The entry of a domain's ``sensor_data`` that says its readings are missing:
#: ``{"source": sensor_type, "since": epoch seconds, "error": text}``; it is
#: there from the first failed poll until the next one that stores readings.
MISSING_KEY = "_missing"

SourceFactory = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class PollFailure:
    """A domain whose last poll failed: which source, since when, and why."""

    owner: str
    domain_id: str
    sensor_type: str
    since: float
    error: str


class SensorCollector:
    """Polls the sources of every domain whose engine conf names a polled ``sensor_type``.

    How it is run: by the decider leader, in a thread of its term, as
    ``while not term_ended.wait(tick): collector.poll_due()``, and
    ``close()`` when the term ends (a later term makes a new collector).
    ``poll_due`` may also be called by tests with the time they choose.

    Which domains are polled is read from their configs, again only for a
    domain whose ``change_stamp`` changed (a look at 10,000 unchanged
    domains decodes none).  Per domain: polled when ``sample_period``
    seconds (default 90, at least ``min_period``) have passed since its
    last poll was started.  Each poll runs in a thread of a pool, so one
    slow source never delays the others;
    ``poll_due`` returns after at most ``query_timeout`` seconds (plus the
    store writes).  A poll still running then is counted as failed, its late
    answer is dropped, and the domain is not polled again until it ends.  A
    failure is logged with the domain and the source, remembered in
    ``failures()`` (since when) and retried at the next period; nothing a
    source does raises out of ``poll_due``.

    Readings are written with ``DomainStore.set_domain_sensor_data`` (the
    domain's metrics, each ``{"Series": [...], "time": taken_at}``, merged
    over the metrics stored before, so a metric not read this time keeps
    its older, timestamped reading) and into each instance record's
    ``sensor_data`` the same way (compare-and-set, retried on conflict).

    A failed poll is also written into the domain's ``sensor_data`` as
    ``MISSING_KEY`` (``_missing``: source, since, error), so
    ``describe_domain`` says which readings are missing and since when, and
    a collector of a later term keeps the first failure's ``since``.  A
    poll that stores readings removes it.
    """

    def __init__(
        self,
        store: Any,
        clock: Callable[[], float] = time.time,
        source_factory: SourceFactory | None = None,
        *,
        credentials: SensorCredentials | None = None,
        credentials_lookup: CredentialsLookup | None = None,
        min_period: float = MIN_SAMPLE_PERIOD,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
        max_workers: int = 8,
    ):
        if not min_period > 0 or not query_timeout > 0:
            raise ValueError("min_period and query_timeout must be positive")
        self.store = store
        self.clock = clock
        self.source_factory = source_factory or (lambda conf: get_sensor_source(conf, credentials))
        self.credentials_lookup = credentials_lookup
        self.min_period = min_period
        self.query_timeout = query_timeout
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="epum-sensor"
        )
        self._lock = threading.Lock()
        self._last_started: dict[tuple[str, str], float] = {}
        self._running: dict[tuple[str, str], concurrent.futures.Future] = {}
        self._failures: dict[tuple[str, str], PollFailure] = {}
        # (owner, domain_id) -> (change stamp, polled engine conf or None), as last read
        self._confs: dict[tuple[str, str], tuple[Any, Mapping[str, Any] | None]] = {}
        #: Which domains to poll, by ``(owner, domain_id)`` (a decider's share); None: all.
        self.owns: Callable[[tuple[str, str]], bool] | None = None

    def close(self) -> None:
        """Stop the pool without waiting for polls still running (their answers are dropped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def failures(self) -> dict[tuple[str, str], PollFailure]:
        """The domains whose last poll failed, by (owner, domain_id)."""
        with self._lock:
            return dict(self._failures)

    def _polled_conf(self, domain: Any) -> Mapping[str, Any] | None:
        """The domain's engine conf if it is live and names a polled source, else None;
        read again only when the domain's change stamp says it may have changed."""
        stamp = domain.change_stamp()
        kept = self._confs.get(domain.key)
        if stamp is not None and kept is not None and kept[0] == stamp:
            return kept[1]
        conf = None
        if not domain.is_removed():
            conf = domain.get_all_config().get("engine_conf") or {}
            conf = conf if is_polled(conf) else None
        self._confs[domain.key] = (stamp, conf)
        return conf

    def _due(self, now: float) -> list[tuple[Any, Mapping[str, Any], float]]:
        due = []
        seen = set()
        for domain in self.store.get_all_domains():
            if self.owns is not None and not self.owns(domain.key):
                continue
            seen.add(domain.key)
            try:
                conf = self._polled_conf(domain)
            except Exception:
                log.exception("sensor collector: cannot read domain %s", domain.key)
                continue
            if conf is None:
                continue
            period = sample_period(conf, self.min_period)
            last = self._last_started.get(domain.key)
            with self._lock:
                running = domain.key in self._running
            if running or (last is not None and now - last < period):
                continue
            due.append((domain, conf, period))
        for key in self._confs.keys() - seen:  # gone, or no longer this collector's
            del self._confs[key]
        return due

    def poll_due(self, now: float | None = None) -> list[tuple[str, str]]:
        """Poll every due domain; return the (owner, domain_id) of those stored."""
        now = self.clock() if now is None else now
        futures: dict[concurrent.futures.Future, tuple[Any, str]] = {}
        for domain, conf, period in self._due(now):
            sensor_type = str(conf.get(SENSOR_TYPE_KEY))
            self._last_started[domain.key] = now
            try:
                future = self._pool.submit(self._collect, domain, conf, period, now)
            except RuntimeError:  # closed
                break
            with self._lock:
                self._running[domain.key] = future
            future.add_done_callback(lambda _f, key=domain.key: self._finished(key))
            futures[future] = (domain, sensor_type)
        if not futures:
            return []
        done, late = concurrent.futures.wait(futures, timeout=self.query_timeout)
        stored = []
        for future in late:
            domain, sensor_type = futures[future]
            self._failed(domain, sensor_type, now, f"no answer within {self.query_timeout} s")
        for future in done:
            domain, sensor_type = futures[future]
            exc = future.exception()
            if exc is not None:
                self._failed(domain, sensor_type, now, f"{type(exc).__name__}: {exc}")
                continue
            try:
                self._store(domain, future.result(), now)
            except Exception as store_exc:
                self._failed(domain, sensor_type, now, f"storing readings: {store_exc}")
                continue
            with self._lock:
                self._failures.pop(domain.key, None)
            stored.append(domain.key)
        return stored

    def _finished(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._running.pop(key, None)

    def _collect(self, domain: Any, conf: Mapping[str, Any], period: float, now: float) -> Readings:
        source = self.source_factory(conf)
        if not isinstance(source, PolledSensorSource):
            return Readings()
        target = PollTarget(
            owner=domain.owner,
            domain_id=domain.domain_id,
            instances=domain.get_instances(),
            now=now,
            sample_period=period,
            credentials_lookup=self.credentials_lookup,
        )
        return source.collect(target, self.query_timeout)

    def _failed(self, domain: Any, sensor_type: str, now: float, error: str) -> None:
        log.warning(
            "sensor collector: domain %s/%s, source %s: %s (retried in the next period)",
            domain.owner,
            domain.domain_id,
            sensor_type,
            error,
        )
        with self._lock:
            previous = self._failures.get(domain.key)
        try:
            data = dict(domain.get_domain_sensor_data())
        except Exception:
            log.exception("sensor collector: cannot read domain %s", domain.key)
            data = {}
        stored = data.get(MISSING_KEY)
        since = now
        if previous is not None:
            since = previous.since
        elif isinstance(stored, Mapping) and isinstance(stored.get("since"), (int, float)):
            since = float(stored["since"])
        with self._lock:
            self._failures[domain.key] = PollFailure(
                domain.owner, domain.domain_id, sensor_type, since, error
            )
        data[MISSING_KEY] = {"source": sensor_type, "since": since, "error": error}
        try:
            domain.set_domain_sensor_data(data)
        except Exception:
            log.exception("sensor collector: cannot store the failure of %s", domain.key)

    def _store(self, domain: Any, readings: Readings, now: float) -> None:
        data = dict(domain.get_domain_sensor_data())
        if readings.domain or MISSING_KEY in data:
            data.pop(MISSING_KEY, None)
            data.update({m: stored_reading(s, now) for m, s in readings.domain.items()})
            domain.set_domain_sensor_data(data)
        for instance_id, metrics in readings.instances.items():
            fresh = {m: stored_reading(s, now) for m, s in metrics.items()}
            self._store_instance(domain, instance_id, fresh)

    @staticmethod
    def _store_instance(
        domain: Any, instance_id: str, fresh: dict[str, Any], attempts: int = 5
    ) -> None:
        # the sensors package may not import the store (the import contract),
        # so this is the compare-and-set loop of update_instance_with_retry
        for _ in range(attempts):
            inst = domain.get_instance(instance_id)
            if inst is None:
                return
            try:
                domain.update_instance(
                    inst.replace(sensor_data={**(inst.sensor_data or {}), **fresh})
                )
                return
            except NotFoundError:
                return
            except WriteConflictError:
                continue
        log.warning("sensor collector: instance %s kept changing; reading dropped", instance_id)
