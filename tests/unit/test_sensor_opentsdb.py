"""The opentsdb source, and the prometheus source's auth headers.

OpenTSDB has no Debian package, so its source is tested against a local
HTTP server answering in the format OpenTSDB documents for ``/api/query``
(a list of ``{metric, tags, aggregateTags, dps: {"<epoch>": value}}``).
"""

from __future__ import annotations

import pytest

from epum.errors import BadRequestError
from epum.instances import DomainState
from epum.sensors import get_sensor_source
from epum.sensors.collector import SensorCollector
from epum.sensors.credentials import SensorCredentials
from epum.sensors.opentsdb import OpenTSDBSensorSource
from epum.sensors.polled import PollTarget, SensorQueryError
from epum.sensors.prometheus import PrometheusSensorSource
from epum.store.memory import MemoryEPUMStore
from tests.http_stub import HTTPStub
from tests.unit.engine_fakes import make_instance


def tsdb_answer(method, path, headers, body):
    query = body["queries"][0]
    if query["metric"] == "broken":
        return 400, {"error": {"code": 400, "message": "No such name for 'metrics'"}}
    if "domain" in query["tags"]:
        return 200, [
            {
                "metric": query["metric"],
                "tags": {"domain": query["tags"]["domain"], "user": "alice"},
                "aggregateTags": [],
                "dps": {"1700000060": 3.0, "1700000000": 1.0},
            }
        ]
    hosts = query["tags"]["host"].split("|")
    return 200, [
        {
            "metric": query["metric"],
            "tags": {"host": host},
            "aggregateTags": [],
            "dps": {"1700000000": 10.0 * (n + 1)},
        }
        for n, host in enumerate(hosts)
        if host != "h-silent"
    ]


@pytest.fixture
def tsdb():
    stub = HTTPStub(tsdb_answer)
    yield stub
    stub.close()


def conf_for(stub, **extra):
    return {
        "sensor_type": "opentsdb",
        "opentsdb_host": "127.0.0.1",
        "opentsdb_port": stub.port,
        "monitor_sensors": ["cpu"],
        "monitor_domain_sensors": ["jobs"],
        "sample_function": "Average",
        **extra,
    }


def target(instances=()):
    return PollTarget("alice", "d1", list(instances), now=1700000100.0, sample_period=90.0)


def test_domain_and_host_metrics(tsdb):
    source = get_sensor_source(conf_for(tsdb))
    assert isinstance(source, OpenTSDBSensorSource)
    insts = [
        make_instance("i1", hostname="h-a"),
        make_instance("i2", hostname="h-silent"),
        make_instance("i3"),
    ]
    readings = source.collect(target(insts), timeout=5)
    assert readings.domain == {"jobs": [1.0, 3.0]}
    assert readings.instances == {"i1": {"cpu": [10.0]}}
    method, path, _, body = tsdb.requests[0]
    assert (method, path) == ("POST", "/api/query")
    assert body["start"] == 1700000010 and body["end"] == 1700000100
    assert body["queries"][0] == {
        "aggregator": "avg",
        "metric": "jobs",
        "tags": {"domain": "d1", "user": "alice"},
    }
    assert tsdb.requests[1][3]["queries"][0]["tags"] == {"host": "h-a|h-silent"}


def test_an_error_answer_is_a_query_error(tsdb):
    source = OpenTSDBSensorSource(conf_for(tsdb, monitor_domain_sensors=["broken"]))
    with pytest.raises(SensorQueryError, match="HTTP 400"):
        source.collect(target(), timeout=5)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"opentsdb_host": None}, "opentsdb_host"),
        ({"opentsdb_port": "http"}, "opentsdb_port"),
        ({"monitor_sensors": None, "monitor_domain_sensors": None}, "monitor_sensors"),
        ({"opentsdb_tag": "phantom_unique"}, "opentsdb_tag"),
        ({"sample_function": "Median"}, "sample_function"),
    ],
)
def test_bad_keys_are_named(change, key):
    conf = {
        "opentsdb_host": "tsdb",
        "monitor_sensors": ["cpu"],
        **change,
    }
    conf = {k: v for k, v in conf.items() if v is not None}
    with pytest.raises(BadRequestError, match=key):
        OpenTSDBSensorSource.validate_config(conf)


def prom_answer(method, path, headers, body):
    return 200, {"status": "success", "data": {"resultType": "vector", "result": []}}


@pytest.mark.parametrize(
    ("creds", "header"),
    [
        (SensorCredentials(prometheus_bearer_token="tok"), "Bearer tok"),
        (SensorCredentials(prometheus_username="u", prometheus_password="p"), "Basic dTpw"),
        (SensorCredentials(), None),
    ],
)
def test_prometheus_auth_comes_from_the_worker_credentials(creds, header):
    stub = HTTPStub(prom_answer)
    try:
        conf = {"prometheus_url": stub.url, "prometheus_domain_query": "up"}
        PrometheusSensorSource(conf, creds).collect(target(), timeout=5)
    finally:
        stub.close()
    assert stub.requests[0][2].get("Authorization") == header


def test_collector_stores_what_the_source_read_and_the_engine_source_reads_it(tsdb):
    store = MemoryEPUMStore()
    store.initialize()
    conf = conf_for(tsdb, sample_period=90)
    domain = store.add_domain("alice", "d1", {"engine_conf": conf})
    domain.add_instance(make_instance("i1", hostname="h-a"))
    collector = SensorCollector(store)
    try:
        assert collector.poll_due(1700000100.0) == [("alice", "d1")]
    finally:
        collector.close()
    state = DomainState(domain.get_instances(), domain.get_domain_sensor_data(), now=1700000200.0)
    engine_source = get_sensor_source(conf)
    assert engine_source.domain_samples("jobs", state) == [1.0, 3.0]
    assert engine_source.instance_samples("cpu", ["i1"], state) == {"i1": [10.0]}
    store.shutdown()
