"""The sensor collector runs in the decider's term: started when elected, stopped at its end."""

from __future__ import annotations

import threading

import pytest

from epum.errors import ConfigError
from epum.sensor_loop import start_collector, stop_collector
from epum.sensor_wiring import collector_factory, sensor_credentials
from epum.settings import SensorSettings, settings_from_dict
from epum.term import Term
from tests.fakes import FakeDTRS
from tests.kit import wait_until
from tests.unit.scenario import Scenario

PROMPT = 5.0


class CountingCollector:
    """Counts its passes; the third one raises; ``closed`` is set by ``close()``."""

    def __init__(self) -> None:
        self.passes = 0
        self.third = threading.Event()
        self.closed = threading.Event()

    def poll_due(self) -> list:
        self.passes += 1
        if self.passes >= 3:
            self.third.set()
        if self.passes == 3:
            raise RuntimeError("a bad pass")
        return []

    def close(self) -> None:
        self.closed.set()


def test_the_collector_polls_until_the_term_ends_and_is_closed_then():
    term = Term("decider", 1)
    collector = CountingCollector()
    thread = start_collector(term, lambda: collector, tick=0.01)
    assert collector.third.wait(PROMPT)  # a failing pass does not stop the loop
    assert not collector.closed.is_set()
    term.end()
    thread.join(PROMPT)
    assert not thread.is_alive() and collector.closed.is_set()


def test_a_bad_tick_is_refused():
    with pytest.raises(ValueError, match="tick"):
        start_collector(Term("decider", 1), CountingCollector, tick=0)


def test_the_elected_decider_starts_a_collector_for_its_term_only():
    sc = Scenario({})
    decider = sc.epum.decider
    made: list[CountingCollector] = []

    def make() -> CountingCollector:
        made.append(CountingCollector())
        return made[-1]

    decider.collector_factory = make
    term = Term("decider", 1)
    thread = threading.Thread(target=decider.inaugurate, args=(term,))
    thread.start()
    try:
        wait_until(lambda: made and made[0].passes > 0, PROMPT)
    finally:
        term.end()
        thread.join(PROMPT)
    assert made[0].closed.wait(PROMPT) and len(made) == 1


class SlowToCloseCollector(CountingCollector):
    """Its ``close()`` says it began (``closing``) and ends only once ``may_close`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = threading.Event()
        self.may_close = threading.Event()

    def close(self) -> None:
        self.closing.set()
        self.may_close.wait(PROMPT)
        super().close()


def test_the_deciders_term_is_over_only_once_its_collector_has_stopped():
    sc = Scenario({})
    decider = sc.epum.decider
    collector = SlowToCloseCollector()
    decider.collector_factory = lambda: collector
    term = Term("decider", 1)
    thread = threading.Thread(target=decider.inaugurate, args=(term,))
    thread.start()
    assert wait_until(lambda: collector.passes > 0, PROMPT)
    term.end()
    assert collector.closing.wait(PROMPT)
    assert thread.is_alive()  # inaugurate waits for the collector it started
    collector.may_close.set()
    thread.join(PROMPT)
    assert not thread.is_alive() and collector.closed.is_set()


def test_a_collector_that_will_not_stop_is_left_after_the_wait():
    term = Term("decider", 1)
    collector = SlowToCloseCollector()
    thread = start_collector(term, lambda: collector, tick=0.01)
    term.end()
    assert collector.closing.wait(PROMPT)
    assert stop_collector(thread, wait=0.01) is False
    collector.may_close.set()
    assert stop_collector(thread, wait=PROMPT) is True


def test_sensor_settings_come_from_server_sensors_and_keep_secrets_secret():
    tree = settings_from_dict(
        {
            "server": {
                "sensors": {
                    "prometheus_username": "ops",
                    "prometheus_password": "s3cret",
                    "rabbitmq_password": "r4bbit",
                    "min_sample_period": 1,
                }
            }
        }
    )
    probe = lambda vhost, queue: (0, 0)  # noqa: E731
    creds = sensor_credentials(tree.sensors, probe)
    assert (creds.prometheus_username, creds.prometheus_password) == ("ops", "s3cret")
    assert creds.rabbitmq_password == "r4bbit" and creds.amqp_queue_probe is probe
    off = sensor_credentials(SensorSettings(amqp_probe=False), probe)
    assert off.amqp_queue_probe is None
    with pytest.raises(ConfigError) as err:
        settings_from_dict({"server": {"sensors": {"min_sample_period": 0}}})
    assert "min_sample_period" in str(err.value)
    with pytest.raises(ConfigError, match="go together"):
        SensorSettings(prometheus_username="ops")


def test_the_collector_can_be_turned_off():
    assert collector_factory(object(), SensorSettings(enabled=False)) is None
    make = collector_factory(object(), SensorSettings(min_sample_period=2, query_timeout=3))
    collector = make()
    try:
        assert (collector.min_period, collector.query_timeout) == (2, 3)
    finally:
        collector.close()


def test_the_facades_collector_asks_the_dtrs_for_site_credentials():
    asked = []

    class RecordingDTRS(FakeDTRS):
        def describe_credentials(self, caller, site_name):
            asked.append((caller, site_name))
            return super().describe_credentials(caller, site_name)

    sc = Scenario({}, dtrs=RecordingDTRS())
    collector = sc.epum.decider.collector_factory()
    try:
        assert collector.clock is sc.clock
        assert collector.credentials_lookup("alice", "ec2-east")["access_key"] == "k"
    finally:
        collector.close()
    assert asked == [("alice", "ec2-east")]
