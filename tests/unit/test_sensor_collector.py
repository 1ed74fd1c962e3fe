"""The sensor collector on the memory store, with a clock the test sets."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from epum.sensors.collector import SensorCollector
from epum.sensors.polled import (
    PolledSensorSource,
    PollTarget,
    Readings,
    fresh_samples,
    sample_period,
)
from epum.store.memory import MemoryEPUMStore
from tests.unit.engine_fakes import make_instance


class ScriptedSource(PolledSensorSource):
    """Answers what the test puts in ``ANSWERS[domain_id]``; an exception is raised."""

    ANSWERS: dict[str, Any] = {}
    CALLS: list[tuple[str, float]] = []

    @classmethod
    def validate_config(cls, conf: Mapping[str, Any]) -> None:
        """Nothing to check."""

    def collect(self, target: PollTarget, timeout: float) -> Readings:
        """The scripted answer for the domain."""
        self.CALLS.append((target.domain_id, target.now))
        answer = self.ANSWERS[target.domain_id]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer(target)
        return answer


@pytest.fixture
def store():
    s = MemoryEPUMStore()
    s.initialize()
    ScriptedSource.ANSWERS = {}
    ScriptedSource.CALLS = []
    yield s
    s.shutdown()


def add_domain(store, domain_id, period=60, sensor_type="prometheus", instances=()):
    conf = {"sensor_type": sensor_type, "sample_period": period}
    domain = store.add_domain("alice", domain_id, {"engine_conf": conf})
    for instance_id in instances:
        domain.add_instance(make_instance(instance_id))
    return domain


def collector(store, **kw):
    kw.setdefault("query_timeout", 5.0)
    c = SensorCollector(store, clock=lambda: 1000.0, source_factory=ScriptedSource, **kw)
    return c


def test_readings_are_stored_with_their_time(store):
    domain = add_domain(store, "d1", instances=["i1", "i2"])
    ScriptedSource.ANSWERS["d1"] = Readings(
        domain={"backlog": [4.0]}, instances={"i1": {"cpu": [0.5, 0.7]}}
    )
    c = collector(store)
    try:
        assert c.poll_due(100.0) == [("alice", "d1")]
    finally:
        c.close()
    assert domain.get_domain_sensor_data() == {"backlog": {"Series": [4.0], "time": 100.0}}
    assert domain.get_instance("i1").sensor_data == {"cpu": {"Series": [0.5, 0.7], "time": 100.0}}
    assert domain.get_instance("i2").sensor_data is None


def test_polls_on_the_sample_period_only(store):
    add_domain(store, "d1", period=60)
    ScriptedSource.ANSWERS["d1"] = Readings(domain={"m": [1.0]})
    c = collector(store)
    try:
        assert c.poll_due(100.0)
        assert c.poll_due(159.0) == []
        assert c.poll_due(160.0)
        assert [now for _, now in ScriptedSource.CALLS] == [100.0, 160.0]
    finally:
        c.close()


def test_a_domain_config_is_read_again_only_when_the_domain_changed(store, monkeypatch):
    domain = add_domain(store, "d1", period=60)
    store.add_domain("alice", "plain", {"engine_conf": {"preserve_n": 1}})
    ScriptedSource.ANSWERS["d1"] = Readings(domain={"m": [1.0]})
    reads = []
    real = type(domain).get_all_config
    monkeypatch.setattr(
        type(domain), "get_all_config", lambda self: reads.append(self.key) or real(self)
    )
    c = collector(store)
    try:
        c.poll_due(100.0)  # reads both, stores d1's readings (a change of d1)
        c.poll_due(120.0)  # reads d1 again, after its readings
        reads.clear()
        c.poll_due(130.0)
        assert reads == []
        domain.update_config({"engine_conf": {"sensor_type": "config"}})
        assert c.poll_due(200.0) == []  # the change is seen: d1 is no longer polled
        assert reads == [("alice", "d1")]
    finally:
        c.close()


def test_period_has_a_minimum_and_a_default():
    assert sample_period({}) == 90.0
    assert sample_period({"sample_period": 1}) == 10.0
    assert sample_period({"sample_period": 1}, minimum=2.0) == 2.0
    assert sample_period({"sample_period": "x"}) == 90.0


def test_config_and_unset_sensor_types_are_not_polled(store):
    add_domain(store, "cfg", sensor_type="config")
    store.add_domain("alice", "none", {"engine_conf": {"preserve_n": 1}})
    c = collector(store)
    try:
        assert c.poll_due(100.0) == []
        assert ScriptedSource.CALLS == []
    finally:
        c.close()


def test_a_failure_is_logged_kept_with_its_start_and_retried_next_period(store, caplog):
    add_domain(store, "bad", period=30)
    add_domain(store, "good", period=30)
    ScriptedSource.ANSWERS["bad"] = RuntimeError("server down")
    ScriptedSource.ANSWERS["good"] = Readings(domain={"m": [1.0]})
    c = collector(store)
    try:
        with caplog.at_level(logging.WARNING, logger="epum.sensors.collector"):
            assert c.poll_due(100.0) == [("alice", "good")]
        assert "alice/bad" in caplog.text and "prometheus" in caplog.text
        assert "server down" in caplog.text
        assert c.poll_due(110.0) == []
        assert c.poll_due(130.0) == [("alice", "good")]
        failure = c.failures()[("alice", "bad")]
        assert (failure.since, failure.sensor_type) == (100.0, "prometheus")
        ScriptedSource.ANSWERS["bad"] = Readings(domain={"m": [2.0]})
        assert sorted(c.poll_due(160.0)) == [("alice", "bad"), ("alice", "good")]
        assert c.failures() == {}
    finally:
        c.close()


def test_a_slow_source_delays_neither_the_caller_nor_the_others(store):
    add_domain(store, "slow")
    add_domain(store, "fast")
    release = threading.Event()

    def slow(target):
        release.wait(10)
        return Readings(domain={"m": [9.0]})

    ScriptedSource.ANSWERS["slow"] = slow
    ScriptedSource.ANSWERS["fast"] = Readings(domain={"m": [1.0]})
    c = collector(store, query_timeout=0.3)
    try:
        started = time.monotonic()
        assert c.poll_due(100.0) == [("alice", "fast")]
        assert time.monotonic() - started < 3.0
        assert c.failures()[("alice", "slow")].error.startswith("no answer within")
        # still running: not polled again, even when due
        assert c.poll_due(1000.0) == [("alice", "fast")]
        assert [d for d, _ in ScriptedSource.CALLS].count("slow") == 1
    finally:
        release.set()
        c.close()
    # the late answer is dropped; only the failure is stored
    data = store.get_domain("alice", "slow").get_domain_sensor_data()
    assert set(data) == {"_missing"} and data["_missing"]["since"] == 100.0


def test_a_metric_not_read_keeps_its_older_reading(store):
    domain = add_domain(store, "d1", period=10, instances=["i1"])
    ScriptedSource.ANSWERS["d1"] = Readings(domain={"a": [1.0]}, instances={"i1": {"x": [1.0]}})
    c = collector(store)
    try:
        c.poll_due(100.0)
        ScriptedSource.ANSWERS["d1"] = Readings(domain={"b": [2.0]}, instances={"i1": {"y": [2.0]}})
        c.poll_due(110.0)
    finally:
        c.close()
    assert domain.get_domain_sensor_data() == {
        "a": {"Series": [1.0], "time": 100.0},
        "b": {"Series": [2.0], "time": 110.0},
    }
    assert set(domain.get_instance("i1").sensor_data) == {"x", "y"}


def test_removed_domains_and_gone_instances_are_skipped(store):
    gone = add_domain(store, "gone")
    gone.mark_removed()
    add_domain(store, "d1", instances=["i1"])
    ScriptedSource.ANSWERS["d1"] = Readings(instances={"nosuch": {"x": [1.0]}})
    c = collector(store)
    try:
        assert c.poll_due(100.0) == [("alice", "d1")]
    finally:
        c.close()
    assert [d for d, _ in ScriptedSource.CALLS] == ["d1"]


def test_uses_its_clock_when_no_time_is_given(store):
    add_domain(store, "d1")
    ScriptedSource.ANSWERS["d1"] = Readings(domain={"m": [1.0]})
    c = collector(store)
    try:
        c.poll_due()
    finally:
        c.close()
    assert ScriptedSource.CALLS == [("d1", 1000.0)]


def test_stale_readings_count_as_none():
    reading = {"Series": [1.0], "time": 100.0}
    assert fresh_samples(reading, now=200.0, max_age=100.0) == [1.0]
    assert fresh_samples(reading, now=200.1, max_age=100.0) is None
    assert fresh_samples({"Series": [1.0]}, now=1e9, max_age=1.0) == [1.0]
    assert fresh_samples(reading) == [1.0]


def test_bad_bounds_are_refused(store):
    with pytest.raises(ValueError, match="query_timeout"):
        SensorCollector(store, query_timeout=0)


def test_a_failure_is_stored_with_its_start_until_readings_come_back(store):
    domain = add_domain(store, "bad", period=30)
    ScriptedSource.ANSWERS["bad"] = RuntimeError("server down")
    c = collector(store)
    try:
        c.poll_due(100.0)
        c.poll_due(130.0)
        missing = domain.get_domain_sensor_data()["_missing"]
        assert missing["source"] == "prometheus" and missing["since"] == 100.0
        assert "server down" in missing["error"]
    finally:
        c.close()
    # a collector of a later term keeps the first failure's start
    later = collector(store)
    try:
        later.poll_due(200.0)
        assert domain.get_domain_sensor_data()["_missing"]["since"] == 100.0
        assert later.failures()[("alice", "bad")].since == 100.0
        ScriptedSource.ANSWERS["bad"] = Readings()
        assert later.poll_due(230.0) == [("alice", "bad")]
        assert "_missing" not in domain.get_domain_sensor_data()
    finally:
        later.close()
