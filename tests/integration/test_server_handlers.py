"""The RPC server with handler threads on a real RabbitMQ: each key's requests in order,
other keys alongside, and nothing acknowledged before it is handled."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection

from epum.messaging import Dispatcher, RpcClient, RpcServer
from epum.messaging.connection import make_connection, service_queue
from epum.messaging.names import Names
from epum.operation_spec import SERIAL
from tests import rabbit
from tests.kit import wait_until
from tests.rabbit import close_connections_named, running, unacknowledged

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names

SERVICE = "svc"
#: How long a report's handler takes, as a store write would (seconds).
ROUND_TRIP = 0.002


class Report:
    """A fire ordered by its ``node`` argument (as an EPUM report is by its instance)
    that takes ``ROUND_TRIP`` seconds, as a store write would; a report of a node in
    ``held`` waits until ``release`` is set."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.held: set[str] = set()
        self.release = threading.Event()
        self.started = threading.Event()
        self.running = 0
        self.most_at_once = 0

    def order_key(self, args: dict[str, Any]) -> Any:
        return ("node", args["node"]) if isinstance(args.get("node"), str) else SERIAL

    def __call__(self, node: str, value: int) -> None:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        if node in self.held:
            self.started.set()
            self.release.wait(10)
        time.sleep(ROUND_TRIP)  # the store's round trip, during which others may run
        with self.lock:
            self.running -= 1
            self.seen.append((node, value))

    def echo(self, value: Any = None) -> Any:
        """A call: noted in ``seen`` under the node ``call``."""
        with self.lock:
            self.seen.append(("call", value))
        return value

    def of(self, node: str) -> list[int]:
        with self.lock:
            return [value for n, value in self.seen if n == node]


@pytest.fixture
def client(amqp_url: str, names: Names) -> Iterator[RpcClient]:
    rpc = RpcClient(make_connection(amqp_url, name=f"{names.sysname}-c"), names, "t", timeout=5)
    yield rpc
    rpc.close()


def server_for(amqp_url: str, names: Names, report: Report, name: str = "srv") -> RpcServer:
    conn = make_connection(amqp_url, heartbeat=10, name=f"{names.sysname}-{name}")
    table = {"report": report, "echo": report.echo}
    return RpcServer(
        conn, names, SERVICE, Dispatcher(table), prefetch=16, handlers=4, poll_interval=0.1
    )


def depth(amqp_url: str, names: Names) -> int:
    with Connection(amqp_url) as conn:
        queue = service_queue(names, SERVICE)
        return conn.default_channel.queue_declare(queue.name, passive=True).message_count


def test_each_nodes_reports_keep_their_order_while_nodes_run_side_by_side(
    amqp_url: str, names: Names, client: RpcClient
):
    report = Report()
    server = server_for(amqp_url, names, report)
    nodes = [f"n{i}" for i in range(8)]
    with running(server):
        for value in range(40):
            for node in nodes:
                client.fire(SERVICE, "report", node=node, value=value)
        wait_until(lambda: len(report.seen) == 40 * len(nodes), 20)
        assert client.call(SERVICE, "echo", value="after") == "after"
    server.connection.release()
    for node in nodes:
        assert report.of(node) == list(range(40)), node
    assert report.most_at_once > 1, "no two nodes' reports ever ran at once"
    assert depth(amqp_url, names) == 0  # everything was acknowledged


def test_a_held_report_holds_up_only_its_own_node_and_is_acknowledged_last(
    amqp_url: str, names: Names, client: RpcClient
):
    report = Report()
    report.held = {"slow"}
    server = server_for(amqp_url, names, report, name="victim")
    with running(server):
        client.fire(SERVICE, "report", node="slow", value=0)
        client.fire(SERVICE, "report", node="slow", value=1)
        assert report.started.wait(5)
        for value in range(5):
            client.fire(SERVICE, "report", node="fast", value=value)
        wait_until(lambda: report.of("fast") == list(range(5)), 10)
        assert report.of("slow") == []
        queue = service_queue(names, SERVICE).name
        wait_until(lambda: unacknowledged(queue) == 2, 10, "the fast reports acknowledged")
        # the held report and the one behind it are not acknowledged: a lost connection
        # gives them to the next consumer, and only them
        assert close_connections_named(f"{names.sysname}-victim") == 1
        wait_until(lambda: server.sessions == 2, 10)
        report.release.set()
        wait_until(lambda: report.of("slow")[-2:] == [0, 1], 10)
    server.connection.release()
    # the slow reports ran once on the old channel and once again, redelivered, in order
    assert report.of("slow") in ([0, 1, 0, 1], [0, 0, 1, 1], [0, 1]), report.of("slow")
    assert report.of("fast") == list(range(5))
    assert depth(amqp_url, names) == 0


def test_a_call_waits_for_the_reports_before_it_and_the_reports_after_it_wait_for_it(
    amqp_url: str, names: Names, client: RpcClient
):
    report = Report()
    report.held = {"slow"}
    server = server_for(amqp_url, names, report)
    answers: list[Any] = []
    with running(server):
        client.fire(SERVICE, "report", node="slow", value=0)
        assert report.started.wait(5)
        caller = threading.Thread(
            target=lambda: answers.append(client.call(SERVICE, "echo", value="after slow")),
            name="caller",
        )
        caller.start()
        wait_until(lambda: unacknowledged(service_queue(names, SERVICE).name) == 2, 10)
        client.fire(SERVICE, "report", node="fast", value=0)
        wait_until(lambda: unacknowledged(service_queue(names, SERVICE).name) == 3, 10)
        # the call and the report after it wait for the held report
        assert answers == [] and report.of("fast") == []
        report.release.set()
        caller.join(10)
        wait_until(lambda: report.of("fast") == [0], 10)
    server.connection.release()
    assert answers == ["after slow"]
    assert report.seen == [("slow", 0), ("call", "after slow"), ("fast", 0)]


class Beat:
    """A quick report (served from a cache, say) ordered as ``Report`` is; notes the
    thread each one ran on."""

    quick = True

    def __init__(self, report: Report) -> None:
        self.report = report
        self.threads: list[tuple[str, str]] = []
        self.order_key = report.order_key

    def __call__(self, node: str, value: int) -> None:
        self.threads.append((node, threading.current_thread().name))

    def on(self, node: str) -> list[str]:
        return [thread for n, thread in self.threads if n == node]


def test_a_quick_request_runs_on_the_consumers_thread_unless_it_must_wait(
    amqp_url: str, names: Names, client: RpcClient
):
    report = Report()
    report.held = {"slow"}
    beat = Beat(report)
    conn = make_connection(amqp_url, heartbeat=10, name=f"{names.sysname}-srv")
    table = {"report": report, "beat": beat, "echo": report.echo}
    server = RpcServer(
        conn, names, SERVICE, Dispatcher(table), prefetch=16, handlers=4, poll_interval=0.1
    )
    with running(server) as consumer:
        client.fire(SERVICE, "beat", node="free", value=0)
        wait_until(lambda: len(beat.on("free")) == 1, 10)
        client.fire(SERVICE, "report", node="slow", value=0)
        assert report.started.wait(5)
        client.fire(SERVICE, "beat", node="slow", value=1)  # must follow the held report
        client.fire(SERVICE, "beat", node="free", value=1)  # need not
        wait_until(lambda: len(beat.on("free")) == 2, 10)
        assert beat.on("slow") == []
        report.release.set()
        wait_until(lambda: len(beat.on("slow")) == 1, 10)
    server.connection.release()
    assert beat.on("free") == [consumer.name, consumer.name]
    assert beat.on("slow")[0].startswith("epum-"), beat.threads
