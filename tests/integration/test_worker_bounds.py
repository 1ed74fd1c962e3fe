"""A worker built from its config holds the consumer only briefly on outbound calls:
a DTRS queue nobody consumes (anyone can declare one) costs ``add_domain`` the
configured ``dtrs_timeout``, not the 30 s RPC timeout, and the call behind it
is not held 30 s either.  The domain is accepted and the problem logged."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
from kombu import Connection

from epum.config import config_from_dict
from epum.messaging import EPUManagementClient, RpcClient
from epum.messaging.connection import make_connection, service_queue
from epum.messaging.names import Names
from epum.service import Worker
from tests import rabbit

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names

DTRS_TIMEOUT = 0.5
DEFINITION = {
    "general": {"engine_class": "simplest"},
    "engine_conf": {"epuworker_type": "dt", "force_site": "site1", "preserve_n": 0},
}


@pytest.fixture
def worker(amqp_url: str, names: Names) -> Iterator[Worker]:
    """A worker serving in a thread, with a DTRS queue that has no consumer."""
    with Connection(amqp_url) as conn:
        service_queue(names, "dtrs")(conn.default_channel).declare()
    config = config_from_dict(
        {
            "server": {
                "amqp": {"url": amqp_url, "sysname": names.sysname, "dtrs_timeout": DTRS_TIMEOUT}
            },
            "epumanagement": {"default_user": "ops", "decider_loop_interval": 60},
            "worker_name": f"{names.sysname}-worker",
        },
        env={},
    )
    assert config.amqp.rpc_timeout == 30.0  # what add_domain waited before
    built = Worker(config)
    built.start()
    thread = threading.Thread(target=built.serve, name="worker", daemon=True)
    thread.start()
    try:
        assert built.server is not None and built.server.ready.wait(10)
        yield built
    finally:
        built.stop()
        thread.join(10)
        built.close()
        with Connection(amqp_url) as conn:
            channel = conn.channel()
            for queue in built.server.failed_fire_queues:
                channel.queue_delete(queue.name)


@pytest.fixture
def client(amqp_url: str, names: Names) -> Iterator[EPUManagementClient]:
    rpc = RpcClient(make_connection(amqp_url), names, "tester", timeout=20)
    yield EPUManagementClient(rpc)
    rpc.close()


def test_add_domain_waits_for_a_silent_dtrs_only_dtrs_timeout(worker, client, caplog):
    client.add_domain_definition("def1", DEFINITION)
    took: dict[str, float] = {}

    def add(domain_id: str) -> None:
        started = time.monotonic()
        client.add_domain(domain_id, "def1", {})
        took[domain_id] = time.monotonic() - started

    calls = [threading.Thread(target=add, args=(dom,)) for dom in ("first", "second")]
    with caplog.at_level(logging.WARNING, logger="epum.sites"):
        for call in calls:
            call.start()
        for call in calls:
            call.join(20)
    assert set(took) == {"first", "second"}, "a call did not return"
    # the one served first waited one bound; the other waited behind it, then its own
    assert DTRS_TIMEOUT <= min(took.values()) < DTRS_TIMEOUT + 2.5
    assert max(took.values()) < 2 * DTRS_TIMEOUT + 2.5
    assert caplog.text.count("could not check site site1") == 2
    assert sorted(client.list_domains()) == ["first", "second"]
