"""Two workers' facades on one ZooKeeper store, with real engines and timed
loops: whatever happens to the deciding worker's connection, no instance
is launched twice and a failure is replaced once.

Worker ``a`` reaches ZooKeeper through a ``TcpProxy`` (so it alone can be
cut off); worker ``b`` connects directly.  Both talk to one provisioner.
"""

from __future__ import annotations

import pytest

from epum.errors import BadRequestError
from epum.management import EPUManagement
from epum.states import InstanceState
from tests.fakes import FakeCloud, FakeDTRS, FakeNotifier, FakeProvisioner
from tests.kit import PassCounter, wait_until

pytestmark = pytest.mark.zookeeper

CONF = {
    "decider_loop_interval": 0.2,
    "doctor_loop_interval": 3600,
    "reaper_loop_interval": 3600,
}


def launched(provisioner: FakeProvisioner) -> set[str]:
    return set(provisioner.provisioned_ids())


def test_no_instance_is_launched_twice_across_connection_trouble(zk_proxy, zk_store_factory):
    provisioner = FakeProvisioner()
    a_store = zk_store_factory(hosts=zk_proxy.hosts, timeout=2.0, worker_name="a")
    b_store = zk_store_factory(worker_name="b")
    a = EPUManagement(CONF, FakeNotifier(), provisioner, None, FakeDTRS(), store=a_store)
    a.initialize()
    wait_until(lambda: a.decider.is_leader, 10)
    b = EPUManagement(CONF, FakeNotifier(), provisioner, None, FakeDTRS(), store=b_store)
    b.initialize()
    a_passes, b_passes = PassCounter(a.decider), PassCounter(b.decider)
    try:
        a.msg_add_domain_definition("simple", {"general": {"engine_class": "simplest"}})
        a.msg_add_domain("alice", "dom", "simple", {"engine_conf": {"preserve_n": 2}})
        wait_until(lambda: len(launched(provisioner)) == 2, 10)
        FakeCloud(b, provisioner).run_all()

        def running_seen_by(store) -> int:
            domain = store.get_domain("alice", "dom")
            return sum(i.state == InstanceState.RUNNING for i in domain.get_instances())

        wait_until(lambda: running_seen_by(a_store) == 2, 10)

        # A brief loss: a is deposed, comes back with its session, leads on.
        zk_proxy.block()
        zk_proxy.cut()
        wait_until(lambda: not a.decider.is_leader, 2)
        wait_until(lambda: zk_proxy.held_while_blocked, what="a to try to reconnect, in vain")
        zk_proxy.unblock()
        wait_until(lambda: a.decider.is_leader, 10)
        a_passes.wait_for_more(3)  # several passes of the re-elected decider
        assert len(launched(provisioner)) == 2
        assert not b.decider.is_leader

        # A partition past a's session timeout: b takes over and finds the
        # domain whole.
        zk_proxy.block()
        wait_until(lambda: b.decider.is_leader, 10)
        assert not a.decider.is_leader
        b_passes.wait_for_more(3)
        assert len(launched(provisioner)) == 2
        zk_proxy.unblock()
        wait_until(
            lambda: (
                a_store.election_contenders("decider") == [b_store.identifier, a_store.identifier]
            ),
            10,
        )

        # A failure is replaced once, by the decider in office.
        victim = sorted(launched(provisioner))[0]
        FakeCloud(b, provisioner).report(victim, InstanceState.FAILED)
        wait_until(lambda: len(launched(provisioner)) == 3, 10)
        b_passes.wait_for_more(3)
        assert len(launched(provisioner)) == 3
        assert not a.decider.is_leader
    finally:
        a.shutdown()
        b.shutdown()


def test_the_per_caller_domain_limit_counts_from_the_cache_and_holds(zk_store_factory):
    store = zk_store_factory(worker_name="a")
    other = zk_store_factory(worker_name="b")
    conf = {**CONF, "_external_decide_invocations": True}
    epum = EPUManagement(
        {**conf, "limits": {"max_domains_per_caller": 2}},
        FakeNotifier(),
        FakeProvisioner(),
        None,
        FakeDTRS(),
        store=store,
    )
    epum.initialize()
    epum.msg_add_domain_definition("simple", {"general": {"engine_class": "simplest"}})
    epum.msg_add_domain("alice", "one", "simple", {"engine_conf": {"preserve_n": 0}})
    epum.msg_add_domain("alice", "two", "simple", {"engine_conf": {"preserve_n": 0}})
    # the count is the cache's, another store's cache shows the same
    wait_until(lambda: store.count_domains_by_owner("alice") == 2, 10)
    wait_until(lambda: other.count_domains_by_owner("alice") == 2, 10)
    assert store.count_domains_by_owner("bob") == 0
    with pytest.raises(BadRequestError, match=r"limits\.max_domains_per_caller"):
        epum.msg_add_domain("alice", "three", "simple", {"engine_conf": {"preserve_n": 0}})
    assert store.list_domains_by_owner("alice") == ["one", "two"]
