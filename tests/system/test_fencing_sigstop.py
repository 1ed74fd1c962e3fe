"""Pausing the decider past its session: two epum-worker daemons on one
ZooKeeper store; the deciding worker is stopped (SIGSTOP) in the middle of a
decision, the other takes office and decides, and the paused one is resumed
(SIGCONT) and finishes its decision: nothing it writes or sends lands.

The provisioner's queue is read by the test itself, so every request the
workers send is seen; the ``GatedEngine`` marks each launch with the pid of
the worker that made it.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from kombu import Connection

from epum.messaging import EPUManagementClient, RpcClient
from epum.messaging.connection import make_connection, service_queue
from epum.messaging.names import Names
from epum.settings import ZooKeeperSettings
from epum.store.zookeeper import ZooKeeperEPUMStore
from tests import rabbit, zk_server
from tests.system.test_failover import (
    _answers,
    leader_of,
    processes,
    start_worker_pair,
    wait_until,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.zookeeper]

amqp_url = rabbit.amqp_url
names = rabbit.names
zookeeper = zk_server.zk_server
__all__ = ["processes"]  # the fixture, used by name

ROOT = Path(__file__).resolve().parents[2]


class ProvisionerQueue:
    """The provisioner's service queue, drained by the test: every request sent to it."""

    def __init__(self, url: str, names: Names):
        self.connection = Connection(url)
        self.queue = service_queue(names, "provisioner")(self.connection.default_channel)
        self.queue.declare()
        self.requests: list[dict] = []

    def drain(self) -> list[dict]:
        """Every request that arrived so far (``{"op", "args"}``), oldest first."""
        while (message := self.queue.get(no_ack=True)) is not None:
            self.requests.append(json.loads(message.body))
        return self.requests

    def launched_by(self) -> list[str]:
        """The ``by`` launch var of every provision request so far."""
        return [r["args"]["vars"].get("by") for r in self.drain() if r.get("op") == "provision"]

    def close(self) -> None:
        self.connection.release()


def test_a_decider_paused_past_its_session_lands_nothing_when_resumed(
    amqp_url: str, names: Names, zookeeper, processes, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    gate = tmp_path / "gate"
    gate.mkdir()
    base_path, workers = start_worker_pair(
        processes,
        tmp_path,
        amqp_url,
        names,
        zookeeper.hosts,
        allowed_engine_prefixes=["tests.system.gated_engine"],
    )
    provisioner = ProvisionerQueue(amqp_url, names)
    rpc = RpcClient(make_connection(amqp_url), names, "tester", timeout=10)
    client = EPUManagementClient(rpc)
    reader = ZooKeeperEPUMStore(ZooKeeperSettings(hosts=zookeeper.hosts, path=base_path))
    victim = None
    try:
        wait_until(lambda: _answers(client), 30, "the workers to serve")
        reader.initialize()
        client.add_domain_definition(
            "gated", {"general": {"engine_class": "tests.system.gated_engine.GatedEngine"}}
        )
        client.add_domain(
            "pool",
            "gated",
            {"engine_conf": {"gate_dir": str(gate), "preserve_n": 1}},
            caller="alice",
        )
        # The decider is now waiting at the gate, in the middle of its decision.
        wait_until(lambda: list(gate.glob("deciding-*")), 30, "the decider to start deciding")
        paused_pid = int(next(gate.glob("deciding-*")).read_text())
        victim = next(w for w in workers.values() if w.pid == paused_pid)
        assert leader_of(zookeeper.hosts, base_path).endswith(f":{paused_pid}")
        victim.send_signal(signal.SIGSTOP)

        # The other worker is elected once the paused one's session expires;
        # it decides at the open gate and launches the one instance wanted.
        def other_decides() -> bool:
            leader = leader_of(zookeeper.hosts, base_path)
            return bool(leader) and not leader.endswith(f":{paused_pid}")

        wait_until(other_decides, 30, "another worker to take the decider's office")
        (gate / "open").write_text("")
        survivor_pid = next(str(w.pid) for w in workers.values() if w is not victim)
        wait_until(lambda: provisioner.launched_by() == [survivor_pid], 30, "the new launch")

        # The paused decider resumes past the gate and tries to launch too.
        victim.send_signal(signal.SIGCONT)
        victim_log = tmp_path / f"{next(n for n, w in workers.items() if w is victim)}.log"
        wait_until(
            lambda: "deposed mid-decision" in victim_log.read_text(),
            30,
            "the resumed decider to find itself deposed",
        )
        domain = reader.get_domain("alice", "pool")
        records = domain.get_instances()
        assert [(r.extravars or {}).get("by") for r in records] == [survivor_pid]
        assert provisioner.launched_by() == [survivor_pid], "the resumed decider sent a request"
        assert [r["op"] for r in provisioner.requests] == ["provision"]
    finally:
        if victim is not None and victim.poll() is None:
            victim.send_signal(signal.SIGCONT)
        reader.shutdown()
        rpc.close()
        provisioner.close()
