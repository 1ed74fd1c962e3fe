"""The doctor dies mid-check: two epum-worker daemons on one ZooKeeper store
with health monitoring on, a simulated provisioner whose agents heartbeat;
one instance goes silent, the doctor finds it OUT_OF_CONTACT and asks its
agent, and is killed (SIGKILL) before the wait is over.  The other worker's
doctor takes over, finds the instance still silent, and it is replaced.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from epum.messaging import EPUManagementClient, RpcClient
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from epum.settings import ZooKeeperSettings
from epum.sim.cloud import Delays
from epum.sim.provisioner import SimProvisionerService
from epum.states import InstanceHealthState, InstanceState
from epum.store.zookeeper import ZooKeeperEPUMStore
from tests import rabbit, zk_server
from tests.system.test_failover import _answers, leader_of, processes, start_worker_pair, wait_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.zookeeper]

amqp_url = rabbit.amqp_url
names = rabbit.names
zookeeper = zk_server.zk_server
__all__ = ["processes"]  # the fixture, used by name

HEALTH = {
    "monitor_health": True,
    "boot_timeout": 60,
    "missing_timeout": 2,
    # long enough to kill the doctor while it waits for the agent's answer
    "really_missing_timeout": 6,
}


def test_a_silent_instance_is_replaced_when_the_doctor_dies_mid_check(
    amqp_url: str, names: Names, zookeeper, processes, tmp_path: Path
):
    base_path, workers = start_worker_pair(
        processes, tmp_path, amqp_url, names, zookeeper.hosts, doctor_loop_interval=0.5
    )
    sim = SimProvisionerService(
        amqp_url,
        names.sysname,
        delays=Delays(pending=0.2, started=0.2, running=0.2, terminated=0.2),
        heartbeat_interval=0.5,
    )
    rpc = RpcClient(make_connection(amqp_url), names, "tester", timeout=10)
    client = EPUManagementClient(rpc)
    reader = ZooKeeperEPUMStore(ZooKeeperSettings(hosts=zookeeper.hosts, path=base_path))
    try:
        sim.start()
        wait_until(lambda: _answers(client), 30, "the workers to serve")
        reader.initialize()
        client.add_domain_definition("keep", {"general": {"engine_class": "simplest"}})
        client.add_domain(
            "pool", "keep", {"engine_conf": {"preserve_n": 2}, "health": HEALTH}, caller="alice"
        )

        def records():
            domain = reader.get_domain("alice", "pool")
            return domain.get_instances() if domain is not None else []

        def healthy_running():
            return [
                r
                for r in records()
                if r.state == InstanceState.RUNNING and r.health == InstanceHealthState.OK
            ]

        wait_until(lambda: len(healthy_running()) == 2, 30, "two running, heartbeating instances")
        silent = healthy_running()[0].instance_id
        assert sim.agents is not None
        sim.agents.go_silent(silent)

        def health_of(instance_id: str) -> str | None:
            return next((r.health for r in records() if r.instance_id == instance_id), None)

        wait_until(
            lambda: health_of(silent) == InstanceHealthState.OUT_OF_CONTACT,
            30,
            "the doctor to find the silent instance",
        )
        doctor = leader_of(zookeeper.hosts, base_path, "doctor")
        victim = next(n for n in workers if doctor.startswith(f"{names.sysname}-{n}@"))
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(10)
        assert health_of(silent) == InstanceHealthState.OUT_OF_CONTACT, "killed too late"

        def replaced() -> bool:
            rs = {r.instance_id: r for r in records()}
            others = [r for i, r in rs.items() if i != silent]
            return (
                silent in rs
                and rs[silent].state >= InstanceState.TERMINATING
                and len([r for r in others if r.state == InstanceState.RUNNING]) == 2
            )

        wait_until(replaced, 60, "the silent instance to be replaced")
        survivor = next(n for n in workers if n != victim)
        assert leader_of(zookeeper.hosts, base_path, "doctor").startswith(
            f"{names.sysname}-{survivor}@"
        )
        survivor_log = (tmp_path / f"{survivor}.log").read_text()
        assert f"instance {silent} health OUT_OF_CONTACT -> MISSING" in survivor_log
    finally:
        reader.shutdown()
        rpc.close()
        sim.stop()
