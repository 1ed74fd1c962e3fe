"""RabbitMQ test kit: the broker URL, a broker started when none answers,
a unique sysname per test with its queues and exchange deleted afterwards
(and whatever is left under test sysnames swept at the end of the session),
servers run in threads, and a fault helper that cuts a connection from the
broker side.

A test module takes the fixtures by assigning them at module level
(``amqp_url = rabbit.amqp_url``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection

from epum.messaging import retry
from epum.messaging.names import Names
from epum.messaging.retry import RetryPolicy
from tests.kit import WaitTimeout, wait_until

AMQP_URL = os.environ.get("EPUM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def broker_answers(url: str = AMQP_URL, timeout: float = 2.0) -> bool:
    """True when an AMQP broker accepts a connection at ``url``."""
    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def ensure_broker(url: str = AMQP_URL, wait: float = 60.0) -> None:
    """Make sure a broker answers at ``url``: start the local one if it is installed."""
    if broker_answers(url):
        return
    if not shutil.which("rabbitmq-server"):
        pytest.fail(f"no broker at {url} and rabbitmq-server is not installed (run scripts/setup)")
    subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True)

    def answers() -> bool:
        status = subprocess.run(["rabbitmqctl", "-q", "status"], capture_output=True, check=False)
        return status.returncode == 0 and broker_answers(url)

    try:
        wait_until(answers, wait, interval=0.5)
    except WaitTimeout:
        pytest.fail(f"started rabbitmq-server but no broker answered at {url} within {wait} s")


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """The test broker's URL (a broker is started if none answers).

    At the end of the session every queue and exchange left under a sysname
    this session handed out is deleted (never another session's: several test
    runs may share one broker).
    """
    ensure_broker(AMQP_URL)
    yield AMQP_URL
    sweep_test_namespaces(AMQP_URL)


TEST_SYSNAME = re.compile(r"^t[0-9a-f]{12}\.")


#: The sysnames this test session handed out (only these are swept).
SESSION_SYSNAMES: set[str] = set()


def new_sysname() -> str:
    """A fresh test sysname (``t`` + 12 hex digits), remembered for the session's sweep."""
    sysname = f"t{uuid.uuid4().hex[:12]}"
    SESSION_SYSNAMES.add(sysname)
    return sysname


def sweep_test_namespaces(url: str) -> None:
    """Delete every queue and exchange left under a sysname of this session."""

    def listed(kind: str) -> list[str]:
        out = subprocess.run(
            ["rabbitmqctl", "-q", kind, "--no-table-headers", "name"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        found = (TEST_SYSNAME.match(n.strip()) for n in out.splitlines())
        return [m.string for m in found if m and m.group(0)[:-1] in SESSION_SYSNAMES]

    queues, exchanges = listed("list_queues"), listed("list_exchanges")
    with Connection(url) as conn:
        channel = conn.channel()
        for queue in queues:
            channel.queue_delete(queue)
        for name in exchanges:
            channel.exchange_delete(name)


#: Service queues the tests use; deleted (under the test's sysname) after each test.
TEST_SERVICES = (
    "svc",
    "epu_management_service",
    "provisioner",
    "dtrs",
    "subscriber",
    "agent-1",
)


@pytest.fixture
def names(amqp_url: str) -> Iterator[Names]:
    """A fresh sysname for this test; its queues and exchange are deleted after it."""
    names = Names(sysname=new_sysname())
    yield names
    delete_namespace(amqp_url, names)


def delete_namespace(url: str, names: Names, services: tuple[str, ...] = TEST_SERVICES) -> None:
    """Delete the sysname's queues of ``services`` (with their dead-letter queue and the
    retry queues of the default policy) and its exchange (missing ones are fine)."""
    with Connection(url) as conn:
        retry.delete_namespace(conn, names, services, RetryPolicy())


@contextlib.contextmanager
def running(server, timeout: float = 10.0) -> Iterator[threading.Thread]:
    """Run an ``RpcServer`` in a thread until the block ends; waits until it consumes."""
    thread = threading.Thread(target=server.run, name="rpc-server", daemon=True)
    thread.start()
    try:
        assert server.ready.wait(timeout), "the RPC server did not start consuming"
        yield thread
    finally:
        server.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the RPC server did not stop"


def connections_named(name: str) -> list[str]:
    """The broker-side pids of the client connections whose connection_name is ``name``."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "--no-table-headers", "pid", "client_properties"],
        capture_output=True,
        text=True,
        check=True,
    )
    marker = f'{{"connection_name","{name}"}}'
    return [line.split("\t", 1)[0].strip() for line in listed.stdout.splitlines() if marker in line]


def close_connections_named(name: str, reason: str = "test") -> int:
    """Close, from the broker side, every connection called ``name``; how many."""
    pids = connections_named(name)
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "close_connection", pid, reason], check=True, capture_output=True
        )
    return len(pids)


def unacknowledged(queue: str) -> int:
    """How many of ``queue``'s messages are delivered and not yet acknowledged."""
    listed = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_queues",
            "--no-table-headers",
            "name",
            "messages_unacknowledged",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in listed.stdout.splitlines():
        name, _, count = line.rpartition("\t")
        if name.strip() == queue:
            return int(count)
    raise LookupError(f"no queue {queue} on the broker")
