"""The cloudwatch source against moto's server (a local process speaking CloudWatch)."""

from __future__ import annotations

import datetime
import time

import boto3
import pytest

from epum.errors import BadRequestError
from epum.sensors import get_sensor_source
from epum.sensors.cloudwatch import CloudWatchSensorSource
from epum.sensors.credentials import SensorCredentials
from epum.sensors.polled import PollTarget, SensorQueryError
from tests.moto_server import MotoServer
from tests.unit.engine_fakes import make_instance

pytestmark = pytest.mark.cloudwatch

NOW = time.time()


@pytest.fixture(scope="module")
def moto():
    server = MotoServer()
    server.start()
    client = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    put = [
        ("CPUUtilization", [{"Name": "InstanceId", "Value": "i-aaa"}], [20.0, 40.0]),
        ("CPUUtilization", [{"Name": "InstanceId", "Value": "i-bbb"}], [90.0]),
        ("GroupLoad", [{"Name": "AutoScalingGroupName", "Value": "grp"}], [5.0]),
    ]
    for metric, dims, values in put:
        for n, value in enumerate(values):
            when = datetime.datetime.fromtimestamp(NOW - 120 + 60 * n, tz=datetime.timezone.utc)
            client.put_metric_data(
                Namespace="AWS/EC2",
                MetricData=[
                    {"MetricName": metric, "Dimensions": dims, "Timestamp": when, "Value": value}
                ],
            )
    yield server
    server.stop()


def conf(**extra):
    return {
        "sensor_type": "cloudwatch",
        "monitor_sensors": ["CPUUtilization"],
        "monitor_domain_sensors": ["GroupLoad"],
        "cloudwatch_domain_dimensions": {"AutoScalingGroupName": "grp"},
        "sample_function": "Average",
        **extra,
    }


def target(instances, lookup=None):
    return PollTarget(
        "alice", "d1", instances, now=NOW, sample_period=300.0, credentials_lookup=lookup
    )


def test_worker_keys_instance_and_domain_metrics(moto):
    creds = SensorCredentials(
        aws_access_key_id="k", aws_secret_access_key="s", aws_endpoint_url=moto.url
    )
    source = get_sensor_source(conf(), creds)
    assert isinstance(source, CloudWatchSensorSource)
    insts = [
        make_instance("i1", iaas_id="i-aaa"),
        make_instance("i2", iaas_id="i-bbb"),
        make_instance("i3"),  # no iaas_id yet: skipped
        make_instance("i4", iaas_id="i-quiet"),
    ]
    readings = source.collect(target(insts), timeout=5)
    assert readings.instances == {
        "i1": {"CPUUtilization": [20.0, 40.0]},
        "i2": {"CPUUtilization": [90.0]},
    }
    assert readings.domain == {"GroupLoad": [5.0]}


def test_keys_from_the_dtrs_when_the_worker_has_none(moto):
    asked = []

    def lookup(owner, site):
        asked.append((owner, site))
        return {"access_key": "dtrs-k", "secret_key": "dtrs-s"}

    creds = SensorCredentials(aws_endpoint_url=moto.url)
    source = CloudWatchSensorSource(conf(monitor_domain_sensors=[]), creds)
    readings = source.collect(
        target([make_instance("i1", iaas_id="i-aaa", site="ec2-east")], lookup), 5
    )
    assert readings.instances == {"i1": {"CPUUtilization": [20.0, 40.0]}}
    assert asked == [("alice", "ec2-east")]


def test_an_unreachable_endpoint_is_a_query_error():
    creds = SensorCredentials(
        aws_access_key_id="k", aws_secret_access_key="s", aws_endpoint_url="http://127.0.0.1:9"
    )
    source = CloudWatchSensorSource(conf(monitor_sensors=[]), creds)
    with pytest.raises(SensorQueryError, match="cloudwatch GroupLoad"):
        source.collect(target([]), timeout=1)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"monitor_sensors": None, "monitor_domain_sensors": None}, "monitor_sensors"),
        ({"monitor_sensors": [1]}, "monitor_sensors"),
        ({"cloudwatch_domain_dimensions": None}, "cloudwatch_domain_dimensions"),
        ({"cloudwatch_period": 0}, "cloudwatch_period"),
        ({"sample_function": "Median"}, "sample_function"),
    ],
)
def test_bad_keys_are_named(change, key):
    bad = {k: v for k, v in {**conf(), **change}.items() if v is not None}
    with pytest.raises(BadRequestError, match=key):
        CloudWatchSensorSource.validate_config(bad)
