"""The RPC server and client against a real RabbitMQ, with a plain service class."""

from __future__ import annotations

import bz2
import json
import logging
import pickle
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from epum.errors import (
    BadRequestError,
    NotFoundError,
    RemoteError,
    StoreUnavailableError,
    UnknownOperationError,
    WriteConflictError,
)
from epum.logcontext import LogContextFilter, current
from epum.messaging import (
    Dispatcher,
    NoSuchServiceError,
    RpcClient,
    RpcServer,
    RpcTimeoutError,
)
from epum.messaging.connection import exchange, make_connection, service_queue
from epum.messaging.metrics import OpMetrics
from epum.messaging.names import Names
from epum.messaging.retry import REASON_HEADER, RETRIES_HEADER, RetryPolicy
from tests import rabbit
from tests.kit import wait_until
from tests.rabbit import close_connections_named, running

pytestmark = pytest.mark.rabbitmq

# the broker fixtures, shared through tests/rabbit.py
amqp_url = rabbit.amqp_url
names = rabbit.names

SERVICE = "svc"


class Service:
    """A plain service: what it handled, and a few ways to fail."""

    def __init__(self, name: str = "worker"):
        self.name = name
        self.handled: list[tuple[str, object]] = []
        self.event = threading.Event()
        self.delay = 0.0

    def table(self) -> dict:
        return {
            "echo": self.echo,
            "who": self.who,
            "note": self.note,
            "bad_request": self.bad_request,
            "not_found": self.not_found,
            "conflict": self.conflict,
            "unlisted": self.unlisted,
            "unserializable": self.unserializable,
            "context": self.context,
            "flaky_store": self.flaky_store,
            "store_down": self.store_down,
        }

    def echo(self, value=None):
        self.handled.append(("echo", value))
        if self.delay:
            time.sleep(self.delay)  # a slow service is what the test is about
        return value

    def who(self):
        return self.name

    def note(self, value):
        self.handled.append(("note", value))
        if self.delay:
            time.sleep(self.delay)  # a slow service is what the test is about
        self.event.set()

    def bad_request(self):
        raise BadRequestError("bad one")

    def not_found(self):
        raise NotFoundError("no such thing")

    def conflict(self):
        raise WriteConflictError("lost the race")

    def unlisted(self):
        raise KeyError("weird")

    def context(self):
        ctx = current()
        logging.getLogger("epum.test.handler").info("handling")
        return {"request_id": ctx.request_id, "op": ctx.op, "sender": ctx.sender}

    def unserializable(self):
        return {"when": object()}

    def flaky_store(self, value):
        self.handled.append(("flaky_store", value))
        if sum(op == "flaky_store" for op, _ in self.handled) < 3:
            raise StoreUnavailableError("zookeeper is down")
        self.event.set()

    def store_down(self, value):
        self.handled.append(("store_down", value))
        raise StoreUnavailableError("zookeeper is down for good")


@pytest.fixture
def service() -> Service:
    return Service()


@pytest.fixture(params=[1, 4], ids=["inline", "4-handlers"])
def make_server(amqp_url: str, names: Names, request) -> Iterator:
    """Build RpcServers for ``names`` whose connections are named for the test, each test
    once handling requests on the consumer's thread and once on 4 handler threads."""
    built: list[RpcServer] = []

    def make(
        svc: Service,
        *,
        prefetch: int = 1,
        conn_name: str | None = None,
        retry: RetryPolicy | None = None,
        metrics: OpMetrics | None = None,
    ) -> RpcServer:
        conn = make_connection(amqp_url, heartbeat=10, name=conn_name or f"{names.sysname}-srv")
        server = RpcServer(
            conn,
            names,
            SERVICE,
            Dispatcher(svc.table()),
            prefetch=prefetch,
            handlers=request.param,
            poll_interval=0.1,
            retry=retry,
            metrics=metrics,
        )
        built.append(server)
        return server

    yield make
    with Connection(amqp_url) as conn:
        channel = conn.channel()
        for server in built:
            server.connection.release()
            for queue in server.failed_fire_queues:
                channel.queue_delete(queue.name)


@pytest.fixture
def client(amqp_url: str, names: Names) -> Iterator[RpcClient]:
    rpc = RpcClient(
        make_connection(amqp_url, name=f"{names.sysname}-client"), names, "tester", timeout=5
    )
    yield rpc
    rpc.close()


