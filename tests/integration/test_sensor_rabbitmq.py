"""The rabbitmq sensor source against the real broker and its management API."""

from __future__ import annotations

import time

import pytest
from kombu import Connection, Queue

from epum.errors import BadRequestError
from epum.messaging.queue_probe import amqp_queue_probe
from epum.sensors import get_sensor_source
from epum.sensors.credentials import SensorCredentials
from epum.sensors.polled import PollTarget, SensorQueryError
from epum.sensors.rabbitmq import RabbitMQSensorSource
from tests import rabbit
from tests.kit import wait_until
from tests.rabbit_management import ensure_management

pytestmark = [pytest.mark.rabbitmq, pytest.mark.rabbitmq_management]

amqp_url = rabbit.amqp_url


@pytest.fixture
def work_queue(amqp_url):
    """A queue with 3 messages, one of them delivered and not acked.

    The management plugin is on before the queue is declared: a queue
    declared before it never gets statistics in its API.
    """
    ensure_management()
    name = f"{rabbit.new_sysname()}.work"
    conn = Connection(amqp_url)
    queue = Queue(name, durable=False, auto_delete=False)
    try:
        with conn.Producer() as producer:
            for n in range(3):
                producer.publish({"job": n}, routing_key=name, declare=[queue], retry=True)
        channel = conn.channel()
        held = channel.basic_get(name, no_ack=False)
        assert held is not None
        yield name
    finally:
        with Connection(amqp_url) as clean:
            queue.bind(clean.default_channel).delete()
        conn.release()


def target():
    return PollTarget("alice", "d1", [], now=time.time(), sample_period=60.0)


def wait_for_readings(source, want, timeout=30.0):
    """The management API's queue figures lag by its stats interval: wait for them
    (until the first, the source says it has no statistics of the queue)."""
    seen: list = []

    def reached() -> dict | None:
        try:
            readings = source.collect(target(), timeout=5).domain
        except SensorQueryError as exc:
            if "no statistics" not in str(exc):
                raise
            readings = {"error": str(exc)}
        seen[:] = [readings]
        return readings if all(readings.get(k) == [v] for k, v in want.items()) else None

    return wait_until(
        reached, timeout, what=lambda: f"readings {seen} reaching {want}", interval=0.5
    )


def test_management_api_readings(work_queue):
    url = ensure_management()
    source = get_sensor_source(
        {"sensor_type": "rabbitmq", "rabbitmq_queue": work_queue, "rabbitmq_management_url": url}
    )
    assert isinstance(source, RabbitMQSensorSource)
    readings = wait_for_readings(source, {"ready": 2.0, "unacked": 1.0})
    assert readings["consumers"] == [0.0]
    assert readings["backlog"] == [3.0]
    assert readings["backlog_per_consumer"] == [3.0]
    assert "publish_rate" in readings and "deliver_rate" in readings


def test_amqp_fallback_when_the_management_api_is_down(work_queue, amqp_url):
    creds = SensorCredentials(amqp_queue_probe=amqp_queue_probe(amqp_url))
    conf = {"rabbitmq_queue": work_queue, "rabbitmq_management_url": "http://127.0.0.1:9"}
    readings = RabbitMQSensorSource(conf, creds).collect(target(), timeout=2).domain
    assert readings == {
        "ready": [2.0],
        "consumers": [0.0],
        "backlog": [2.0],
        "backlog_per_consumer": [2.0],
    }


def test_without_a_fallback_a_dead_api_is_a_query_error():
    conf = {"rabbitmq_queue": "q", "rabbitmq_management_url": "http://127.0.0.1:9"}
    with pytest.raises(SensorQueryError, match="rabbitmq management"):
        RabbitMQSensorSource(conf).collect(target(), timeout=1)


def test_a_missing_queue_fails_on_both_paths(amqp_url):
    name = f"{rabbit.new_sysname()}.nosuch"
    creds = SensorCredentials(amqp_queue_probe=amqp_queue_probe(amqp_url))
    conf = {"rabbitmq_queue": name, "rabbitmq_management_url": ensure_management()}
    with pytest.raises(SensorQueryError, match="both failed"):
        RabbitMQSensorSource(conf, creds).collect(target(), timeout=2)


@pytest.mark.parametrize(
    ("conf", "key"),
    [
        ({}, "rabbitmq_queue"),
        ({"rabbitmq_queue": "q", "rabbitmq_vhost": ""}, "rabbitmq_vhost"),
        ({"rabbitmq_queue": "q", "rabbitmq_management_url": "localhost"}, "rabbitmq_management"),
    ],
)
def test_bad_keys_are_named(conf, key):
    with pytest.raises(BadRequestError, match=key):
        RabbitMQSensorSource.validate_config(conf)
