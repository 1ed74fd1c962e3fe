"""The store contract, run against every backend (see tests/store_backends.py)."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from epum.errors import BadRequestError, NotFoundError, WriteConflictError
from epum.instances import Instance
from epum.states import InstanceHealthState, InstanceState
from tests.kit import wait_until
from tests.store_backends import BACKENDS, make_store


@pytest.fixture(params=BACKENDS)
def store(request):
    return make_store(request.param, request)


def record(instance_id: str, state: str = InstanceState.REQUESTING) -> Instance:
    return Instance(
        instance_id=instance_id,
        launch_id="l-" + instance_id,
        site="site1",
        allocation="small",
        state=state,
        state_time=100.0,
        extravars={"k": "v"},
    )


CONFIG = {"general": {"engine_class": "simplest"}, "engine_conf": {"preserve_n": 2}, "health": {}}


def test_definitions_round_trip(store):
    store.add_domain_definition("d1", {"general": {"engine_class": "simplest"}})
    with pytest.raises(WriteConflictError):
        store.add_domain_definition("d1", {})
    assert store.get_domain_definition("d1") == {"general": {"engine_class": "simplest"}}
    store.update_domain_definition("d1", {"engine_conf": {"preserve_n": 1}})
    assert store.get_domain_definition("d1") == {"engine_conf": {"preserve_n": 1}}
    store.add_domain_definition("d0", {})
    assert store.list_domain_definitions() == ["d0", "d1"]
    store.remove_domain_definition("d1")
    assert store.get_domain_definition("d1") is None
    with pytest.raises(NotFoundError):
        store.remove_domain_definition("d1")
    with pytest.raises(NotFoundError):
        store.update_domain_definition("d1", {})


def test_stored_values_are_copies(store):
    definition = {"engine_conf": {"preserve_n": 1}}
    store.add_domain_definition("d1", definition)
    definition["engine_conf"]["preserve_n"] = 5
    got = store.get_domain_definition("d1")
    got["engine_conf"]["preserve_n"] = 7
    assert store.get_domain_definition("d1") == {"engine_conf": {"preserve_n": 1}}


def test_domains_are_per_owner(store):
    store.add_domain("alice", "dom", CONFIG)
    store.add_domain("bob", "dom", CONFIG)
    store.add_domain("alice", "dom2", CONFIG)
    with pytest.raises(WriteConflictError):
        store.add_domain("alice", "dom", CONFIG)
    assert store.list_domains_by_owner("alice") == ["dom", "dom2"]
    assert store.list_domains_by_owner("bob") == ["dom"]
    assert store.list_domains_by_owner("carol") == []
    assert sorted(d.key for d in store.get_all_domains()) == [
        ("alice", "dom"),
        ("alice", "dom2"),
        ("bob", "dom"),
    ]
    assert store.get_domain("carol", "dom") is None
    store.remove_domain("alice", "dom")
    assert store.get_domain("alice", "dom") is None
    assert store.list_domains_by_owner("alice") == ["dom2"]
    store.remove_domain("alice", "dom")  # already gone: no error


def test_config_sections_and_versions(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    assert domain.get_all_config() == CONFIG
    conf, v0 = domain.get_versioned_config("engine_conf")
    assert conf == {"preserve_n": 2}
    domain.update_config({"engine_conf": {"preserve_n": 3, "x": 1}})
    conf, v1 = domain.get_versioned_config("engine_conf")
    assert conf == {"preserve_n": 3, "x": 1}
    assert v1 > v0
    general, _ = domain.get_versioned_config("general")
    assert general == {"engine_class": "simplest"}
    with pytest.raises(BadRequestError):
        domain.update_config({"nonsense": {}})
    with pytest.raises(BadRequestError):
        domain.get_versioned_config("nonsense")


def _preserve_n(section: dict) -> tuple[str, int]:
    return ("preserve_n", section["preserve_n"])


def test_a_section_decoded_follows_every_update(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    assert domain.get_config_as("engine_conf", _preserve_n) == ("preserve_n", 2)
    assert store.get_domain("alice", "dom").get_config_as("engine_conf", _preserve_n)[1] == 2
    domain.update_config({"engine_conf": {"preserve_n": 3}})
    assert domain.get_config_as("engine_conf", _preserve_n) == ("preserve_n", 3)
    assert domain.get_config_as("engine_conf", len) == 1  # another decode: decoded anew
    with pytest.raises(BadRequestError):
        domain.get_config_as("nonsense", len)


def test_removal_mark(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    assert not domain.is_removed()
    domain.mark_removed()
    assert store.get_domain("alice", "dom").is_removed()


def test_subscribers(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    domain.add_subscriber("s1", "op1")
    domain.add_subscriber("s2", "op2")
    domain.add_subscriber("s1", "op3")
    assert domain.get_subscribers() == [("s1", "op3"), ("s2", "op2")]
    assert domain.remove_subscriber("s1") is True
    assert domain.remove_subscriber("s1") is False
    assert store.get_domain("alice", "dom").get_subscribers() == [("s2", "op2")]


def test_sensor_data(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    assert domain.get_domain_sensor_data() == {}
    domain.set_domain_sensor_data({"cpu": [1, 2]})
    assert store.get_domain("alice", "dom").get_domain_sensor_data() == {"cpu": [1, 2]}


def test_instances_compare_and_set(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    added = domain.add_instance(record("i1"))
    assert added.version is not None
    with pytest.raises(WriteConflictError):
        domain.add_instance(record("i1"))
    got = domain.get_instance("i1")
    assert got == record("i1")
    assert got.version == added.version
    updated = domain.update_instance(got.replace(state=InstanceState.PENDING))
    assert updated.version != got.version
    with pytest.raises(WriteConflictError):
        domain.update_instance(got.replace(health=InstanceHealthState.OK))
    assert domain.get_instance("i1").state == InstanceState.PENDING
    assert domain.get_instance("i1").health == InstanceHealthState.UNKNOWN
    domain.add_instance(record("i2"))
    assert sorted(i.instance_id for i in domain.get_instances()) == ["i1", "i2"]
    domain.remove_instance("i1")
    assert domain.get_instance("i1") is None
    with pytest.raises(NotFoundError):
        domain.update_instance(updated)
    domain.remove_instance("i1")  # already gone: no error


def test_record_round_trips_every_field(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    full = record("i1").replace(
        deployable_type="dt",
        iaas_id="iaas-1",
        public_ip="1.2.3.4",
        private_ip="10.0.0.1",
        hostname="h1",
        errors=["boom"],
        error_time=5.0,
        update_counter=3,
        sensor_data={"cpu": 0.5},
        last_heard=7.5,
        health=InstanceHealthState.OK,
    )
    domain.add_instance(full)
    got = domain.get_instance("i1")
    assert got.to_dict() == full.to_dict()


def test_instance_index(store):
    a = store.add_domain("alice", "dom", CONFIG)
    b = store.add_domain("bob", "dom", CONFIG)
    a.add_instance(record("ia"))
    b.add_instance(record("ib"))
    with pytest.raises(WriteConflictError):
        b.add_instance(record("ia"))  # an id is unique across domains
    assert store.get_domain_for_instance_id("ia").key == ("alice", "dom")
    assert store.get_domain_for_instance_id("ib").key == ("bob", "dom")
    assert store.get_domain_for_instance_id("nope") is None
    a.remove_instance("ia")
    assert store.get_domain_for_instance_id("ia") is None
    store.remove_domain("bob", "dom")
    assert store.get_domain_for_instance_id("ib") is None


def test_racing_writers_one_wins(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    domain.add_instance(record("i1"))
    read = domain.get_instance("i1")
    results = []

    def write(health):
        try:
            domain.update_instance(read.replace(health=health))
            results.append("ok")
        except WriteConflictError:
            results.append("conflict")

    threads = [
        threading.Thread(target=write, args=(h,))
        for h in (InstanceHealthState.OK, InstanceHealthState.MISSING)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict", "ok"]


def test_change_listener_sees_domain_changes(store):
    seen = []
    event = threading.Event()

    def listener(owner, domain_id):
        seen.append((owner, domain_id))
        event.set()

    store.add_change_listener(listener)
    domain = store.add_domain("alice", "dom", CONFIG)
    assert event.wait(5)
    event.clear()
    seen.clear()
    domain.add_instance(record("i1"))
    assert event.wait(5)
    assert ("alice", "dom") in seen


def test_change_stamp_moves_with_every_write_that_changes_the_domain(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    other = store.add_domain("bob", "dom", CONFIG)

    def settled(d):
        # an own write is covered once it returns; its watch event may draw once more
        def still() -> bool:
            first = d.change_stamp()
            time.sleep(0.2)
            return first is not None and d.change_stamp() == first

        wait_until(still)
        return d.change_stamp()

    writes = [
        lambda: domain.update_config({"engine_conf": {"preserve_n": 3}}),
        lambda: domain.add_subscriber("sub", "op"),
        lambda: domain.set_domain_sensor_data({"load": {"value": 1}}),
        lambda: domain.add_instance(record("i1")),
        lambda: domain.update_instance(domain.get_instance("i1").replace(hostname="h")),
        lambda: domain.remove_instance("i1"),
        lambda: domain.remove_subscriber("sub"),
        domain.mark_removed,
    ]
    for write in writes:
        before, others = settled(domain), settled(other)
        write()
        assert domain.change_stamp() != before
        assert settled(other) == others  # another domain's stamp stays
    before = settled(domain)
    domain.append_history([{"time": 1.0}], max_entries=3, max_age=100.0, now=1.0)
    assert domain.get_history() and domain.change_stamp() == before  # the log is not covered


def test_decision_log_is_bounded_per_domain_and_goes_with_it(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    other = store.add_domain("bob", "dom", CONFIG)
    assert domain.get_history() == []
    domain.append_history([], max_entries=3, max_age=100.0, now=10.0)  # no entries: no write
    for t in range(1, 6):
        domain.append_history([{"time": float(t), "n": t}], max_entries=3, max_age=100.0, now=t)
    assert [e["n"] for e in domain.get_history()] == [3, 4, 5]
    domain.append_history(
        [{"time": 60.0, "n": 6}, {"time": 60.0, "n": 7}], max_entries=3, max_age=57.5, now=60.0
    )
    assert [e["n"] for e in domain.get_history()] == [5, 6, 7]  # 3 and 4 are too old
    assert other.get_history() == []
    store.remove_domain("alice", "dom")
    with pytest.raises(NotFoundError):
        domain.append_history([{"time": 61.0}], max_entries=3, max_age=100.0, now=61.0)
    again = store.add_domain("alice", "dom", CONFIG)
    assert again.get_history() == []


def test_writing_the_decision_log_wakes_no_listener(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    seen = []
    markers = {"m1": threading.Event(), "m2": threading.Event()}

    def listener(owner, domain_id):
        seen.append(domain_id)
        if domain_id in markers:
            markers[domain_id].set()

    store.add_change_listener(listener)
    # A fence: a write to dom's own subscribers node is heard only once the
    # cache has loaded dom's subtree, so no event of its creation trails it.
    domain.add_subscriber("watcher", "op")
    wait_until(lambda: "dom" in seen, 5, what="dom's subscriber write heard")
    store.add_domain("alice", "m1", CONFIG)  # listeners hear of changes in order
    assert markers["m1"].wait(5)
    seen.clear()
    domain.append_history([{"time": 1.0}], max_entries=3, max_age=100.0, now=1.0)
    store.add_domain("alice", "m2", CONFIG)
    assert markers["m2"].wait(5)
    assert "dom" not in seen


class FakeLeader:
    """Leads until its term ends, keeping every term it was given."""

    def __init__(self):
        self.elected = threading.Event()
        self.terms = []

    def inaugurate(self, term):
        self.terms.append(term)
        self.elected.set()
        term.wait()


def test_one_leader_per_role_and_shutdown_ends_the_terms(store):
    first, second, doctor = FakeLeader(), FakeLeader(), FakeLeader()
    store.contend_decider(first)
    assert first.elected.wait(10)
    store.contend_decider(second)
    store.contend_doctor(doctor)
    assert doctor.elected.wait(10)
    assert not second.elected.wait(0.5)
    (first_term,) = first.terms
    (doctor_term,) = doctor.terms
    assert (first_term.role, doctor_term.role) == ("decider", "doctor")
    assert not first_term.ended and not doctor_term.ended
    store.shutdown()
    assert first_term.ended
    assert doctor_term.ended
    assert second.terms == []


class LateStartingLeader:
    """A leader that only looks at its term when the test says."""

    def __init__(self):
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.term = None
        self.saw_end = None
        self.returned = threading.Event()

    def inaugurate(self, term):
        self.term = term
        self.entered.set()
        self.gate.wait(10)
        self.saw_end = term.wait(10)
        self.returned.set()


def test_an_early_depose_is_never_lost(store):
    leader = LateStartingLeader()
    store.contend_reaper(leader)
    assert leader.entered.wait(10)
    stopper = threading.Thread(target=store.shutdown)
    stopper.start()
    assert leader.term.wait(10), "shutdown did not end the term"
    leader.gate.set()  # the leader gets to its term only after it was ended
    stopper.join(10)
    assert not stopper.is_alive()
    assert leader.returned.wait(1), "the leader was left running after shutdown"
    assert leader.saw_end is True


def test_a_new_term_never_inherits_a_stale_stop(store):
    terms = []
    in_second = threading.Event()

    class QuitsOnce:
        def inaugurate(self, term):
            terms.append(term)
            if len(terms) == 1:
                return  # quits on its own: its term is over, it rejoins
            in_second.set()
            term.wait()

    store.contend_decider(QuitsOnce())
    assert in_second.wait(10)
    first, second = terms
    assert first.ended, "a term outlived the leader's inaugurate"
    assert not second.ended
    assert first.identity != second.identity
    assert first.role == second.role == "decider"
    first.end()  # a late signal for the old term reaches only the old term
    assert not second.ended
    store.shutdown()
    assert second.ended


def test_a_leader_that_keeps_failing_rejoins_at_a_bounded_pace(store):
    calls: list[float] = []

    class Broken:
        def inaugurate(self, term):
            calls.append(time.monotonic())
            raise RuntimeError("broken at once")

    store.contend_reaper(Broken())
    wait_until(lambda: len(calls) >= 3, 10, "three terms of a leader that fails at once")
    store.shutdown()
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert min(gaps) >= 0.25, f"rejoined after {gaps} s"  # both stores pause 0.5 s
