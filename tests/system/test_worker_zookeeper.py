"""Two epum-worker daemons sharing a ZooKeeper store and one service queue."""

from __future__ import annotations

import pytest
import yaml
from kombu import Connection

from epum.messaging.names import Names
from tests import rabbit, zk_server
from tests.kit import wait_until
from tests.system.test_worker import finish, launch, write_config

pytestmark = [pytest.mark.rabbitmq, pytest.mark.zookeeper]

amqp_url = rabbit.amqp_url
names = rabbit.names
zookeeper = zk_server.zk_server


def test_two_workers_share_the_queue_and_the_store(amqp_url, names: Names, zookeeper, tmp_path):
    base = write_config(tmp_path / "epum.yaml", names, "unused")
    shared = tmp_path / "zk.yaml"
    # the original's shape: the server.zookeeper section alone selects the ZooKeeper
    # store (no persistence_type), so sharing one store proves that it did
    zk = {"hosts": zookeeper.hosts, "path": f"/{names.sysname}", "timeout": 10}
    shared.write_text(yaml.safe_dump({"server": {"zookeeper": zk}}))
    daemons = []
    try:
        for n in (1, 2):
            own = tmp_path / f"w{n}.yaml"
            own.write_text(f"worker_name: {names.sysname}-w{n}\n")
            daemons.append(launch(amqp_url, names, [base, shared, own], f"{names.sysname}-w{n}"))
        first, second = daemons
        wait_for_consumers(amqp_url, names.qualify("epu_management_service"), 2)

        # one store: what goes in through one worker comes out of either (the other
        # worker's watch-fed cache may lag a few ms behind: wait for it, then expect it
        # from every worker)
        first.client.add_domain("dom2", "def1", {"engine_conf": {"preserve_n": 0}}, caller="bob")
        wait_until(lambda: second.client.list_domains(caller="bob") == ["dom2"], 5, "dom2")
        for _ in range(6):
            assert second.client.list_domains(caller="bob") == ["dom2"]
            assert second.client.list_domains() == ["dom1"]

        code, seconds, _ = first.stop()
        assert (code, seconds < 5) == (0, True)
        assert second.client.list_domain_definitions() == ["def1"]
        code, _, log = second.stop()
        assert code == 0
        assert "decider: elected" in log  # at the start, or once the first worker left
    finally:
        for daemon in daemons:
            finish(daemon)


def wait_for_consumers(url: str, queue: str, count: int, timeout: float = 20.0) -> None:
    """Wait until ``queue`` has ``count`` consumers (the second worker may still be starting)."""
    with Connection(url) as conn:
        wait_until(
            lambda: conn.default_channel.queue_declare(queue, passive=True).consumer_count == count,
            timeout,
            f"{count} consumers of {queue}",
        )
