"""Sensor sources: the factory, the config source, samples and functions."""

from __future__ import annotations

import pytest

from epum.errors import BadRequestError
from epum.instances import DomainState
from epum.sensors import (
    SENSOR_TYPES,
    SensorSource,
    get_sensor_source,
    sample_function,
    sensor_config_doc,
    to_samples,
    validate_sensor_conf,
)
from epum.sensors.config import ConfigSensorSource
from tests.unit.engine_fakes import make_instance


def test_factory_defaults_to_config_source():
    source = get_sensor_source({})
    assert isinstance(source, ConfigSensorSource)
    assert isinstance(source, SensorSource)
    assert isinstance(get_sensor_source({"sensor_type": "config"}), ConfigSensorSource)


@pytest.mark.parametrize("bad", ["nosuch", 3, ""])
def test_unknown_sensor_type_is_bad_request(bad):
    with pytest.raises(BadRequestError, match="sensor_type"):
        validate_sensor_conf({"sensor_type": bad})
    with pytest.raises(BadRequestError, match="sensor_type"):
        get_sensor_source({"sensor_type": bad})


@pytest.mark.parametrize(
    ("value", "samples"),
    [
        (3, [3.0]),
        (2.5, [2.5]),
        ([1, 2], [1.0, 2.0]),
        ({"Series": [4, 5], "Average": 4.5}, [4.0, 5.0]),
        ([], None),
        ("7", None),
        (True, None),
        ([1, "x"], None),
        ({"Average": 4.5}, None),
        (float("inf"), None),
        (None, None),
    ],
)
def test_to_samples(value, samples):
    assert to_samples(value) == samples


def test_sample_functions():
    assert sample_function("Average")([1, 2, 6]) == 3.0
    assert sample_function("SUM")([1, 2, 6]) == 9.0
    assert sample_function("Max")([1, 2, 6]) == 6.0
    assert sample_function("min")([1, 2, 6]) == 1.0
    with pytest.raises(BadRequestError, match="sample_function"):
        sample_function("p95")


def test_config_source_prefers_conf_over_records_and_skips_missing():
    state = DomainState(
        [
            make_instance("a", sensor_data={"cpu": {"Series": [0.1]}}),
            make_instance("b", sensor_data={"cpu": [0.4, 0.6]}),
            make_instance("c", sensor_data={"mem": 1}),
            make_instance("d", sensor_data={"cpu": "garbage"}),
        ]
    )
    source = get_sensor_source({"sensor_data": {"a": {"cpu": 0.9}, "zz": {"cpu": 1}}})
    got = source.instance_samples("cpu", ["a", "b", "c", "d", "missing"], state)
    assert got == {"a": [0.9], "b": [0.4, 0.6]}


def test_config_source_domain_samples():
    state = DomainState([], sensor_data={"queue": {"Series": [3, 4]}})
    assert get_sensor_source({}).domain_samples("queue", state) == [3.0, 4.0]
    assert get_sensor_source({}).domain_samples("other", state) is None
    source = get_sensor_source({"domain_sensor_data": {"queue": 10}})
    assert source.domain_samples("queue", state) == [10.0]


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"sensor_data": [1]}, "sensor_data must be a mapping"),
        ({"sensor_data": {"a": 5}}, r"sensor_data\['a'\] must be a mapping"),
        ({"sensor_data": {"a": {"cpu": []}}}, r"sensor_data\['a'\]\['cpu'\]"),
        ({"domain_sensor_data": {"q": "x"}}, r"domain_sensor_data\['q'\]"),
    ],
)
def test_config_source_rejects_bad_shapes(conf, message):
    with pytest.raises(BadRequestError, match=message):
        validate_sensor_conf(conf)


def test_doc_names_every_type_and_key():
    doc = sensor_config_doc()
    for name in (*SENSOR_TYPES, "sensor_type", "sensor_data", "domain_sensor_data"):
        assert name in doc