def queue_depth(amqp_url: str, name: str) -> int:
    with Connection(amqp_url) as conn:
        return conn.default_channel.queue_declare(name, passive=True).message_count


class RawPeer:
    """A hand-built peer: publishes raw requests, listens on its own reply queue."""

    def __init__(self, url: str, names: Names):
        self.names = names
        self.conn = Connection(url)
        self.channel = self.conn.channel()
        self.exchange = exchange(names)(self.channel)
        self.reply_key = names.qualify(f"reply-{uuid.uuid4().hex[:8]}")
        self.queue = Queue(
            self.reply_key, self.exchange, routing_key=self.reply_key, exclusive=True
        )(self.channel)
        self.queue.declare()

    def publish(
        self, body, *, content_type="application/json", content_encoding=None, headers=None, **props
    ) -> None:
        message = self.exchange.Message(
            body,
            content_type=content_type,
            content_encoding=content_encoding,
            headers=headers,
            properties=props,
        )
        self.exchange.publish(message, routing_key=self.names.qualify(SERVICE))

    def reply(self, timeout: float = 5.0) -> dict:
        message = wait_until(lambda: self.queue.get(no_ack=True), timeout, "a reply")
        assert message.content_type == "application/json"
        return json.loads(message.body)

    def close(self) -> None:
        self.conn.release()


@pytest.fixture
def raw(amqp_url: str, names: Names) -> Iterator[RawPeer]:
    peer = RawPeer(amqp_url, names)
    yield peer
    peer.close()


# --- round trips --------------------------------------------------------------


def test_call_returns_the_result_and_fire_reaches_the_service(make_server, service, client):
    with running(make_server(service)):
        assert client.call(SERVICE, "echo", value={"a": [1, 2, None]}) == {"a": [1, 2, None]}
        client.fire(SERVICE, "note", value="fired")
        assert service.event.wait(5)
    assert ("note", "fired") in service.handled


@pytest.mark.parametrize(
    ("op", "error"),
    [
        ("bad_request", BadRequestError),
        ("not_found", NotFoundError),
        ("conflict", WriteConflictError),
        ("no_such_op", UnknownOperationError),
    ],
)
def test_known_errors_come_back_as_themselves(make_server, service, client, op, error):
    with running(make_server(service)), pytest.raises(error):
        client.call(SERVICE, op)


def test_an_unlisted_error_comes_back_as_remote_error_with_its_type(make_server, service, client):
    with running(make_server(service)):
        with pytest.raises(RemoteError) as info:
            client.call(SERVICE, "unlisted")
        assert info.value.exc_type == "KeyError"
        assert "weird" in info.value.value
        assert "Traceback" in (info.value.traceback or "")
        assert client.call(SERVICE, "echo", value=1) == 1  # still serving


def test_bad_args_are_refused_before_the_handler_runs(make_server, service, client):
    with running(make_server(service)):
        with pytest.raises(BadRequestError, match="unexpected keyword argument 'nope'"):
            client.call(SERVICE, "echo", nope=1)
        with pytest.raises(BadRequestError, match="missing a required argument"):
            client.call(SERVICE, "note")
    assert service.handled == []


def test_a_result_that_does_not_serialize_is_an_error_reply(make_server, service, client):
    with running(make_server(service)):
        with pytest.raises(RemoteError, match="does not serialize to JSON"):
            client.call(SERVICE, "unserializable")
        assert client.call(SERVICE, "echo", value="alive") == "alive"


def test_the_call_context_follows_the_request_into_the_handler_and_its_logs(
    make_server, service, client, caplog
):
    context_filter = LogContextFilter()
    caplog.handler.addFilter(context_filter)
    try:
        with (
            caplog.at_level(logging.INFO, logger="epum.test.handler"),
            running(make_server(service)),
        ):
            first = client.call(SERVICE, "context")
            second = client.call(SERVICE, "context")
    finally:
        caplog.handler.removeFilter(context_filter)
    assert first["op"] == "context" and first["sender"] == "tester"
    assert first["request_id"] and first["request_id"] != second["request_id"]
    logged = [r for r in caplog.records if r.name == "epum.test.handler"]
    assert [(r.request_id, r.op) for r in logged] == [
        (first["request_id"], "context"),
        (second["request_id"], "context"),
    ]


def test_no_queue_fails_fast(make_server, service, client):
    started = time.monotonic()
    with pytest.raises(NoSuchServiceError, match="no queue for service"):
        client.call("nobody_here", "echo", timeout=10)
    assert time.monotonic() - started < 1.0


