"""The reaper removes exactly the terminal records older than max_age."""

from __future__ import annotations

import logging
import threading

import pytest

from epum.instances import Instance
from epum.reaper import Reaper
from epum.states import InstanceState as S
from epum.store.memory import MemoryEPUMStore

NOW = 100_000.0
MAX_AGE = 7200.0
EPS = 0.001


def record(instance_id: str, state: str, state_time: float) -> Instance:
    return Instance(
        instance_id=instance_id,
        launch_id="l1",
        site="site",
        allocation="small",
        state=state,
        state_time=state_time,
    )


@pytest.fixture
def store():
    return MemoryEPUMStore()


def ids(domain) -> set[str]:
    return {i.instance_id for i in domain.get_instances()}


def test_defaults():
    reaper = Reaper(MemoryEPUMStore())
    assert (reaper.max_age, reaper.interval, reaper.name) == (7200.0, 300.0, "reaper")


@pytest.mark.parametrize("state", [S.TERMINATED, S.FAILED, S.REJECTED])
def test_terminal_records_go_just_past_max_age(store, state):
    domain = store.add_domain("alice", "d1", {})
    domain.add_instance(record("at-limit", state, NOW - MAX_AGE))
    domain.add_instance(record("past-limit", state, NOW - MAX_AGE - EPS))
    Reaper(store, max_age=MAX_AGE).run_pass(NOW)
    assert ids(domain) == {"at-limit"}
    assert store.get_domain_for_instance_id("past-limit") is None


@pytest.mark.parametrize("state", [s for s in S.ALL if s not in S.TERMINAL])
def test_other_states_stay_however_old(store, state):
    domain = store.add_domain("alice", "d1", {})
    domain.add_instance(record("old", state, NOW - 100 * MAX_AGE))
    Reaper(store, max_age=MAX_AGE).run_pass(NOW)
    assert ids(domain) == {"old"}


def test_every_domain_is_swept_removed_ones_included(store):
    a = store.add_domain("alice", "d1", {})
    b = store.add_domain("bob", "d1", {})
    c = store.add_domain("carol", "gone", {})
    c.mark_removed()
    for n, domain in enumerate((a, b, c)):
        domain.add_instance(record(f"old{n}", S.TERMINATED, NOW - MAX_AGE - 1))
        domain.add_instance(record(f"new{n}", S.TERMINATED, NOW - 1))
        domain.add_instance(record(f"live{n}", S.RUNNING, NOW - MAX_AGE - 1))
    Reaper(store, max_age=MAX_AGE).run_pass(NOW)
    for n, domain in enumerate((a, b, c)):
        assert ids(domain) == {f"new{n}", f"live{n}"}
    # Nothing else is touched: the domains and their configs stay.
    assert len(store.get_all_domains()) == 3
    assert c.is_removed()


def test_a_failing_domain_is_logged_and_the_pass_goes_on(store, caplog):
    broken = store.add_domain("alice", "broken", {})
    good = store.add_domain("alice", "good", {})
    good.add_instance(record("old", S.FAILED, 0.0))

    def fail():
        raise RuntimeError("store hiccup")

    broken.get_instances = fail
    with caplog.at_level(logging.ERROR, logger="epum.reaper"):
        Reaper(store, max_age=MAX_AGE).run_pass(NOW)
    assert ids(good) == set()
    (failure,) = caplog.records
    assert (failure.caller, failure.domain) == ("alice", "broken")


def test_a_deposed_reaper_stops(store):
    domain = store.add_domain("alice", "d1", {})
    domain.add_instance(record("old", S.TERMINATED, 0.0))
    reaper = Reaper(store, max_age=MAX_AGE)
    reaper.depose()
    reaper.run_pass(NOW)
    assert ids(domain) == {"old"}


def test_elected_reaper_reaps_at_once_with_its_clock(store):
    domain = store.add_domain("alice", "d1", {})
    domain.add_instance(record("old", S.TERMINATED, NOW - MAX_AGE - 1))
    domain.add_instance(record("new", S.TERMINATED, NOW - 1))
    removed = threading.Event()
    store.add_change_listener(lambda owner, domain_id: removed.set())
    store.contend_reaper(Reaper(store, max_age=MAX_AGE, clock=lambda: NOW))
    try:
        assert removed.wait(5.0)
        assert ids(domain) == {"new"}
    finally:
        store.shutdown()
