"""Deciders of several shares on one ZooKeeper store: kazoo's SetPartitioner deals the
shares out over the workers, every domain is decided by exactly one of them, a
worker that leaves gives its shares to the others, and a share's writes are
fenced by its lock znode."""

from __future__ import annotations

import threading

import pytest
from kazoo.client import KazooClient

from epum.control import NotLeaderError
from epum.decisions import domain_event
from epum.management import EPUManagement
from epum.partitions import share_of
from epum.store import zk_partitions
from tests.fakes import FakeDTRS, FakeNotifier, FakeProvisioner
from tests.kit import wait_until

pytestmark = pytest.mark.zookeeper

SHARES = 4
CONF = {
    "decider_loop_interval": 0.2,
    "decider_partitions": SHARES,
    "decider_partition_settle": 0.3,
    "doctor_loop_interval": 3600,
    "reaper_loop_interval": 3600,
}
DOMAINS = [f"d{n}" for n in range(12)]


def worker(store, provisioner: FakeProvisioner) -> EPUManagement:
    facade = EPUManagement(CONF, FakeNotifier(), provisioner, None, FakeDTRS(), store=store)
    facade.initialize()
    return facade


def launches_by_domain(store) -> dict[str, int]:
    """How many records each domain has, as ``store`` sees them."""
    return {d: len(store.get_domain("alice", d).get_instances()) for d in DOMAINS}