def test_a_slow_reply_times_out(make_server, service, client):
    service.delay = 1.0
    with running(make_server(service)):
        with pytest.raises(RpcTimeoutError):
            client.call(SERVICE, "echo", timeout=0.3, value=1)
        service.delay = 0
        assert client.call(SERVICE, "echo", value=2) == 2  # the late reply is not mistaken


# --- the compatible (dashi) wire format -----------------------------------------------


def test_a_hand_built_dashi_request_gets_a_dashi_reply(make_server, service, raw):
    with running(make_server(service)):
        raw.publish(
            json.dumps({"op": "echo", "args": {"value": [1, "x"]}}),
            headers={"reply-to": raw.reply_key, "sender": raw.names.qualify("old")},
        )
        assert raw.reply() == {"result": [1, "x"], "error": None}
        raw.publish(
            json.dumps({"op": "not_found", "args": {}}), headers={"reply-to": raw.reply_key}
        )
        reply = raw.reply()
    assert reply["result"] is None
    assert reply["error"]["exc_type"] == "dashi.exceptions.NotFoundError"
    assert reply["error"]["value"] == "no such thing"
    assert "traceback" in reply["error"]


def test_a_standard_reply_to_request_is_answered_with_its_correlation_id(make_server, service, raw):
    with running(make_server(service)):
        raw.publish(
            json.dumps({"op": "echo", "args": {"value": 7}}),
            reply_to=raw.reply_key,  # a queue name, through the default exchange
            correlation_id="corr-1",
        )
        message = wait_until(lambda: raw.queue.get(no_ack=True), 5, "the reply")
    assert message.properties["correlation_id"] == "corr-1"
    assert json.loads(message.body) == {"result": 7, "error": None}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("this is {not json", "not valid JSON"),
        (json.dumps({"args": {}}), "needs 'op'"),
        (json.dumps({"op": "echo", "args": [1, 2]}), "must be a JSON object"),
        (json.dumps([1, 2]), "must be a JSON object"),
    ],
)
def test_a_malformed_request_gets_an_error_reply_and_is_not_requeued(
    amqp_url, names, make_server, service, raw, client, body, match
):
    with running(make_server(service)):
        raw.publish(body, headers={"reply-to": raw.reply_key})
        reply = raw.reply()
        assert reply["error"]["exc_type"] == "dashi.exceptions.BadRequestError"
        assert match in reply["error"]["value"]
        assert client.call(SERVICE, "echo", value="next") == "next"
        assert queue_depth(amqp_url, names.qualify(SERVICE)) == 0
    assert service.handled == [("echo", "next")]


