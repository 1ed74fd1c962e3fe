"""A service's requests spread over queue shards by sender, on a real RabbitMQ."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection, Queue

from epum.errors import ConfigError
from epum.messaging import Dispatcher, RpcServer
from epum.messaging.connection import exchange, make_connection
from epum.messaging.names import Names
from epum.messaging.queue_stats import service_queue_stats
from epum.messaging.retry import RetryPolicy, delete_namespace
from epum.messaging.service_queues import SHARDING_PLUGIN, ServiceQueues, shard_names
from epum.settings import settings_from_dict
from tests import rabbit
from tests.kit import wait_until
from tests.rabbit import running
from tests.rabbit_management import ensure_plugin

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url

SERVICE = "sharded"
SHARDS = 3


@pytest.fixture
def names(amqp_url: str) -> Iterator[Names]:
    """A fresh sysname, its queues, shards and exchanges deleted after the test."""
    ensure_plugin(SHARDING_PLUGIN)
    names = Names(sysname=rabbit.new_sysname())
    yield names
    with Connection(amqp_url) as conn:
        delete_namespace(conn, names, (SERVICE,), RetryPolicy(), shards=SHARDS)


class Notes:
    """Records the notes it is sent, by sender, in the order handled."""

    def __init__(self) -> None:
        self.by_sender: dict[str, list[int]] = {}
        self.count = 0
        self.lock = threading.Lock()

    def note(self, sender: str, n: int) -> None:
        with self.lock:
            self.by_sender.setdefault(sender, []).append(n)
            self.count += 1

    def table(self) -> dict:
        return {"note": self.note, "echo": lambda value=None: value}


def sharded_server(url: str, names: Names, notes: Notes, shards: int = SHARDS) -> RpcServer:
    return RpcServer(
        make_connection(url, name=f"{names.sysname}-sharded"),
        names,
        SERVICE,
        Dispatcher(notes.table()),
        prefetch=16,
        handlers=4,
        poll_interval=0.1,
        shards=shards,
    )


def publish(conn: Connection, names: Names, body: dict, headers: dict) -> None:
    """Publish as any client does: to the system's exchange, under the service's name."""
    producer = conn.Producer(exchange=exchange(names), auto_declare=False)
    producer.publish(
        json.dumps(body),
        routing_key=names.qualify(SERVICE),
        content_type="application/json",
        content_encoding="utf-8",
        headers=headers,
    )


def depths(conn: Connection, queues: ServiceQueues) -> list[int]:
    channel = conn.channel()
    try:
        return [
            channel.queue_declare(name, passive=True).message_count
            for name in queues.names_on_broker
        ]
    finally:
        channel.close()


def note(sender: str, n: int) -> dict:
    return {"op": "note", "args": {"sender": sender, "n": n}}


def test_requests_are_dealt_over_the_shards_by_sender_each_handled_once_in_order(amqp_url, names):
    notes = Notes()
    server = sharded_server(amqp_url, names, notes)
    senders = [f"agent-{uuid.uuid4().hex[:6]}" for _ in range(40)]
    with Connection(amqp_url) as conn:
        server.queues.declare(conn.default_channel, conn.channel_errors)  # as the server does
        for n in range(10):
            for sender in senders:
                publish(conn, names, note(sender, n), {"sender": sender})
        waiting = depths(conn, server.queues)
        stats = service_queue_stats(conn, names, SERVICE, SHARDS)  # what epumctl status shows
    assert [(q["queue"], q["messages"]) for q in stats] == list(
        zip([SERVICE, *shard_names(SERVICE, SHARDS)], waiting, strict=True)
    )
    assert waiting[0] == 0 and sum(waiting) == 400  # the service queue is bound no more
    assert all(depth > 0 for depth in waiting[1:])  # every shard was dealt some
    with running(server):
        assert wait_until(lambda: notes.count == 400, 20)
    assert notes.by_sender == {sender: list(range(10)) for sender in senders}


def test_what_waited_in_the_service_queue_and_a_call_without_sender_are_served(amqp_url, names):
    notes = Notes()
    with Connection(amqp_url) as conn:
        ServiceQueues(names, SERVICE).declare(conn.default_channel, conn.channel_errors)
        publish(conn, names, note("before", 1), {"sender": "before"})  # into the bound queue
    server = sharded_server(amqp_url, names, notes)
    reply_key = names.qualify(f"reply-{uuid.uuid4().hex[:8]}")
    with Connection(amqp_url) as conn, running(server):
        replies = Queue(reply_key, exchange(names), routing_key=reply_key, exclusive=True)
        replies(conn.default_channel).declare()
        call = {"op": "echo", "args": {"value": "no sender"}}
        publish(conn, names, call, {"reply-to": reply_key})  # dashi's reply style
        got = wait_until(lambda: replies(conn.default_channel).get(no_ack=True), 10, "a reply")
        assert json.loads(got.body)["result"] == "no sender"
        assert wait_until(lambda: notes.by_sender == {"before": [1]}, 10)


def test_a_broker_without_the_plugin_is_a_config_error_naming_it():
    class Refusing(Exception):
        pass

    class Channel:
        def exchange_declare(self, *args, **kwargs):
            raise Refusing("COMMAND_INVALID - unknown exchange type 'x-consistent-hash'")

    queues = ServiceQueues(Names(sysname="s"), SERVICE, shards=2)
    with pytest.raises(ConfigError, match=SHARDING_PLUGIN):
        queues.declare(Channel(), (Refusing,))


def test_queue_shards_is_a_setting_with_bounds():
    assert settings_from_dict({"server": {"amqp": {"queue_shards": 4}}}).amqp.queue_shards == 4
    for bad in (0, 65):
        with pytest.raises(ConfigError, match="queue_shards"):
            settings_from_dict({"server": {"amqp": {"queue_shards": bad}}})
    with pytest.raises(ValueError, match="at least 1"):
        ServiceQueues(Names(sysname="s"), SERVICE, shards=0)
