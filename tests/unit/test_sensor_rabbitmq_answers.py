"""The rabbitmq source's reading of management API answers, on a local HTTP server.

The real broker's answers are tested in ``tests/integration/test_sensor_rabbitmq.py``;
here are the ones it gives only at moments a test cannot pick: a queue it
lists without statistics (a new queue's first seconds, or one that predates
the management plugin: no ``messages_ready`` at all), and a body that is
not JSON (a proxy's error page).
"""

from __future__ import annotations

import pytest

from epum.sensors.credentials import SensorCredentials
from epum.sensors.polled import PollTarget, SensorQueryError
from epum.sensors.rabbitmq import RabbitMQSensorSource
from tests.http_stub import HTTPStub

#: What RabbitMQ 3.10 answered for a queue declared before the plugin was on.
NO_STATISTICS = {
    "name": "jobs",
    "vhost": "/",
    "durable": False,
    "auto_delete": False,
    "exclusive": False,
    "arguments": {},
    "node": "rabbit@host",
    "type": "classic",
    "consumer_details": [],
    "deliveries": [],
    "incoming": [],
    "garbage_collection": {},
}

WITH_STATISTICS = {
    **NO_STATISTICS,
    "messages_ready": 7,
    "messages_unacknowledged": 2,
    "consumers": 3,
    "message_stats": {"publish_details": {"rate": 1.5}, "deliver_get_details": {"rate": 0.5}},
}


def target() -> PollTarget:
    return PollTarget("alice", "d1", [], now=1000.0, sample_period=30.0)


@pytest.fixture
def answer():
    """A management API stub; ``answer.body`` is what it answers for any queue."""
    holder: dict = {"body": WITH_STATISTICS}
    stub = HTTPStub(lambda method, path, headers, body: (200, holder["body"]))
    stub.holder = holder
    yield stub
    stub.close()


def source(stub: HTTPStub, probe=None) -> RabbitMQSensorSource:
    conf = {"rabbitmq_queue": "jobs", "rabbitmq_management_url": stub.url}
    return RabbitMQSensorSource(conf, SensorCredentials(amqp_queue_probe=probe))


def test_a_queue_with_statistics_is_read_from_the_api(answer):
    readings = source(answer).collect(target(), timeout=5).domain
    assert readings["ready"] == [7.0] and readings["unacked"] == [2.0]
    assert readings["backlog"] == [9.0] and readings["backlog_per_consumer"] == [3.0]
    assert answer.requests[0][1] == "/api/queues/%2F/jobs"


def test_a_queue_listed_without_statistics_is_no_reading_not_zero(answer):
    answer.holder["body"] = NO_STATISTICS
    with pytest.raises(SensorQueryError, match="no statistics of queue 'jobs'"):
        source(answer).collect(target(), timeout=5)


def test_a_queue_listed_without_statistics_is_read_over_amqp(answer):
    answer.holder["body"] = NO_STATISTICS
    asked = []

    def probe(vhost: str, queue: str) -> tuple[int, int]:
        asked.append((vhost, queue))
        return 5, 1

    readings = source(answer, probe).collect(target(), timeout=5).domain
    assert asked == [("/", "jobs")]
    assert readings == {
        "ready": [5.0],
        "consumers": [1.0],
        "backlog": [5.0],
        "backlog_per_consumer": [5.0],
    }


@pytest.mark.parametrize(
    ("body", "error"),
    [(b"<html>502 Bad Gateway</html>", "not JSON"), (None, "no statistics")],
)
def test_a_body_that_is_no_queue_description_is_a_query_error(answer, body, error):
    answer.holder["body"] = body
    with pytest.raises(SensorQueryError, match=error):
        source(answer).collect(target(), timeout=5)


def test_such_a_body_is_read_over_amqp_too(answer):
    answer.holder["body"] = b"<html>502 Bad Gateway</html>"
    readings = source(answer, lambda vhost, queue: (4, 0)).collect(target(), timeout=5).domain
    assert readings["ready"] == [4.0] and readings["backlog"] == [4.0]
