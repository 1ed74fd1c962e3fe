"""The simulated instances' work-queue workers on the real broker: one consumer per
wanted instance at a prefetch of one, a drain rate that grows with the workers,
in-hand work handed back when an instance goes, and workers made again after the
broker drops their connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kombu import Connection, Queue

from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from epum.messaging.work_queues import WorkQueueConsumers
from tests import rabbit
from tests.kit import wait_until
from tests.rabbit import close_connections_named

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names


def depth(url: str, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of ``queue``, by a passive declare; (-1, -1) while
    it does not exist."""
    with Connection(url) as conn:
        try:
            ok = conn.default_channel.queue_declare(queue=queue, passive=True)
        except conn.channel_errors:
            return -1, -1
        return ok.message_count, ok.consumer_count


def publish(url: str, queue: str, n: int) -> None:
    with Connection(url) as conn, conn.Producer() as producer:
        for i in range(n):
            producer.publish({"job": i}, routing_key=queue, retry=True)


@pytest.fixture
def queue(amqp_url: str, names: Names) -> Iterator[str]:
    name = f"{names.sysname}.work"
    yield name
    with Connection(amqp_url) as conn:
        Queue(name).bind(conn.default_channel).delete()


@pytest.fixture
def work(amqp_url: str, names: Names) -> Iterator[WorkQueueConsumers]:
    consumers = WorkQueueConsumers(
        make_connection(amqp_url, name=f"{names.sysname}-work"), work_time=0.2, retry=0.2
    )
    thread = threading.Thread(target=consumers.run, name="test-work-queues", daemon=True)
    thread.start()
    assert consumers.ready.wait(10)
    yield consumers
    consumers.stop()
    thread.join(10)
    assert not thread.is_alive()
    consumers.connection.release()


def test_each_wanted_instance_is_one_consumer_and_the_queue_is_declared(amqp_url, queue, work):
    work.want({"i-1": queue, "i-2": queue})
    wait_until(lambda: depth(amqp_url, queue)[1] == 2, 10, what="two consumers")
    assert work.consuming == {"i-1": queue, "i-2": queue}
    work.want({"i-2": queue})
    wait_until(lambda: depth(amqp_url, queue)[1] == 1, 10, what="one consumer left")
    assert work.consuming == {"i-2": queue}


def test_a_message_in_hand_goes_back_when_its_instance_goes(amqp_url, queue, work):
    work.work_time = 60.0  # the message stays in hand
    work.want({"i-1": queue})
    wait_until(lambda: depth(amqp_url, queue)[1] == 1, 10, what="a consumer")
    publish(amqp_url, queue, 1)
    wait_until(lambda: depth(amqp_url, queue)[0] == 0, 10, what="the message taken")
    work.want({})
    wait_until(lambda: depth(amqp_url, queue) == (1, 0), 10, what="the message back, ready")
    assert work.done == 0


def test_more_workers_drain_faster(amqp_url, queue, work):
    work.want({"i-1": queue})
    wait_until(lambda: depth(amqp_url, queue)[1] == 1, 10, what="a consumer")
    publish(amqp_url, queue, 30)
    wait_until(lambda: work.done >= 2, 10, what="work begun")
    assert work.busy <= 1  # one worker holds one message at a time
    work.want({"i-1": queue, "i-2": queue, "i-3": queue})
    wait_until(lambda: depth(amqp_url, queue)[1] == 3, 10, what="three consumers")
    wait_until(lambda: work.busy == 3, 10, what="three messages in hand at once")
    wait_until(lambda: work.done == 30, 20, what="all done")
    assert work.busy == 0
    assert depth(amqp_url, queue) == (0, 3)


def test_workers_are_made_again_after_the_broker_drops_them(amqp_url, names, queue, work):
    work.want({"i-1": queue})
    wait_until(lambda: depth(amqp_url, queue)[1] == 1, 10, what="a consumer")
    assert close_connections_named(f"{names.sysname}-work") == 1
    wait_until(lambda: depth(amqp_url, queue)[1] == 1 and work.ready.is_set(), 20, what="back")
    publish(amqp_url, queue, 2)
    wait_until(lambda: work.done == 2, 10, what="the work done after the reconnect")


def test_a_queue_that_cannot_be_declared_leaves_the_other_workers_working(
    amqp_url, names, queue, work
):
    forbidden = f"amq.{names.sysname}"  # the broker refuses to declare amq.* names
    work.want({"i-1": forbidden, "i-2": queue})
    wait_until(lambda: depth(amqp_url, queue)[1] == 1, 10, what="the good worker")
    publish(amqp_url, queue, 2)
    wait_until(lambda: work.done == 2, 10, what="the good worker's work")
    assert work.consuming == {"i-2": queue}
    assert work.ready.is_set()
