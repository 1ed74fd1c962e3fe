"""Heartbeats on the ZooKeeper store: the record's znode is written at a bounded rate."""

from __future__ import annotations

import contextlib
import threading

import pytest

from epum.states import InstanceHealthState
from tests.kit import wait_until
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


@contextlib.contextmanager
def counting_requests(store):
    """Count every request this thread sends to ZooKeeper through ``store``'s client."""
    client = store.kazoo_client
    me = threading.current_thread()
    counts = {"requests": 0}
    original = client._call

    def counted(*args, **kwargs):
        if threading.current_thread() is me:
            counts["requests"] += 1
        return original(*args, **kwargs)

    client._call = counted
    try:
        yield counts
    finally:
        del client._call


def test_a_steady_heartbeat_costs_no_zookeeper_request_on_any_worker(zk_store_factory):
    writer = Scenario(store=zk_store_factory(worker_name="writer"))
    writer.add_domain("alice", "dom", 2, health={"monitor_health": True, "missing_timeout": 100})
    writer.decide()
    writer.cloud.run_all()
    nodes = writer.provisioner.provisioned_ids()
    start = writer.clock.now
    for node in nodes:  # the first heartbeat writes the health
        writer.epum.msg_heartbeat("agent", {"node_id": node, "state": "OK"}, timestamp=start)
    # another worker, which never looked these instances up, and the writer itself
    other_store = zk_store_factory(worker_name="other")
    other = Scenario(store=other_store)
    path = other_store.get_domain("alice", "dom").instance_path(nodes[0])
    versions = [other_store.kazoo_client.exists(path).version]
    assert wait_until(
        lambda: other_store.get_domain("alice", "dom").get_instances()[0].health == "OK", 5
    )
    for sc, store in ((other, other_store), (writer, writer.epum.store)):
        with counting_requests(store) as counts:
            for second in range(1, 20):
                for node in nodes:
                    beat = {"node_id": node, "state": "OK"}
                    sc.epum.msg_heartbeat("agent", beat, timestamp=start + second)
        assert counts["requests"] == 0
    versions.append(other_store.kazoo_client.exists(path).version)
    assert versions[0] == versions[1], "a steady heartbeat writes nothing"
    # a heartbeat that changes the health is written at once, through either worker
    other.epum.msg_heartbeat("agent", {"node_id": nodes[0], "state": "MONITOR_ERROR"}, start + 21)
    record = writer.epum.store.get_domain("alice", "dom").get_instance(nodes[0])
    assert record.health == InstanceHealthState.MONITOR_ERROR


def test_a_heartbeat_after_another_workers_write_builds_on_that_write(zk_store_factory):
    # Whether or not the cached copy shows the other write yet, the heartbeat
    # never undoes it: a copy that lags loses its compare-and-set and re-reads.
    store = zk_store_factory()
    sc = Scenario(store=store)
    sc.add_domain("alice", "dom", 1, health={"monitor_health": True, "missing_timeout": 100})
    sc.decide()
    sc.cloud.run_all()
    (node,) = sc.provisioner.provisioned_ids()
    domain = store.get_domain("alice", "dom")
    cached = domain.get_instance_cached(node)
    writer = zk_store_factory(worker_name="writer").get_domain("alice", "dom")
    writer.update_instance(writer.get_instance(node).replace(errors=["boom"]))
    sc.epum.msg_heartbeat("agent", {"node_id": node, "state": "OK"}, timestamp=sc.clock.now)
    record = domain.get_instance(node)
    assert record.version > cached.version + 1
    assert record.health == InstanceHealthState.OK and record.errors is None
