"""Benchmark: EPUM RPC round trips vs a bare kombu direct reply-to echo, same broker, same run.

- epum: an ``EPUManagement`` facade (memory store) served by the messaging
  package's ``RpcServer``; ``EPUManagementClient.list_domains`` through an
  ``RpcClient`` (direct reply-to), one call after another.
- bare: a kombu consumer that publishes each request's body back to its
  ``reply_to`` with the ``correlation_id``, and a client that publishes to it
  with ``reply_to=amq.rabbitmq.reply-to`` and waits on a reply consumer kept
  for the whole run: the least a broker round trip costs.

Both servers run in threads of this process; the two take turns call by
call.  p50 and p99 of each, and the ratio epum / bare, are printed.
Everything lives under a fresh sysname whose queues are deleted afterwards.

Run: ``.venv/bin/python -m bench.rpc [--calls N]`` (RabbitMQ at
``EPUM_TEST_AMQP_URL``, started locally if none answers).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from kombu import Connection, Consumer, Producer, Queue

from bench.common import Figure, Timing, ms, ratio, table, time_interleaved
from epum.management import EPUManagement
from epum.messaging import (
    Dispatcher,
    EPUManagementClient,
    EPUMOperations,
    RpcClient,
    RpcServer,
)
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from epum.sim.cloud import SimProvisioner
from epum.sim.stubs import SimDTRS, SimNotifier

SERVICE = "epum_bench"
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


@contextlib.contextmanager
def serving(server: RpcServer) -> Iterator[None]:
    """Run ``server`` in a thread until the block ends."""
    thread = threading.Thread(target=server.run, name="bench-rpc-server", daemon=True)
    thread.start()
    try:
        if not server.ready.wait(30):
            raise RuntimeError("the RPC server did not start consuming")
        yield
    finally:
        server.stop()
        thread.join(10)
        server.connection.release()


@contextlib.contextmanager
def epum_service(url: str, names: Names) -> Iterator[EPUManagement]:
    """A memory-store facade with one domain, served on the broker as ``SERVICE``."""
    facade = EPUManagement(
        {"_external_decide_invocations": True, "service_name": SERVICE},
        SimNotifier(time.time),
        SimProvisioner(),
        None,
        SimDTRS(),
    )
    facade.initialize()
    facade.msg_add_domain_definition("d", {"general": {"engine_class": "simplest"}})
    facade.msg_add_domain("bench", "dom", "d", {"engine_conf": {"preserve_n": 0}})
    server = RpcServer(
        make_connection(url, name=f"{names.sysname}-epum"),
        names,
        SERVICE,
        Dispatcher(EPUMOperations(facade).table()),
        poll_interval=0.1,
    )
    try:
        with serving(server):
            yield facade
    finally:
        facade.shutdown()


@contextlib.contextmanager
def epum_caller(url: str, names: Names) -> Iterator[Callable[[], object]]:
    """A served facade, and a function making one ``list_domains`` round trip to it."""
    with epum_service(url, names):
        rpc = RpcClient(make_connection(url, name=f"{names.sysname}-client"), names, "bench")
        try:
            client = EPUManagementClient(rpc, SERVICE, timeout=10)
            if client.list_domains(caller="bench") != ["dom"]:
                raise RuntimeError("list_domains did not answer as expected")
            yield lambda: client.list_domains(caller="bench")
        finally:
            rpc.close()


class BareEcho:
    """A bare kombu echo server: replies each body to its ``reply_to`` (default exchange)."""

    def __init__(self, url: str, queue_name: str):
        self.conn = Connection(url)
        self.queue = Queue(queue_name, auto_delete=True, durable=False)
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-bare-echo", daemon=True)

    def __enter__(self) -> BareEcho:
        self._thread.start()
        if not self.ready.wait(30):
            raise RuntimeError("the bare echo server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.conn.release()

    def _run(self) -> None:
        channel = self.conn.channel()
        producer = Producer(channel)

        def echo(body, message) -> None:
            producer.publish(
                body,
                routing_key=message.properties["reply_to"],
                correlation_id=message.properties.get("correlation_id"),
                serializer="json",
                delivery_mode=1,
            )
            message.ack()

        with Consumer(channel, queues=[self.queue], callbacks=[echo], accept=["json"]):
            self.ready.set()
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    self.conn.drain_events(timeout=0.2)


class BareClient:
    """Publishes to the echo queue and waits for the reply on direct reply-to."""

    def __init__(self, url: str, queue_name: str):
        self.conn = Connection(url)
        self.channel = self.conn.channel()
        self.queue_name = queue_name
        self.producer = Producer(self.channel)
        self._reply: object = None
        self._expected = ""
        self.consumer = Consumer(
            self.channel,
            queues=[Queue(DIRECT_REPLY_TO, no_ack=True)],
            on_message=self._on_reply,
            no_ack=True,
            accept=["json"],
            auto_declare=False,
        )
        self.consumer.consume()

    def _on_reply(self, message) -> None:
        if message.properties.get("correlation_id") == self._expected:
            self._reply = message.decode()

    def call(self, body: object, timeout: float = 10.0) -> object:
        """One round trip; returns the echoed body."""
        self._reply = None
        self._expected = uuid.uuid4().hex
        self.producer.publish(
            body,
            routing_key=self.queue_name,
            reply_to=DIRECT_REPLY_TO,
            correlation_id=self._expected,
            serializer="json",
            delivery_mode=1,
        )
        deadline = time.monotonic() + timeout
        while self._reply is None:
            self.conn.drain_events(timeout=max(0.001, deadline - time.monotonic()))
        return self._reply

    def close(self) -> None:
        """Stop listening and close the connection."""
        self.consumer.cancel()
        self.conn.release()


@contextlib.contextmanager
def bare_caller(url: str, names: Names) -> Iterator[Callable[[], object]]:
    """A bare echo server, and a function making one round trip to it."""
    queue_name = names.qualify("bare-echo")
    body = {"op": "list_domains", "args": {"caller": "bench"}}
    with BareEcho(url, queue_name):
        client = BareClient(url, queue_name)
        try:
            if client.call(body) != body:
                raise RuntimeError("the bare echo did not echo")
            yield lambda: client.call(body)
        finally:
            client.close()


def measure(url: str, calls: int, warmup: int = 50) -> tuple[Timing, Timing]:
    """(epum, bare) round-trip timings, taking turns call by call, under a fresh sysname."""
    from tests.rabbit import delete_namespace

    names = Names(sysname=f"bench{uuid.uuid4().hex[:10]}")
    try:
        with bare_caller(url, names) as bare, epum_caller(url, names) as epum:
            timings = time_interleaved({"epum": epum, "bare": bare}, calls, warmup)
    finally:
        delete_namespace(url, names)
    return timings["epum"], timings["bare"]


def ensure_broker(url: str) -> None:
    """Make sure a broker answers at ``url`` (start the local one if installed), or exit."""
    import pytest

    from tests.rabbit import ensure_broker as ensure

    try:
        ensure(url)
    except (pytest.skip.Exception, pytest.fail.Exception) as exc:
        raise SystemExit(f"bench.rpc: {exc}") from None


def figures(calls: int = 2000, warmup: int = 50, *, amqp_url: str | None = None) -> list[Figure]:
    """The round trip's p50 and p99 against the bare echo's (broker: ``amqp_url``, else
    ``EPUM_TEST_AMQP_URL``, the local one started if none answers)."""
    from tests.rabbit import AMQP_URL

    url = amqp_url or AMQP_URL
    ensure_broker(url)
    epum, bare = measure(url, calls, warmup)
    return [
        Figure(
            "list_domains round trip p50, memory facade",
            epum.median * 1000,
            "ms",
            bare=bare.median * 1000,
        ),
        Figure(
            "list_domains round trip p99, memory facade",
            epum.percentile(99) * 1000,
            "ms",
            bare=bare.percentile(99) * 1000,
        ),
    ]


#: Sizes small enough for the test suite (seconds, not minutes).
TINY = {"calls": 5, "warmup": 1}


def main(argv: list[str] | None = None) -> int:
    """Print the round-trip percentiles of both and their ratio."""
    from tests.rabbit import AMQP_URL

    parser = argparse.ArgumentParser(description="EPUM RPC round trips vs bare kombu echo")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--amqp-url", default=AMQP_URL)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    started = time.monotonic()
    ensure_broker(args.amqp_url)
    epum, bare = measure(args.amqp_url, args.calls, args.warmup)
    print(f"RPC round trips, {args.calls} sequential calls each, local broker")
    rows = [("measured", "p50", "p99", "ratio p50", "ratio p99")]
    bare_p99 = bare.percentile(99)
    rows.append(("bare kombu direct reply-to echo", ms(bare.median), ms(bare_p99), "", ""))
    rows.append(
        (
            "EPUManagementClient.list_domains",
            ms(epum.median),
            ms(epum.percentile(99)),
            ratio(epum.median, bare.median),
            ratio(epum.percentile(99), bare_p99),
        )
    )
    print(table(rows))
    print(f"\n(benchmark took {time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
