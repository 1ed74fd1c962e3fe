"""The sensor factory's types, the example domain definitions, and how an
engine reads what the collector stored."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from epum.engines.loader import load_engine_class
from epum.errors import BadRequestError
from epum.instances import DomainState
from epum.sensors import get_sensor_source, sensor_config_doc, validate_sensor_conf
from epum.sensors.config import ConfigSensorSource
from epum.sensors.factory import SENSOR_TYPES, is_polled
from epum.sensors.polled import PolledSensorSource, stored_reading
from tests.unit.engine_fakes import make_instance

EXAMPLES = sorted((Path(__file__).parents[2] / "config" / "sensors").glob("*.yaml"))


def test_every_sensor_type_has_an_example_definition():
    assert {p.stem for p in EXAMPLES} == set(SENSOR_TYPES) - {"mockcloudwatch"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_definitions_validate(path):
    definition = yaml.safe_load(path.read_text())
    conf = definition["engine_conf"]
    assert conf["sensor_type"] == path.stem
    validate_sensor_conf(conf)
    load_engine_class(definition["general"]["engine_class"]).validate_config(conf)


def test_mockcloudwatch_is_the_config_source():
    source = get_sensor_source({"sensor_type": "mockcloudwatch", "sensor_data": {"i1": {"m": 2}}})
    assert isinstance(source, ConfigSensorSource)
    assert not is_polled({"sensor_type": "mockcloudwatch"})


def test_polled_types():
    assert {name for name in SENSOR_TYPES if is_polled({"sensor_type": name})} == {
        "prometheus",
        "rabbitmq",
        "cloudwatch",
        "opentsdb",
    }
    assert not is_polled({})
    assert not is_polled({"sensor_type": 3})


def test_the_doc_names_every_sources_keys():
    doc = sensor_config_doc()
    for key in (
        "prometheus_url",
        "prometheus_instance_label",
        "rabbitmq_queue",
        "monitor_sensors",
        "monitor_domain_sensors",
        "cloudwatch_domain_dimensions",
        "opentsdb_host",
        "opentsdb_tag",
        "domain_sensor_data",
        "sample_period",
        "sensor_stale_periods",
    ):
        assert key in doc


def test_a_bad_source_key_is_refused_through_the_factory():
    with pytest.raises(BadRequestError, match="prometheus_url"):
        validate_sensor_conf({"sensor_type": "prometheus", "prometheus_domain_query": "up"})


def test_an_engine_reads_the_stored_readings_without_credentials():
    conf = {"sensor_type": "rabbitmq", "rabbitmq_queue": "jobs"}
    source = get_sensor_source(conf)
    assert isinstance(source, PolledSensorSource)
    inst = make_instance("i1", sensor_data={"cpu": stored_reading([0.5, 0.7], 10.0)})
    state = DomainState([inst], {"backlog": stored_reading([3], 10.0)})
    assert source.instance_samples("cpu", ["i1", "i2"], state) == {"i1": [0.5, 0.7]}
    assert source.domain_samples("backlog", state) == [3.0]
    assert source.domain_samples("nosuch", state) is None


def test_an_engine_ignores_readings_older_than_the_stale_bound():
    conf = {"sensor_type": "rabbitmq", "rabbitmq_queue": "jobs", "sample_period": 60}
    source = get_sensor_source({**conf, "sensor_stale_periods": 2})
    inst = make_instance("i1", sensor_data={"cpu": stored_reading([0.5], 1000.0)})
    data = {"backlog": stored_reading([3], 1000.0)}
    fresh = DomainState([inst], data, now=1120.0)
    stale = DomainState([inst], data, now=1120.5)
    assert source.instance_samples("cpu", ["i1"], fresh) == {"i1": [0.5]}
    assert source.domain_samples("backlog", fresh) == [3.0]
    assert source.instance_samples("cpu", ["i1"], stale) == {}
    assert source.domain_samples("backlog", stale) is None
    # the default bound is three periods
    default = get_sensor_source(conf)
    assert default.domain_samples("backlog", DomainState([], data, now=1180.0)) == [3.0]
    assert default.domain_samples("backlog", DomainState([], data, now=1180.5)) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [("sample_period", 0), ("sample_period", "90"), ("sensor_stale_periods", 0.5)],
)
def test_bad_polling_keys_are_named(key, value):
    conf = {"sensor_type": "rabbitmq", "rabbitmq_queue": "jobs", key: value}
    with pytest.raises(BadRequestError, match=key):
        validate_sensor_conf(conf)
