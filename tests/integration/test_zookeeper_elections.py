"""Elections on the ZooKeeper store: one leader per role among workers,
fast hand-over at shutdown, and what connection trouble does to a leader.

Each worker is a ``ZooKeeperEPUMStore`` of its own on the test's base path;
faults come from ``tests/zk_server.py`` (a ``TcpProxy`` in front of one
worker, or a real session expiry).
"""

from __future__ import annotations

import threading
import time

import pytest

from epum.store.zookeeper import ZooKeeperEPUMStore
from epum.term import Term
from tests.kit import wait_until
from tests.zk_server import expire_session

pytestmark = pytest.mark.zookeeper


class Timeline:
    """When each leader took and left office, to check one leader at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[float, str, str]] = []

    def record(self, who: str, what: str) -> None:
        with self._lock:
            self.events.append((time.monotonic(), who, what))

    def first(self, who: str, what: str, after: float = 0.0) -> float:
        with self._lock:
            return next(t for t, w, x in self.events if w == who and x == what and t >= after)

    def assert_one_leader_at_a_time(self) -> None:
        with self._lock:
            events = sorted(self.events)
        in_office: set[str] = set()
        for _, who, what in events:
            if what == "in":
                assert not in_office, f"{who} took office while {in_office} still held it"
                in_office.add(who)
            else:
                in_office.discard(who)


class TermLeader:
    """A leader that acts until its term ends, keeping every term it was given."""

    def __init__(self, name: str, timeline: Timeline):
        self.name = name
        self.timeline = timeline
        self.in_office = threading.Event()
        self.given: list[Term] = []

    @property
    def terms(self) -> int:
        return len(self.given)

    def inaugurate(self, term: Term) -> None:
        self.given.append(term)
        self.timeline.record(self.name, "in")
        self.in_office.set()
        term.wait()
        self.in_office.clear()
        self.timeline.record(self.name, "out")


@pytest.fixture
def timeline() -> Timeline:
    return Timeline()


def a_leads_b_waits(
    a: ZooKeeperEPUMStore, b: ZooKeeperEPUMStore, timeline: Timeline
) -> tuple[TermLeader, TermLeader]:
    """Decider leaders for stores ``a`` and ``b``: ``a``'s in office, ``b``'s queued behind."""
    a_leader, b_leader = TermLeader("a", timeline), TermLeader("b", timeline)
    a.contend_decider(a_leader)
    assert a_leader.in_office.wait(10)
    b.contend_decider(b_leader)
    wait_until(lambda: a.election_contenders("decider") == [a.identifier, b.identifier])
    return a_leader, b_leader


def test_one_leader_per_role_among_workers(zk_store_factory, timeline):
    a = zk_store_factory(worker_name="a")
    b = zk_store_factory(worker_name="b")
    a_decider, b_decider = TermLeader("a", timeline), TermLeader("b", timeline)
    b_doctor = TermLeader("b-doctor", Timeline())
    a.contend_decider(a_decider)
    assert a_decider.in_office.wait(10)
    b.contend_decider(b_decider)
    b.contend_doctor(b_doctor)
    assert b_doctor.in_office.wait(10)
    assert not b_decider.in_office.wait(0.5)
    assert a.is_leading("decider") and not b.is_leading("decider")
    assert b.is_leading("doctor") and not a.is_leading("doctor")
    assert a.election_contenders("decider") == [a.identifier, b.identifier]
    assert b.election_contenders("doctor") == [b.identifier]
    assert a.identifier.startswith("a@") and b.identifier.startswith("b@")
    timeline.assert_one_leader_at_a_time()


def test_a_clean_shutdown_hands_over_in_well_under_a_second(zk_store_factory, timeline):
    a = zk_store_factory(worker_name="a")
    b = zk_store_factory(worker_name="b")
    a_leader, b_leader = a_leads_b_waits(a, b, timeline)

    started = time.monotonic()
    a.shutdown()
    assert b_leader.in_office.wait(5)
    handover = timeline.first("b", "in") - started
    print(f"hand-over after a clean shutdown: {handover * 1000:.0f} ms")
    assert handover < 1.0
    assert not a_leader.in_office.is_set()
    timeline.assert_one_leader_at_a_time()


def test_a_brief_connection_loss_deposes_the_leader_who_then_leads_again(
    zk_proxy, zk_store_factory, timeline
):
    a = zk_store_factory(hosts=zk_proxy.hosts, timeout=4.0, worker_name="a")
    b = zk_store_factory(worker_name="b")
    a_leader, b_leader = a_leads_b_waits(a, b, timeline)
    session = a.kazoo_client.client_id

    zk_proxy.block()
    cut_at = time.monotonic()
    zk_proxy.cut()  # connections drop now; reconnecting hangs until unblock
    wait_until(lambda: not a_leader.in_office.is_set(), timeout=2)
    deposed_after = timeline.first("a", "out") - cut_at
    print(f"leader deposed {deposed_after * 1000:.0f} ms after its connection dropped")
    assert deposed_after < 0.5
    assert not a.is_leading("decider")
    wait_until(lambda: zk_proxy.held_while_blocked, what="a to try to reconnect, in vain")
    zk_proxy.unblock()

    assert a_leader.in_office.wait(10)
    assert a.kazoo_client.client_id == session  # the session survived
    assert a_leader.terms == 2
    assert b_leader.terms == 0
    # Same seat, same session, a new term: the stop of the first is not inherited.
    first, second = a_leader.given
    assert first.ended and not second.ended
    assert (first.seat, first.session) == (second.seat, second.session)
    assert first.session == session[0]
    assert first.seat.startswith(f"{a.base_path}/elections/decider/")
    assert first.identity != second.identity
    first.end()  # a late signal meant for the first term
    assert not second.ended and a.is_leading("decider")
    assert a.election_contenders("decider") == [a.identifier, b.identifier]
    timeline.assert_one_leader_at_a_time()


def test_a_depose_before_the_leader_looks_at_its_term_is_never_lost(zk_proxy, zk_store_factory):
    a = zk_store_factory(hosts=zk_proxy.hosts, timeout=4.0, worker_name="a")
    given: list[Term] = []
    entered, gate = threading.Event(), threading.Event()
    saw_end: list[bool] = []
    second_in = threading.Event()

    class SlowStarter:
        def inaugurate(self, term: Term) -> None:
            given.append(term)
            if len(given) > 1:
                second_in.set()
                term.wait()
                return
            entered.set()
            gate.wait(10)  # the term starts late: the connection wavers first
            saw_end.append(term.wait(0))

    a.contend_decider(SlowStarter())
    assert entered.wait(10)
    zk_proxy.block()
    zk_proxy.cut()
    assert given[0].wait(2), "the connection loss did not end the term"
    gate.set()
    wait_until(lambda: saw_end, timeout=5)
    assert saw_end == [True]  # the leader found its term already over
    zk_proxy.unblock()
    assert second_in.wait(10)
    assert not given[1].ended  # and the next term does not inherit that end
    assert given[0].identity != given[1].identity


def test_a_partition_past_the_session_timeout_moves_leadership(
    zk_proxy, zk_store_factory, timeline
):
    a = zk_store_factory(hosts=zk_proxy.hosts, timeout=2.0, worker_name="a")
    b = zk_store_factory(worker_name="b")
    a_leader, b_leader = a_leads_b_waits(a, b, timeline)

    zk_proxy.block()  # silence, as in a partition: only pings notice
    assert b_leader.in_office.wait(10)
    # a stopped before its session expired and b was elected.
    assert timeline.first("a", "out") < timeline.first("b", "in")
    assert not a_leader.in_office.is_set()

    zk_proxy.unblock()  # a learns its session expired, then rejoins as follower
    wait_until(lambda: a.election_contenders("decider") == [b.identifier, a.identifier], 10)
    assert not a_leader.in_office.is_set()
    assert a_leader.terms == 1

    b.shutdown()  # and a leads again when b leaves
    assert a_leader.in_office.wait(5)
    timeline.assert_one_leader_at_a_time()


def test_an_expired_session_moves_leadership_and_the_old_leader_follows(
    zk_store_factory, zk_server, timeline
):
    a = zk_store_factory(worker_name="a")
    b = zk_store_factory(worker_name="b")
    a_reaper = TermLeader("a-reaper", Timeline())
    a.contend_reaper(a_reaper)
    assert a_reaper.in_office.wait(10)
    a_leader, b_leader = a_leads_b_waits(a, b, timeline)

    expire_session(a.kazoo_client, zk_server.hosts)
    assert b_leader.in_office.wait(10)
    assert not a_leader.in_office.is_set()
    wait_until(lambda: a.election_contenders("decider") == [b.identifier, a.identifier], 10)
    assert a_leader.terms == 1
    # Alone in its election, a's reaper is elected again in the new session.
    wait_until(lambda: a_reaper.terms == 2 and a_reaper.in_office.is_set(), 10)
    old, new = a_reaper.given
    assert old.ended and not new.ended
    assert old.session != new.session and old.seat != new.seat  # a new session, a new seat
    timeline.assert_one_leader_at_a_time()


def test_a_leader_that_stops_on_its_own_rejoins(zk_store_factory):
    store = zk_store_factory()
    terms: list[int] = []
    again = threading.Event()
    stop = threading.Event()

    class Quitter:
        def inaugurate(self, term: Term) -> None:
            terms.append(term)
            if len(terms) == 1:
                return  # quits at once
            if len(terms) == 2:
                raise RuntimeError("boom")  # fails
            again.set()
            term.wait()
            stop.set()

    store.contend_doctor(Quitter())
    assert again.wait(10)
    assert [t.number for t in terms] == [1, 2, 3]
    assert terms[0].ended and terms[1].ended and not terms[2].ended
    assert len({t.identity for t in terms}) == 3
    store.shutdown()
    assert stop.is_set()


def test_a_leader_may_shut_its_own_store_down(zk_store_factory):
    store = zk_store_factory()
    done = threading.Event()

    class SelfStopper:
        def inaugurate(self, term: Term) -> None:
            store.shutdown()
            assert term.ended
            done.set()

    store.contend_reaper(SelfStopper())
    assert done.wait(10)