def dealt_out(*stores) -> bool:
    """True when ``stores`` hold every share once between them, evenly."""
    held = [set(store.decider_shares_held()) for store in stores]
    everyone = set().union(*held)
    even = all(len(h) == SHARES // len(stores) for h in held)
    return even and everyone == {str(i) for i in range(SHARES)}


def test_shares_are_dealt_out_decided_once_and_taken_over(zk_store_factory):
    provisioner = FakeProvisioner()
    a_store = zk_store_factory(worker_name="a")
    b_store = zk_store_factory(worker_name="b")
    a, b = worker(a_store, provisioner), worker(b_store, provisioner)
    try:
        wait_until(lambda: dealt_out(a_store, b_store), 20, what="the shares dealt out")

        a.msg_add_domain_definition("simple", {"general": {"engine_class": "simplest"}})
        for domain_id in DOMAINS:
            a.msg_add_domain("alice", domain_id, "simple", {"engine_conf": {"preserve_n": 2}})
        wait_until(lambda: len(provisioner.provisioned_ids()) == 2 * len(DOMAINS), 20)
        # Each domain was launched by its own share's decider, and only once.
        wait_until(lambda: launches_by_domain(a_store) == dict.fromkeys(DOMAINS, 2), 10)
        assert len(provisioner.provisioned_ids()) == 2 * len(DOMAINS)
        for facade, store in ((a, a_store), (b, b_store)):
            for decider in facade.deciders:
                mine = {key[1] for key in decider._engines}
                assert all(decider.share.owns(("alice", d)) for d in mine)
                if decider.share.name not in store.decider_shares_held():
                    assert not decider.is_leader

        # a leaves: b takes every share, and decides a's former domains.
        a_shares = set(a_store.decider_shares_held())
        a.shutdown()
        wait_until(lambda: dealt_out(b_store), 20, what="b to hold every share")
        moved = next(d for d in DOMAINS if str(share_of(("alice", d), SHARES)) in a_shares)
        b.msg_reconfigure_domain("alice", moved, {"engine_conf": {"preserve_n": 3}})
        wait_until(lambda: len(provisioner.provisioned_ids()) == 2 * len(DOMAINS) + 1, 20)
        wait_until(lambda: len(b_store.get_domain("alice", moved).get_instances()) == 3, 10)
    finally:
        a.shutdown()
        b.shutdown()


def test_a_share_leader_whose_lock_is_gone_writes_nothing(zk_store_factory, zk_server):
    store = zk_store_factory(worker_name="solo")
    facade = worker(store, FakeProvisioner())
    try:
        wait_until(lambda: len(store.decider_shares_held()) == SHARES, 20)
        facade.msg_add_domain_definition("simple", {"general": {"engine_class": "simplest"}})
        facade.msg_add_domain("alice", "pool", "simple", {"engine_conf": {"preserve_n": 0}})
        share = share_of(("alice", "pool"), SHARES)
        term = facade.deciders[share].term
        assert term.seat and "/decider-shares/locks/" in term.seat and not term.ended
        domain = store.get_domain("alice", "pool")
        event = [domain_event(1.0, "reading", metric="m", value=1)]
        domain.append_history(event, 10, 3600, 1.0, term=term)  # in office: stored

        # Someone deletes the share's lock (as a lost session would): the
        # leader's next fenced write is refused and changes nothing.
        raw = KazooClient(zk_server.hosts)
        raw.start()
        try:
            raw.delete(term.seat)
        finally:
            raw.stop()
            raw.close()
        before = domain.get_history()
        with pytest.raises(NotLeaderError):
            domain.append_history(event, 10, 3600, 2.0, term=term)
        assert domain.get_history() == before
    finally:
        facade.shutdown()


def test_a_worker_cut_off_loses_its_shares_and_gets_some_back(zk_proxy, zk_store_factory):
    provisioner = FakeProvisioner()
    a_store = zk_store_factory(hosts=zk_proxy.hosts, timeout=2.0, worker_name="a")
    b_store = zk_store_factory(worker_name="b")
    a, b = worker(a_store, provisioner), worker(b_store, provisioner)
    try:
        wait_until(lambda: dealt_out(a_store, b_store), 20, what="the shares dealt out")
        a.msg_add_domain_definition("simple", {"general": {"engine_class": "simplest"}})
        for domain_id in DOMAINS:
            a.msg_add_domain("alice", domain_id, "simple", {"engine_conf": {"preserve_n": 1}})
        wait_until(lambda: len(provisioner.provisioned_ids()) == len(DOMAINS), 20)

        # a's session expires behind the cut: b holds every share, a none.
        zk_proxy.block()
        wait_until(lambda: not any(d.is_leader for d in a.deciders), 5)
        wait_until(lambda: dealt_out(b_store), 20, what="b to hold every share")
        zk_proxy.unblock()
        # a comes back with a new session and is dealt its half again.
        wait_until(lambda: dealt_out(a_store, b_store), 30, what="the shares dealt out again")
        b.msg_reconfigure_domain("alice", DOMAINS[0], {"engine_conf": {"preserve_n": 2}})
        wait_until(lambda: len(provisioner.provisioned_ids()) == len(DOMAINS) + 1, 20)
        expected = {d: 2 if d == DOMAINS[0] else 1 for d in DOMAINS}
        wait_until(lambda: launches_by_domain(b_store) == expected, 10)  # b's cache, a moment late
        assert len(provisioner.provisioned_ids()) == len(DOMAINS) + 1
    finally:
        a.shutdown()
        b.shutdown()


class SlowToStepDown:
    """A share's leader whose first term runs on past its end until ``gate`` opens (a
    first pass over a store still loading); it refuses to lead two terms at once, as
    ``LeaderLoop`` does."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.terms: list[int] = []
        self._leading = threading.Lock()

    def inaugurate(self, term) -> None:
        if not self._leading.acquire(blocking=False):
            raise RuntimeError("already leading")
        try:
            self.terms.append(term.number)
            if len(self.terms) == 1:
                self.gate.wait(30)
            term.wait(30)
        finally:
            self._leading.release()


def test_a_share_released_while_its_leader_still_runs_is_led_again_once_it_returns(
    zk_store_factory, monkeypatch
):
    monkeypatch.setattr(zk_partitions, "RELEASE_WAIT", 0.2)
    a_store = zk_store_factory(worker_name="a")
    mine = [SlowToStepDown(), SlowToStepDown()]
    a_store.contend_decider_shares(mine, settle=0.3)
    wait_until(lambda: all(leader.terms for leader in mine), 20, what="a leading both shares")
    b_store = zk_store_factory(worker_name="b")
    theirs = [SlowToStepDown(), SlowToStepDown()]
    for leader in theirs:
        leader.gate.set()
    b_store.contend_decider_shares(theirs, settle=0.3)
    # a releases both while their first terms still run, and is dealt one share back
    wait_until(lambda: len(a_store.decider_shares_held()) == 1, 20, what="the shares re-dealt")
    kept = mine[int(a_store.decider_shares_held()[0])]
    assert kept.terms == [kept.terms[0]]  # its new term waits for the old one to return
    for leader in mine:
        leader.gate.set()
    wait_until(lambda: len(kept.terms) == 2, 20, what="the kept share led in a new term")
