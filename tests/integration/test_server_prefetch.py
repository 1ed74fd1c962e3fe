"""The RPC server with a prefetch above 1 on a real RabbitMQ: order kept, everything
acknowledged, and calls answered at once between fires."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kombu import Connection

from epum.messaging import Dispatcher, RpcClient, RpcServer
from epum.messaging.connection import make_connection, service_queue
from epum.messaging.names import Names
from tests import rabbit
from tests.kit import wait_until
from tests.rabbit import running

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names

SERVICE = "svc"
PREFETCH = 8


class Recorder:
    """Keeps the values of every ``note`` fire in the order handled."""

    def __init__(self) -> None:
        self.notes: list[int] = []
        self.lock = threading.Lock()

    def table(self) -> dict:
        return {"note": self.note, "echo": lambda value=None: value}

    def note(self, value: int) -> None:
        with self.lock:
            self.notes.append(value)


@pytest.fixture
def client(amqp_url: str, names: Names) -> Iterator[RpcClient]:
    rpc = RpcClient(make_connection(amqp_url, name=f"{names.sysname}-c"), names, "t", timeout=5)
    yield rpc
    rpc.close()


def server_for(amqp_url: str, names: Names, recorder: Recorder) -> RpcServer:
    conn = make_connection(amqp_url, heartbeat=10, name=f"{names.sysname}-srv")
    return RpcServer(
        conn, names, SERVICE, Dispatcher(recorder.table()), prefetch=PREFETCH, poll_interval=0.1
    )


def depth(amqp_url: str, names: Names) -> int:
    with Connection(amqp_url) as conn:
        queue = service_queue(names, SERVICE)
        return conn.default_channel.queue_declare(queue.name, passive=True).message_count


def test_fires_are_handled_in_order_and_all_acknowledged(
    amqp_url: str, names: Names, client: RpcClient
):
    recorder = Recorder()
    server = server_for(amqp_url, names, recorder)
    count = 5 * PREFETCH + 3  # full batches and a partial one
    with running(server):
        for value in range(count):
            client.fire(SERVICE, "note", value=value)
        wait_until(lambda: len(recorder.notes) == count, 10)
        # a call after the fires is answered: the partial batch did not hold anything up
        assert client.call(SERVICE, "echo", value="after") == "after"
    server.connection.release()
    assert recorder.notes == list(range(count))
    # unacknowledged deliveries would be back in the queue once the server's connection is gone
    assert depth(amqp_url, names) == 0


def test_a_second_server_gets_nothing_the_first_handled(
    amqp_url: str, names: Names, client: RpcClient
):
    first, second = Recorder(), Recorder()
    server = server_for(amqp_url, names, first)
    with running(server):
        for value in range(PREFETCH + 1):
            client.fire(SERVICE, "note", value=value)
        wait_until(lambda: len(first.notes) == PREFETCH + 1, 10)
    server.connection.release()
    replacement = server_for(amqp_url, names, second)
    with running(replacement):
        client.fire(SERVICE, "note", value=-1)
        wait_until(lambda: second.notes, 10)
    replacement.connection.release()
    assert second.notes == [-1]
