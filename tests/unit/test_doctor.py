"""The doctor: health written with compare-and-set, agents asked, failures survived."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from epum.doctor import WRITE_ATTEMPTS, Doctor
from epum.errors import WriteConflictError
from epum.instances import Instance
from epum.states import InstanceHealthState as H
from epum.states import InstanceState as S
from epum.store.memory import MemoryDomainStore, MemoryEPUMStore

T0 = 50_000.0
HEALTH = {
    "monitor_health": True,
    "boot_timeout": 300,
    "missing_timeout": 120,
    "really_missing_timeout": 15,
    "zombie_seconds": 120,
}
WINDOW = 150.0  # missing_timeout plus the heartbeat write slack
EPS = 0.001


class FakeAgents:
    """Records dump_state requests; raises for the addresses told to."""

    def __init__(self, failing: tuple[str, ...] = ()):
        self.calls: list[tuple[str, float | None]] = []
        self.failing = failing

    def dump_state(self, target_address, mock_timestamp=None):
        self.calls.append((target_address, mock_timestamp))
        if target_address in self.failing:
            raise ConnectionError(f"no route to {target_address}")


class HookedDomain(MemoryDomainStore):
    """A memory domain that runs ``before_update`` hooks just before a write lands."""

    hooks: list[Callable[[MemoryDomainStore, Instance], None]]

    def update_instance(self, instance: Instance, term=None) -> Instance:
        if self.hooks:
            self.hooks.pop(0)(self, instance)
        return super().update_instance(instance, term=term)


class HookedStore(MemoryEPUMStore):
    """A memory store whose domains are ``HookedDomain``s."""

    def add_domain(self, owner, domain_id, config):
        domain = super().add_domain(owner, domain_id, config)
        domain.__class__ = HookedDomain
        domain.hooks = []
        return domain


def record(
    instance_id: str = "i1",
    state: str = S.RUNNING,
    state_time: float = T0,
    health: str = H.OK,
    last_heard: float | None = T0,
    agent_address: str | None = None,
) -> Instance:
    return Instance(
        instance_id=instance_id,
        launch_id="l1",
        site="site",
        allocation="small",
        state=state,
        state_time=state_time,
        health=health,
        last_heard=last_heard,
        agent_address=agent_address if agent_address is not None else f"agent-{instance_id}",
    )


@pytest.fixture
def store():
    return HookedStore()


@pytest.fixture
def agents():
    return FakeAgents()


@pytest.fixture
def doctor(store, agents):
    return Doctor(store, agents, interval=3600.0, clock=lambda: T0)


def add_domain(store, *records: Instance, owner="alice", domain_id="d1", health=None):
    domain = store.add_domain(
        owner, domain_id, {"health": dict(HEALTH if health is None else health)}
    )
    for r in records:
        domain.add_instance(r)
    return domain


def health_of(domain, instance_id="i1") -> str:
    return domain.get_instance(instance_id).health


def heartbeat(domain, instance_id: str, at: float, health: str = H.OK) -> None:
    """What the reactor does with a heartbeat: write health and time."""
    current = domain.get_instance(instance_id)
    domain.update_instance(current.replace(health=health, last_heard=at))


# the rules through the store ---------------------------------------------------


def test_a_silent_instance_goes_out_of_contact_and_its_agent_is_asked(store, agents, doctor):
    domain = add_domain(store, record(), record("i2", last_heard=T0 + 100.0))
    doctor.run_pass(T0 + WINDOW)
    assert health_of(domain) == H.OK
    assert agents.calls == []

    doctor.run_pass(T0 + WINDOW + EPS)
    assert health_of(domain) == H.OUT_OF_CONTACT
    assert health_of(domain, "i2") == H.OK
    assert agents.calls == [("agent-i1", T0 + WINDOW + EPS)]


def test_an_instance_that_answers_stays_ok(store, agents, doctor):
    domain = add_domain(store, record())
    asked = T0 + 200.0
    doctor.run_pass(asked)
    assert health_of(domain) == H.OUT_OF_CONTACT
    heartbeat(domain, "i1", asked + 1.0)
    for later in (asked + 15.0 + EPS, asked + 100.0):
        doctor.run_pass(later)
        assert health_of(domain) == H.OK
    assert len(agents.calls) == 1


def test_an_instance_that_does_not_answer_goes_missing(store, agents, doctor):
    domain = add_domain(store, record())
    asked = T0 + 200.0
    doctor.run_pass(asked)
    doctor.run_pass(asked + 15.0)
    assert health_of(domain) == H.OUT_OF_CONTACT
    doctor.run_pass(asked + 15.0 + EPS)
    assert health_of(domain) == H.MISSING
    assert len(agents.calls) == 1


def test_no_agent_address_means_missing_at_once(store, agents, doctor):
    domain = add_domain(store, record(agent_address=""))
    doctor.run_pass(T0 + 200.0)
    assert health_of(domain) == H.MISSING
    assert agents.calls == []


def test_no_agent_client_means_missing_at_once(store):
    domain = add_domain(store, record())
    Doctor(store, None, clock=lambda: T0).run_pass(T0 + 200.0)
    assert health_of(domain) == H.MISSING


def test_boot_timeout_counts_from_the_doctors_first_pass_when_it_started_late(store, doctor):
    domain = add_domain(store, record(health=H.UNKNOWN, last_heard=None))
    first = T0 + 10_000.0
    doctor.run_pass(first)
    doctor.run_pass(first + 300.0)
    assert health_of(domain) == H.UNKNOWN
    doctor.run_pass(first + 300.0 + EPS)
    assert health_of(domain) == H.OUT_OF_CONTACT


def test_zombie_is_marked_and_not_asked(store, agents, doctor):
    terminated = record(state=S.TERMINATED, health=H.UNKNOWN, last_heard=T0 + 120.0 + EPS)
    domain = add_domain(store, terminated)
    doctor.run_pass(T0 + 200.0)  # while heard (a silent zombie is UNKNOWN again, issue 8)
    assert health_of(domain) == H.ZOMBIE
    assert agents.calls == []


def test_nothing_changes_with_monitoring_off(store, agents, doctor):
    ancient = [
        record(last_heard=T0 - 100_000.0),
        record("i2", health=H.UNKNOWN, last_heard=None, state_time=T0 - 100_000.0),
        record("i3", state=S.TERMINATED, last_heard=T0 + 100_000.0),
    ]
    off = add_domain(store, *ancient, domain_id="off", health={"monitor_health": False})
    unset = add_domain(
        store,
        *(r.replace(instance_id=r.instance_id + "u") for r in ancient),
        domain_id="unset",
        health={},
    )
    doctor.run_pass(T0 + 100_000.0)
    for domain in (off, unset):
        assert {i.health for i in domain.get_instances()} == {H.OK, H.UNKNOWN}
        assert all(i.version == 0 for i in domain.get_instances())
    assert agents.calls == []


def test_removed_domains_are_left_alone(store, doctor):
    domain = add_domain(store, record())
    domain.mark_removed()
    doctor.run_pass(T0 + 1000.0)
    assert health_of(domain) == H.OK


def test_monitoring_turned_on_later_measures_from_then(store, doctor):
    domain = add_domain(store, record(health=H.UNKNOWN, last_heard=None))
    doctor.run_pass(T0)  # monitored: a monitor starts at T0
    domain.update_config({"health": {"monitor_health": False}})
    doctor.run_pass(T0 + 5000.0)  # not monitored: its monitor is dropped
    domain.update_config({"health": {"monitor_health": True}})
    doctor.run_pass(T0 + 10_000.0)
    doctor.run_pass(T0 + 10_300.0)
    assert health_of(domain) == H.UNKNOWN
    doctor.run_pass(T0 + 10_300.0 + EPS)
    assert health_of(domain) == H.OUT_OF_CONTACT


def test_a_new_term_starts_fresh_monitors(store, doctor):
    domain = add_domain(store, record(health=H.UNKNOWN, last_heard=None))
    doctor.run_pass(T0)
    doctor.on_elected()
    doctor.run_pass(T0 + 1000.0)
    assert health_of(domain) == H.UNKNOWN
    doctor.run_pass(T0 + 1300.0 + EPS)
    assert health_of(domain) == H.OUT_OF_CONTACT


def test_reconfigured_timeouts_apply_at_the_next_pass(store, doctor):
    domain = add_domain(store, record())
    doctor.run_pass(T0 + 100.0)
    domain.update_config({"health": {"missing_timeout": 40}})  # window 50s
    doctor.run_pass(T0 + 50.0 + EPS)
    assert health_of(domain) == H.OUT_OF_CONTACT


def test_domains_are_isolated_per_owner(store, agents, doctor):
    alice = add_domain(store, record("a1"), owner="alice", domain_id="same")
    bob = add_domain(store, record("b1", last_heard=T0 + 500.0), owner="bob", domain_id="same")
    doctor.run_pass(T0 + 200.0)
    assert health_of(alice, "a1") == H.OUT_OF_CONTACT
    assert health_of(bob, "b1") == H.OK


# compare-and-set ------------------------------------------------------------------


def test_a_concurrent_heartbeat_wins_over_the_verdict(store, agents, doctor):
    domain = add_domain(store, record())
    now = T0 + 200.0
    domain.hooks.append(lambda d, _: heartbeat(d, "i1", now))
    doctor.run_pass(now)
    stored = domain.get_instance("i1")
    assert stored.health == H.OK
    assert stored.last_heard == now
    assert agents.calls == []  # nothing to ask: it was heard from


def test_a_concurrent_unrelated_write_is_kept_and_the_verdict_retried(store, agents, doctor):
    domain = add_domain(store, record())

    def provisioner_writes(d, _):
        current = d.get_instance("i1")
        d.update_instance(current.replace(public_ip="10.0.0.9"))

    domain.hooks.append(provisioner_writes)
    doctor.run_pass(T0 + 200.0)
    stored = domain.get_instance("i1")
    assert stored.health == H.OUT_OF_CONTACT
    assert stored.public_ip == "10.0.0.9"
    assert [a for a, _ in agents.calls] == ["agent-i1"]


def test_a_record_that_moved_to_terminating_keeps_its_newer_state(store, agents, doctor):
    domain = add_domain(store, record())

    def terminate(d, _):
        current = d.get_instance("i1")
        d.update_instance(
            current.replace(state=S.TERMINATING, state_time=T0 + 199.0, health=H.UNKNOWN)
        )

    domain.hooks.append(terminate)
    doctor.run_pass(T0 + 200.0)
    stored = domain.get_instance("i1")
    assert (stored.state, stored.health) == (S.TERMINATING, H.UNKNOWN)
    assert agents.calls == []


def test_a_record_that_vanished_is_skipped(store, agents, doctor):
    domain = add_domain(store, record(), record("i2"))
    domain.hooks.append(lambda d, _: d.remove_instance("i1"))
    doctor.run_pass(T0 + 200.0)
    assert domain.get_instance("i1") is None
    assert health_of(domain, "i2") == H.OUT_OF_CONTACT
    assert [a for a, _ in agents.calls] == ["agent-i2"]


def test_endless_conflicts_give_up_and_the_pass_goes_on(store, agents, doctor, caplog):
    domain = add_domain(store, record(), record("i2"))

    def conflict(d, instance):
        if instance.instance_id == "i1":
            raise WriteConflictError("someone else wrote it")

    domain.hooks.extend([conflict] * (WRITE_ATTEMPTS + 1))
    with caplog.at_level(logging.WARNING, logger="epum.doctor"):
        doctor.run_pass(T0 + 200.0)
    assert health_of(domain) == H.OK
    assert health_of(domain, "i2") == H.OUT_OF_CONTACT
    assert any("not written after" in r.getMessage() for r in caplog.records)
    assert [a for a, _ in agents.calls] == ["agent-i2"]


# failures and logs ----------------------------------------------------------------


def test_a_failing_agent_client_is_logged_and_the_pass_goes_on(store, caplog):
    agents = FakeAgents(failing=("agent-i1",))
    doctor = Doctor(store, agents, clock=lambda: T0)
    domain = add_domain(store, record(), record("i2"), owner="carol", domain_id="web")
    with caplog.at_level(logging.INFO, logger="epum.doctor"):
        doctor.run_pass(T0 + 200.0)
    assert health_of(domain) == H.OUT_OF_CONTACT
    assert health_of(domain, "i2") == H.OUT_OF_CONTACT
    assert sorted(a for a, _ in agents.calls) == ["agent-i1", "agent-i2"]
    (failure,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "dump_state to agent agent-i1" in failure.getMessage()
    assert failure.exc_info is not None
    # The request counts as made: without an answer the instance goes missing.
    doctor.run_pass(T0 + 215.0 + EPS)
    assert health_of(domain) == H.MISSING


def test_every_log_line_names_the_domain_and_caller(store, caplog):
    doctor = Doctor(store, FakeAgents(failing=("agent-i1",)), clock=lambda: T0)
    add_domain(store, record(), owner="carol", domain_id="web")
    with caplog.at_level(logging.DEBUG, logger="epum.doctor"):
        doctor.run_pass(T0 + 200.0)
        doctor.run_pass(T0 + 300.0)
    assert len(caplog.records) >= 3
    for r in caplog.records:
        assert (r.caller, r.domain) == ("carol", "web")


def test_a_failing_domain_does_not_stop_the_others(store, doctor, caplog):
    broken = add_domain(store, record("b1"), domain_id="broken")
    good = add_domain(store, record("g1"), domain_id="good")

    def fail():
        raise RuntimeError("store hiccup")

    broken.get_instances = fail
    with caplog.at_level(logging.ERROR, logger="epum.doctor"):
        doctor.run_pass(T0 + 200.0)
    assert health_of(good, "g1") == H.OUT_OF_CONTACT
    (failure,) = caplog.records
    assert failure.domain == "broken"


def test_a_deposed_doctor_stops_its_pass(store, doctor):
    domain = add_domain(store, record())
    doctor.depose()
    doctor.run_pass(T0 + 200.0)
    assert health_of(domain) == H.OK


# as an elected role -----------------------------------------------------------------


def test_elected_doctor_runs_a_pass_at_once(store, agents):
    domain = add_domain(store, record())
    written = threading.Event()
    store.add_change_listener(lambda owner, domain_id: written.set())
    doctor = Doctor(store, agents, interval=3600.0, clock=lambda: T0 + 200.0)
    store.contend_doctor(doctor)
    try:
        assert written.wait(5.0)
        assert health_of(domain) == H.OUT_OF_CONTACT
        assert doctor.is_leader
    finally:
        store.shutdown()
    assert not doctor.is_leader
