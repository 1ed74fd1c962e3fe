"""The prometheus sensor source against a real Prometheus server scraping an exporter."""

from __future__ import annotations

import time

import pytest
from prometheus_client import Gauge

from epum.errors import BadRequestError
from epum.sensors import get_sensor_source
from epum.sensors.polled import PollTarget, SensorQueryError
from epum.sensors.prometheus import PrometheusSensorSource
from tests.prom_server import Exporter, PrometheusServer
from tests.unit.engine_fakes import make_instance

pytestmark = pytest.mark.prometheus


@pytest.fixture(scope="module")
def prom():
    exporter = Exporter()
    queue = Gauge("work_queue_depth", "jobs waiting", ["domain"], registry=exporter.registry)
    queue.labels(domain="d1").set(42)
    load = Gauge("worker_load", "per worker load", registry=exporter.registry)
    load.set(0.75)
    server = PrometheusServer([exporter.address])
    try:
        server.start()
        server.wait_for_sample('worker_load{job="test"}')
        yield server, exporter
    finally:
        server.stop()
        exporter.close()


def target(instances=(), period=60.0):
    return PollTarget("alice", "d1", list(instances), now=time.time(), sample_period=period)


def test_domain_and_instance_queries(prom):
    server, _exporter = prom
    conf = {
        "sensor_type": "prometheus",
        "metric": "load",
        "prometheus_url": server.url,
        "prometheus_domain_query": 'sum(work_queue_depth{domain="$domain_id"})',
        "prometheus_instance_query": 'worker_load{job="test"}',
        "prometheus_instance_label": "instance",
        "prometheus_instance_match": "private_ip",
    }
    source = get_sensor_source(conf)
    assert isinstance(source, PrometheusSensorSource)
    ours = make_instance("i1", private_ip="127.0.0.1")
    other = make_instance("i2", private_ip="10.9.9.9")
    readings = source.collect(target([ours, other]), timeout=5)
    assert readings.domain == {"load": [42.0]}
    assert readings.instances == {"i1": {"load": [0.75]}}


def test_range_query_gives_the_samples_of_the_period(prom):
    server, _ = prom
    conf = {
        "sensor_type": "prometheus",
        "prometheus_url": server.url,
        "prometheus_domain_query": "worker_load",
        "prometheus_query_mode": "range",
        "prometheus_step": 1,
    }
    server.wait_for(lambda: len(range_values(server)) >= 2, timeout=20)
    readings = PrometheusSensorSource(conf).collect(target(period=30), timeout=5)
    assert len(readings.domain["value"]) >= 2
    assert set(readings.domain["value"]) == {0.75}


def range_values(server):
    conf = {
        "prometheus_url": server.url,
        "prometheus_domain_query": "worker_load",
        "prometheus_query_mode": "range",
        "prometheus_step": 1,
    }
    return (
        PrometheusSensorSource(conf).collect(target(period=30), timeout=5).domain.get("value", [])
    )


def test_a_bad_expression_is_a_query_error(prom):
    server, _ = prom
    conf = {"prometheus_url": server.url, "prometheus_domain_query": "sum(("}
    with pytest.raises(SensorQueryError, match="HTTP 400"):
        PrometheusSensorSource(conf).collect(target(), timeout=5)


def test_a_dead_server_is_a_query_error():
    conf = {"prometheus_url": "http://127.0.0.1:9", "prometheus_domain_query": "up"}
    with pytest.raises(SensorQueryError, match="prometheus"):
        PrometheusSensorSource(conf).collect(target(), timeout=1)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"prometheus_url": "ftp://x"}, "prometheus_url"),
        ({"prometheus_domain_query": None}, "prometheus_domain_query"),
        ({"prometheus_instance_match": "mac"}, "prometheus_instance_match"),
        ({"prometheus_query_mode": "sometimes"}, "prometheus_query_mode"),
        ({"prometheus_step": 0}, "prometheus_step"),
    ],
)
def test_bad_keys_are_named(change, key):
    conf = {"prometheus_url": "http://p:9090", "prometheus_domain_query": "up", **change}
    conf = {k: v for k, v in conf.items() if v is not None}
    with pytest.raises(BadRequestError, match=key):
        PrometheusSensorSource.validate_config(conf)