class _Tripwire:
    """Unpickling this creates the file named by ``path``."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_message_is_refused_without_being_deserialized(
    amqp_url, names, make_server, service, raw, client, tmp_path: Path
):
    tripwire = tmp_path / "unpickled"
    payload = pickle.dumps(_Tripwire(str(tripwire)))
    with pytest.raises(FileNotFoundError):
        tripwire.stat()
    server = make_server(service)
    with running(server):
        raw.publish(
            payload,
            content_type="application/x-python-serialize",
            content_encoding="binary",
            headers={"reply-to": raw.reply_key},
        )
        reply = raw.reply()
        # one message at a time (prefetch 1): once a later call is answered, the pickle
        # has been settled, and a (wrong) redelivery would have been served before it
        assert client.call(SERVICE, "echo", value="next") == "next"
        assert raw.queue.get(no_ack=True) is None, "the pickle was served twice"
        assert queue_depth(amqp_url, names.qualify(SERVICE)) == 0
    assert reply["error"]["exc_type"] == "dashi.exceptions.BadRequestError"
    assert "application/x-python-serialize" in reply["error"]["value"]
    assert not tripwire.exists()
    assert service.handled == [("echo", "next")]


def test_a_reply_to_header_too_long_to_route_does_not_stop_the_server(
    amqp_url, names, make_server, service, raw, client
):
    server = make_server(service)
    with running(server) as thread:
        # a routing key is at most 255 bytes: this reply cannot even be encoded
        raw.publish(
            json.dumps({"op": "echo", "args": {"value": 1}}), headers={"reply-to": "x" * 300}
        )
        assert wait_until(lambda: service.handled)
        assert client.call(SERVICE, "echo", value="next") == "next"
        assert thread.is_alive()
        assert queue_depth(amqp_url, names.qualify(SERVICE)) == 0
    assert service.handled == [("echo", 1), ("echo", "next")]


def test_a_message_that_cannot_be_decompressed_gets_an_error_reply(
    amqp_url, names, make_server, service, raw
):
    with running(make_server(service)):
        raw.publish(
            json.dumps({"op": "echo", "args": {"value": 1}}),
            headers={"reply-to": raw.reply_key, "compression": "no-such-codec"},
        )
        reply = raw.reply()
        assert queue_depth(amqp_url, names.qualify(SERVICE)) == 0
    assert reply["error"]["exc_type"] == "dashi.exceptions.BadRequestError"
    assert service.handled == []


def test_a_compressed_body_is_refused_without_being_inflated(
    amqp_url, names, make_server, service, raw
):
    """A 20 MB bz2 bomb of a few hundred bytes gets a BadRequestError at once."""
    bomb = bz2.compress(b"[" * 1000 + b" " * 20_000_000)
    assert len(bomb) < 1000
    with running(make_server(service)):
        started = time.monotonic()
        raw.publish(
            bomb,
            content_type="application/json",
            headers={"reply-to": raw.reply_key, "compression": "application/x-bz2"},
        )
        reply = raw.reply()
        assert time.monotonic() - started < 1.0
        assert queue_depth(amqp_url, names.qualify(SERVICE)) == 0
    assert reply["error"]["exc_type"] == "dashi.exceptions.BadRequestError"
    assert "compressed" in reply["error"]["value"]
    assert service.handled == []


@pytest.mark.parametrize(
    "value",
    [
        {"__type__": "decimal", "__value__": "1.5"},
        {"__type__": "no-such-type", "__value__": 1},
    ],
)
def test_any_json_object_arrives_as_plain_json(make_server, service, raw, value):
    with running(make_server(service)):
        raw.publish(
            json.dumps({"op": "echo", "args": {"value": value}}),
            headers={"reply-to": raw.reply_key},
        )
        reply = raw.reply()
    assert reply == {"result": value, "error": None}


# --- delivery -----------------------------------------------------------------------


def test_requests_sent_while_no_worker_runs_are_served_when_one_starts(
    amqp_url, names, make_server, service, client
):
    with running(make_server(service)):
        pass  # the queue now exists; nobody consumes from here on
    for i in range(3):
        client.fire(SERVICE, "note", value=i)
    answer: list = []
    caller = threading.Thread(
        target=lambda: answer.append(client.call(SERVICE, "echo", timeout=10, value="waited"))
    )
    caller.start()
    queue = names.qualify(SERVICE)
    wait_until(lambda: queue_depth(amqp_url, queue) == 4, what="the call to be queued too")
    assert service.handled == []
    with running(make_server(service)):
        caller.join(10)
        assert wait_until(lambda: len(service.handled) == 4)
    assert answer == ["waited"]
    assert sorted(v for op, v in service.handled if op == "note") == [0, 1, 2]


def test_two_workers_share_the_load(make_server, client):
    first, second = Service("first"), Service("second")
    first.delay = second.delay = 0.05
    with running(make_server(first)), running(make_server(second)):
        for i in range(20):
            client.fire(SERVICE, "note", value=i)
        assert wait_until(lambda: len(first.handled) + len(second.handled) == 20)
    assert len(first.handled) >= 5
    assert len(second.handled) >= 5


def test_stop_finishes_the_message_in_hand(make_server, service, client):
    service.delay = 0.5
    server = make_server(service)
    answer: list = []
    with running(server):
        caller = threading.Thread(
            target=lambda: answer.append(client.call(SERVICE, "echo", value="in hand"))
        )
        caller.start()
        assert wait_until(lambda: service.handled)
    caller.join(5)
    assert answer == ["in hand"]


# --- faults -------------------------------------------------------------------------


def test_the_server_survives_its_connection_closed_by_the_broker(
    names, make_server, service, client
):
    server = make_server(service, conn_name=f"{names.sysname}-victim")
    with running(server):
        assert client.call(SERVICE, "echo", value=1) == 1
        assert close_connections_named(f"{names.sysname}-victim") == 1
        wait_until(lambda: server.sessions == 2, 10, "a reconnect")
        assert client.call(SERVICE, "echo", value=2) == 2


def test_the_client_survives_its_connection_closed_by_the_broker(
    names, make_server, service, client
):
    with running(make_server(service)):
        assert client.call(SERVICE, "echo", value=1) == 1
        client.fire(SERVICE, "note", value="a")
        assert close_connections_named(f"{names.sysname}-client") >= 1
        assert client.call(SERVICE, "echo", value=2) == 2
        client.fire(SERVICE, "note", value="b")
        assert wait_until(lambda: ("note", "b") in service.handled)


def test_the_queue_is_durable_and_bound_under_its_own_name(amqp_url, names, make_server, service):
    with running(make_server(service)):
        pass
    with Connection(amqp_url) as conn:
        channel = conn.default_channel
        queue = service_queue(names, SERVICE)
        assert queue.durable and not queue.auto_delete and not queue.expires
        ok = channel.queue_declare(queue.name, passive=True)
        assert ok.queue == names.qualify(SERVICE)
        # declaring the exchange the way dashi does must not conflict
        Exchange(names.exchange, "direct", durable=False, auto_delete=False)(channel).declare()


def test_a_busy_pool_is_a_timeout_not_a_hang(amqp_url, names, make_server, service):
    service.delay = 1.0
    rpc = RpcClient(make_connection(amqp_url), names, "tester", timeout=5, pool_limit=1)
    try:
        with running(make_server(service)):
            slow = threading.Thread(target=lambda: rpc.call(SERVICE, "echo", value=1))
            slow.start()
            assert wait_until(lambda: service.handled)
            with pytest.raises(RpcTimeoutError, match="busy"):
                rpc.call(SERVICE, "echo", timeout=0.2, value=2)
            slow.join(5)
    finally:
        rpc.close()


def test_a_report_the_store_cannot_take_goes_back_to_the_queue(make_server, service, client):
    with running(make_server(service)):
        client.fire(SERVICE, "flaky_store", value="FAILED report")
        assert service.event.wait(15), "the report was lost"
    assert service.handled == [("flaky_store", "FAILED report")] * 3


def test_a_call_the_store_cannot_take_gets_the_error(make_server, service, client):
    with (
        running(make_server(service)),
        pytest.raises(RemoteError, match="StoreUnavailableError"),
    ):
        client.call(SERVICE, "flaky_store", value="x")


# --- delayed retry and dead letters ----------------------------------------------------


class CountingStatsd:
    """A statsd client that keeps the counter names it is sent."""

    def __init__(self):
        self.counted: list[str] = []

    def incr(self, name):
        self.counted.append(name)

    def timing(self, name, value):
        pass


@dataclass
class Taken:
    """A message as it lies in a queue: its raw body and headers."""

    body: bytes | str  # py-amqp decodes a utf-8 body
    headers: dict


def take(amqp_url: str, name: str, timeout: float = 10.0) -> Taken:
    """The next message of queue ``name`` (acked, not decoded), waiting up to ``timeout``."""
    with Connection(amqp_url) as conn:
        channel = conn.default_channel
        message = wait_until(
            lambda: channel.basic_get(name, no_ack=True), timeout, f"a message in {name}"
        )
    return Taken(message.body, message.properties.get("application_headers") or {})


def test_a_report_waiting_for_its_retry_does_not_hold_the_consumer(make_server, service, client):
    server = make_server(service, retry=RetryPolicy(retries=3, delay=2.0, delay_max=2.0))
    with running(server):
        client.fire(SERVICE, "flaky_store", value="FAILED report")
        assert wait_until(lambda: service.handled)
        started = time.monotonic()
        assert client.call(SERVICE, "echo", value="meanwhile") == "meanwhile"
        assert time.monotonic() - started < 0.5, "the consumer waited on the report"
        assert service.event.wait(15), "the report was lost"
    assert [v for op, v in service.handled if op == "flaky_store"] == ["FAILED report"] * 3
    assert service.handled[1] == ("echo", "meanwhile")  # served while the report waited


def test_a_report_the_store_never_takes_is_dead_lettered_after_the_last_retry(
    amqp_url, names, make_server, service, client
):
    statsd = CountingStatsd()
    server = make_server(
        service,
        retry=RetryPolicy(retries=2, delay=0.05, delay_max=0.1),
        metrics=OpMetrics(statsd),
    )
    assert server.dead_letter_queue == names.qualify(f"{SERVICE}.dead")
    with running(server):
        assert server.dead_letter_depth() == 0
        client.fire(SERVICE, "store_down", value="lost?")
        assert wait_until(lambda: server.dead_letter_depth() == 1, timeout=10)
        assert service.handled == [("store_down", "lost?")] * 3
        assert queue_depth(amqp_url, names.qualify(SERVICE)) == 0
        for queue in server.retry_queues:
            assert queue_depth(amqp_url, queue.name) == 0
    dead = take(amqp_url, server.dead_letter_queue)
    assert json.loads(dead.body) == {"op": "store_down", "args": {"value": "lost?"}}
    assert dead.headers[RETRIES_HEADER] == 2
    assert "store unavailable after 2 retries" in dead.headers[REASON_HEADER]
    assert "zookeeper is down for good" in dead.headers[REASON_HEADER]
    assert dead.headers["sender"] == names.qualify("tester")
    assert "x-death" not in dead.headers
    counted = [name for name in statsd.counted if not name.startswith("rpc.store_down")]
    assert counted == ["rpc.retried", "rpc.retried", "rpc.dead_lettered"]


@pytest.mark.parametrize(
    ("publish", "reason"),
    [
        (dict(body=json.dumps({"op": "bad_request", "args": {}})), "BadRequestError: bad one"),
        (dict(body=json.dumps({"op": "no_such_op", "args": {}})), "no_such_op"),
        (dict(body="{not json"), "not valid JSON"),
        (
            dict(body=b"\x80\x03.", content_type="application/x-python-serialize"),
            "application/x-python-serialize",
        ),
        (
            dict(body=json.dumps({"op": "echo", "args": {}}), headers={"compression": "nope"}),
            "refused a compressed message",  # refused before kombu tries to inflate it
        ),
    ],
    ids=["bad-request", "unknown-op", "not-json", "pickle", "undecodable"],
)
def test_a_fire_that_fails_for_good_is_dead_lettered_once_with_its_reason(
    amqp_url, names, make_server, service, raw, client, publish, reason
):
    server = make_server(service, retry=RetryPolicy(dead_letter=True))
    with running(server):
        raw.publish(**publish)
        dead = take(amqp_url, server.dead_letter_queue)
        client.fire(SERVICE, "note", value="next")
        assert service.event.wait(5)
        assert queue_depth(amqp_url, names.qualify(SERVICE)) == 0
        assert server.dead_letter_depth() == 0
    assert reason in dead.headers[REASON_HEADER]

    def raw_bytes(body):
        return body.encode() if isinstance(body, str) else body

    assert raw_bytes(dead.body) == raw_bytes(publish["body"])
    assert service.handled == [("note", "next")]


def test_without_dead_letter_a_bad_fire_is_only_logged(
    amqp_url, names, make_server, service, raw, client, caplog
):
    server = make_server(service)
    with caplog.at_level(logging.INFO, logger="epum.messaging"), running(server):
        raw.publish(json.dumps({"op": "bad_request", "args": {}}))
        client.fire(SERVICE, "note", value="next")
        assert service.event.wait(5)
        assert server.dead_letter_depth() == 0
        assert queue_depth(amqp_url, names.qualify(SERVICE)) == 0
    assert "bad_request failed: BadRequestError: bad one" in caplog.text


def test_a_call_with_dead_letter_on_gets_its_error_and_is_not_copied(make_server, service, client):
    server = make_server(service, retry=RetryPolicy(dead_letter=True))
    with running(server):
        with pytest.raises(BadRequestError):
            client.call(SERVICE, "bad_request")
        with pytest.raises(RemoteError, match="StoreUnavailableError"):
            client.call(SERVICE, "store_down", value="x")
        assert server.dead_letter_depth() == 0
    assert service.handled == [("store_down", "x")]


def test_a_reconnect_redeclares_the_retry_and_dead_letter_queues(
    amqp_url, names, make_server, service, client
):
    server = make_server(
        service,
        conn_name=f"{names.sysname}-victim",
        retry=RetryPolicy(retries=1, delay=0.05, delay_max=0.05),
    )
    with running(server):
        with Connection(amqp_url) as conn:
            channel = conn.channel()
            channel.queue_delete(server.dead_letter_queue)
            for queue in server.retry_queues:
                channel.queue_delete(queue.name)
        assert close_connections_named(f"{names.sysname}-victim") == 1
        wait_until(lambda: server.sessions == 2, 10, "a reconnect")
        client.fire(SERVICE, "store_down", value="after")
        assert wait_until(lambda: server.dead_letter_depth() == 1, timeout=10)
    assert service.handled == [("store_down", "after")] * 2
