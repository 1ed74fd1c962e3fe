"""Fenced writes: a record write under a leader's term lands only while the
store still counts that term in office, on every backend; on ZooKeeper a
term whose session expired is refused even by a process that never heard
it was deposed (modelled by an un-ended twin of the term)."""

from __future__ import annotations

import threading

import pytest

from epum.control import DomainControl
from epum.errors import NotLeaderError
from epum.instances import Instance
from epum.states import InstanceState
from epum.term import Term
from tests.fakes import FakeProvisioner
from tests.kit import wait_until
from tests.store_backends import BACKENDS, make_store
from tests.zk_server import expire_session

CONFIG = {"general": {"engine_class": "simplest"}, "engine_conf": {"preserve_n": 1}, "health": {}}
PROMPT = 10.0


@pytest.fixture(params=BACKENDS)
def store(request):
    return make_store(request.param, request)


class HoldingLeader:
    """A leader that hands its term to the test and holds office until it ends."""

    def __init__(self) -> None:
        self.terms: list[Term] = []
        self.in_office = threading.Event()

    def inaugurate(self, term: Term) -> None:
        self.terms.append(term)
        self.in_office.set()
        term.wait()
        self.in_office.clear()


def record(instance_id: str, state: str = InstanceState.REQUESTING) -> Instance:
    return Instance(
        instance_id=instance_id,
        launch_id="l-" + instance_id,
        site="site1",
        allocation="small",
        state=state,
        state_time=100.0,
    )


def elected(store) -> tuple[HoldingLeader, Term]:
    leader = HoldingLeader()
    store.contend_decider(leader)
    assert leader.in_office.wait(PROMPT)
    return leader, leader.terms[-1]


def twin(term: Term) -> Term:
    """The same term as a paused process still holds it: never told it ended."""
    return Term(term.role, term.number, seat=term.seat, session=term.session)


def test_a_term_in_office_writes_and_an_ended_one_is_refused(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    _, term = elected(store)
    added = domain.add_instance(record("i1"), term=term)
    domain.update_instance(added.replace(state=InstanceState.PENDING), term=term)
    domain.confirm_term(term)
    domain.append_history([{"time": 1.0, "n": 1}], 10, 100.0, 1.0, term=term)
    term.end()
    with pytest.raises(NotLeaderError):
        domain.add_instance(record("i2"), term=term)
    with pytest.raises(NotLeaderError):
        domain.append_history([{"time": 2.0, "n": 2}], 10, 100.0, 2.0, term=term)
    assert domain.get_history() == [{"time": 1.0, "n": 1}]
    with pytest.raises(NotLeaderError):
        domain.update_instance(domain.get_instance("i1").replace(state="500-STARTED"), term=term)
    with pytest.raises(NotLeaderError):
        domain.confirm_term(term)
    assert [i.instance_id for i in domain.get_instances()] == ["i1"]
    assert domain.get_instance("i1").state == InstanceState.PENDING
    assert store.get_domain_for_instance_id("i2") is None


def test_a_term_the_store_never_handed_out_is_refused(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    elected(store)
    foreign = Term("decider", 7)
    with pytest.raises(NotLeaderError):
        domain.add_instance(record("i1"), term=foreign)
    assert domain.get_instances() == []


def test_the_unelected_term_is_not_fenced_until_it_ends(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    term = Term.unelected("decider")
    domain.add_instance(record("i1"), term=term)
    term.end()
    with pytest.raises(NotLeaderError):
        domain.add_instance(record("i2"), term=term)
    assert [i.instance_id for i in domain.get_instances()] == ["i1"]


@pytest.mark.zookeeper
def test_a_seat_that_does_not_exist_fences_every_write(zk_store_factory, zk_base_path):
    store = zk_store_factory()
    domain = store.add_domain("alice", "dom", CONFIG)
    ghost = Term("decider", 1, seat=f"{zk_base_path}/elections/decider/none__lock__0000000099")
    with pytest.raises(NotLeaderError):
        domain.add_instance(record("i1"), term=ghost)
    assert domain.get_instances() == [] and store.get_domain_for_instance_id("i1") is None


@pytest.mark.zookeeper
def test_a_leader_whose_session_expired_writes_nothing_and_sends_nothing(
    zk_store_factory, zk_server
):
    old = zk_store_factory(worker_name="old")
    new = zk_store_factory(worker_name="new")
    domain = old.add_domain("alice", "dom", CONFIG)
    _, term = elected(old)
    live = domain.add_instance(record("live"), term=term)
    domain.append_history([{"time": 0.5}], 10, 100.0, 0.5, term=term)
    asleep = twin(term)  # what a paused process holds when it resumes
    new_leader = HoldingLeader()
    new.contend_decider(new_leader)

    expire_session(old.kazoo_client, zk_server.hosts)
    assert new_leader.in_office.wait(PROMPT)
    assert term.ended and not asleep.ended
    # old's client is on a new session: its writes would land but for the fence
    wait_until(lambda: old.kazoo_client.connected, PROMPT)

    with pytest.raises(NotLeaderError):
        domain.add_instance(record("late"), term=asleep)
    with pytest.raises(NotLeaderError):  # its late log entries do not land either (a set)
        domain.append_history([{"time": 3.0, "late": True}], 10, 100.0, 3.0, term=asleep)
    with pytest.raises(NotLeaderError):  # nor a first entry (a create)
        new_domain_of_old = old.add_domain("alice", "fresh-log", CONFIG)
        new_domain_of_old.append_history([{"time": 3.0}], 10, 100.0, 3.0, term=asleep)
    with pytest.raises(NotLeaderError):
        domain.update_instance(live.replace(state=InstanceState.TERMINATING), term=asleep)
    provisioner = FakeProvisioner()
    control = DomainControl(domain, provisioner, "epum", term=asleep, now=200.0)
    with pytest.raises(NotLeaderError):
        control.launch("dt", "site1", "small", count=2)
    with pytest.raises(NotLeaderError):
        control.destroy_instances(["live"])
    with pytest.raises(NotLeaderError):
        control.resend_unanswered(domain.get_instances())
    assert provisioner.provisioned == [] and provisioner.terminated == []
    seen = new.get_domain("alice", "dom")
    assert seen.get_history() == [{"time": 0.5}]
    assert new.get_domain("alice", "fresh-log").get_history() == []
    assert [i.instance_id for i in seen.get_instances()] == ["live"]
    assert seen.get_instance("live").state == InstanceState.REQUESTING

    # the leader in office writes under its own term
    seen.add_instance(record("fresh"), term=new_leader.terms[-1])
    assert new.get_domain_for_instance_id("fresh") is not None
