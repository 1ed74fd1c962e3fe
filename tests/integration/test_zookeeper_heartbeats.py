"""Heartbeats on the ZooKeeper store: the record's znode is written at a bounded rate."""

from __future__ import annotations

import pytest

from epum.states import InstanceHealthState
from tests.unit.scenario import Scenario

pytestmark = pytest.mark.zookeeper


def test_heartbeats_cost_a_bounded_number_of_znode_writes(zk_store_factory):
    store = zk_store_factory()
    sc = Scenario(store=store)
    sc.add_domain("alice", "dom", 1, health={"monitor_health": True, "missing_timeout": 100})
    sc.decide()
    sc.cloud.run_all()
    (node,) = sc.provisioner.provisioned_ids()
    path = store.get_domain("alice", "dom").instance_path(node)

    def znode_version() -> int:
        return store.kazoo_client.exists(path).version

    before = znode_version()
    start = sc.clock.now
    for second in range(100):  # a heartbeat every second for 100 s
        sc.epum.msg_heartbeat("agent", {"node_id": node, "state": "OK"}, timestamp=start + second)
    # one write for the first (health changes), then one whenever the stored
    # time is more than a quarter of missing_timeout old: at 26, 52 and 78 s
    assert znode_version() - before == 4
    record = store.get_domain("alice", "dom").get_instance(node)
    assert record.health == InstanceHealthState.OK
    assert record.last_heard == start + 78
    # 21 s of stored silence is well inside the doctor's window: still healthy
    sc.epum._doctor_appt(timestamp=start + 99)
    assert store.get_domain("alice", "dom").get_instance(node).health == "OK"
