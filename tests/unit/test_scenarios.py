"""Scenario tests: the whole core in one process, driven in external-decide mode."""

from __future__ import annotations

import logging

import pytest

from epum.control import RESEND_INTERVAL
from epum.decider import Decider
from epum.engines.base import Engine
from epum.errors import (
    BadRequestError,
    ConfigError,
    NotFoundError,
    NotInitializedError,
    WriteConflictError,
    WrongModeError,
)
from epum.management import EPUManagement
from epum.states import InstanceHealthState, InstanceState
from epum.store.memory import MemoryEPUMStore
from tests.fakes import FakeDTRS, FakeNotifier, FakeProvisioner
from tests.unit.scenario import Scenario


@pytest.fixture
def sc():
    scenario = Scenario(
        {"provisioner_vars": {"service_var": "s", "shared": "service"}},
    )
    yield scenario
    scenario.epum.shutdown()


def test_grow_to_n_with_launch_vars(sc):
    sc.add_domain(
        "alice",
        "dom",
        3,
        general={"chef_credential": "chefcred"},
        engine_conf={"provisioner_vars": {"shared": "engine"}},
    )
    sc.decide()
    assert len(sc.provisioner.provisioned) == 3
    records = sc.instances("alice", "dom")
    assert {r["state"] for r in records} == {InstanceState.REQUESTING}
    request = sc.provisioner.provisioned[0]
    assert len(request["instance_ids"]) == 1
    assert request["caller"] == "alice"
    assert request["deployable_type"] == "dt"
    assert request["vars"] == {
        "service_var": "s",
        "shared": "engine",
        "chef_credential": "chefcred",
        "node_id": request["instance_ids"][0],
        "heartbeat_dest": "epum_test",
    }
    sc.decide()
    assert len(sc.provisioner.provisioned) == 3, "pending instances count toward the size"
    sc.cloud.run_all()
    sc.decide()
    assert len(sc.provisioner.provisioned) == 3
    assert {r["state"] for r in sc.instances("alice", "dom")} == {InstanceState.RUNNING}


def test_shrink_after_reconfigure(sc):
    sc.add_domain("alice", "dom", 3)
    sc.decide()
    sc.cloud.run_all()
    sc.epum.msg_reconfigure_domain("alice", "dom", {"engine_conf": {"preserve_n": 1}})
    sc.decide()
    assert len(sc.provisioner.terminated) == 2
    states = sorted(r["state"] for r in sc.instances("alice", "dom"))
    assert states == [InstanceState.RUNNING, InstanceState.TERMINATING, InstanceState.TERMINATING]
    sc.cloud.terminate_all()
    sc.decide()
    assert len(sc.live("alice", "dom")) == 1
    assert len(sc.provisioner.provisioned) == 3


def test_failed_instance_replaced_and_subscriber_told_once(sc):
    sc.add_domain("alice", "dom", 2)
    sc.epum.msg_subscribe_domain("alice", "dom", "watcher", "node_changed")
    sc.decide()
    sc.cloud.run_all()
    running = [n for n in sc.notifier.notifications if n[2]["state"] == InstanceState.RUNNING]
    assert len(running) == 2
    victim = sc.provisioner.provisioned_ids()[0]
    sc.cloud.report(victim, InstanceState.FAILED)
    sc.cloud.report(victim, InstanceState.FAILED)  # a duplicate tells nobody again
    failed = [n for n in sc.notifier.notifications if n[2]["state"] == InstanceState.FAILED]
    assert failed == [
        (
            "watcher",
            "node_changed",
            {
                "node_id": victim,
                "state": InstanceState.FAILED,
                "domain_id": "dom",
                "properties": {"hostname": f"ip-{victim}"},
            },
        )
    ]
    sc.decide()
    assert len(sc.provisioner.provisioned) == 3
    assert len(sc.live("alice", "dom")) == 2


def test_subscribers_told_once_per_transition_through_termination(sc):
    sc.add_domain("alice", "dom", 1)
    sc.epum.msg_subscribe_domain("alice", "dom", "watcher", "op")
    sc.decide()
    (node,) = sc.provisioner.provisioned_ids()
    sc.cloud.report(node, InstanceState.PENDING)
    sc.cloud.report(node, InstanceState.STARTED)
    sc.cloud.report(node, InstanceState.RUNNING)
    sc.cloud.report(node, InstanceState.RUNNING)
    sc.cloud.report(node, InstanceState.TERMINATING)
    sc.cloud.report(node, InstanceState.TERMINATED)
    assert [n[2]["state"] for n in sc.notifier.notifications] == [
        InstanceState.RUNNING,
        InstanceState.FAILED,
    ]


def test_running_failed_is_replaced(sc):
    sc.add_domain("alice", "dom", 1)
    sc.decide()
    sc.cloud.run_all()
    (node,) = sc.provisioner.provisioned_ids()
    sc.cloud.report(node, InstanceState.RUNNING_FAILED)
    sc.decide()
    assert node in sc.provisioner.terminated
    assert len(sc.provisioner.provisioned) == 2


def test_missing_instance_replaced(sc):
    sc.add_domain(
        "alice",
        "dom",
        1,
        health={"monitor_health": True, "missing_timeout": 100, "really_missing_timeout": 10},
    )
    sc.decide()
    sc.cloud.run_all()
    (node,) = sc.provisioner.provisioned_ids()
    start = sc.clock.now
    sc.epum.msg_heartbeat("agent-1", {"node_id": node, "state": "OK"}, timestamp=start)
    sc.epum._doctor_appt(timestamp=start + 50)
    assert sc.instances("alice", "dom")[0]["health"] == InstanceHealthState.OK
    sc.epum._doctor_appt(timestamp=start + 1000)
    assert sc.instances("alice", "dom")[0]["health"] == InstanceHealthState.OUT_OF_CONTACT
    assert sc.agents.dump_state_calls == ["agent-1"]
    sc.decide()
    assert sc.provisioner.terminated == [], "out of contact is not missing yet"
    sc.epum._doctor_appt(timestamp=start + 1100)
    assert sc.instances("alice", "dom")[0]["health"] == InstanceHealthState.MISSING
    sc.decide()
    assert node in sc.provisioner.terminated
    assert len(sc.provisioner.provisioned) == 2


def test_heartbeat_errors_kept_and_ignored_without_monitoring(sc):
    sc.add_domain("alice", "watched", 1, health={"monitor_health": True})
    sc.add_domain("alice", "unwatched", 1)
    sc.decide()
    sc.cloud.run_all()
    by_domain = {d: sc.instances("alice", d)[0]["instance_id"] for d in ("watched", "unwatched")}
    failed = [{"name": "worker", "state": "FATAL"}]
    for node in by_domain.values():
        sc.epum.msg_heartbeat(
            "agent",
            {"node_id": node, "state": "PROCESS_ERROR", "failed_processes": failed},
            timestamp=sc.clock.now,
        )
    watched = sc.instances("alice", "watched")[0]
    assert watched["health"] == InstanceHealthState.PROCESS_ERROR
    assert watched["errors"] == failed
    assert watched["agent_address"] == "agent"
    unwatched = sc.instances("alice", "unwatched")[0]
    assert unwatched["health"] == InstanceHealthState.UNKNOWN
    assert unwatched["errors"] is None
    sc.epum.msg_heartbeat(
        "agent",
        {"node_id": by_domain["watched"], "state": "MONITOR_ERROR", "error": "disk full"},
        timestamp=sc.clock.now,
    )
    watched = sc.instances("alice", "watched")[0]
    assert (watched["health"], watched["errors"]) == ("MONITOR_ERROR", ["disk full"])


def test_heartbeat_writes_are_bounded(sc):
    sc.add_domain("alice", "dom", 1, health={"monitor_health": True, "missing_timeout": 100})
    sc.decide()
    sc.cloud.run_all()
    (node,) = sc.provisioner.provisioned_ids()
    domain = sc.epum.store.get_domain("alice", "dom")
    writes = []
    original = domain.update_instance

    def counting(instance):
        writes.append(instance.last_heard)
        return original(instance)

    domain.update_instance = counting
    start = sc.clock.now
    for second in range(0, 100):  # a heartbeat every second for 100 s
        sc.epum.msg_heartbeat("agent", {"node_id": node, "state": "OK"}, timestamp=start + second)
    # the first heartbeat (health changes), then one once the stored time is
    # more than a quarter of missing_timeout (25 s) old
    assert writes == [start, start + 26, start + 52, start + 78]


def test_remove_domain_terminates_then_disappears(sc):
    sc.add_domain("alice", "dom", 2)
    sc.decide()
    sc.cloud.run_all()
    sc.epum.msg_remove_domain("alice", "dom")
    assert sc.epum.msg_list_domains("alice") == []
    with pytest.raises(NotFoundError):
        sc.epum.msg_describe_domain("alice", "dom")
    with pytest.raises(NotFoundError):
        sc.epum.msg_remove_domain("alice", "dom")
    sc.decide()
    assert sorted(sc.provisioner.terminated) == sorted(sc.provisioner.provisioned_ids())
    assert sc.epum.store.get_domain("alice", "dom") is not None, "waits for terminations"
    sc.cloud.terminate_all()
    sc.decide()
    assert sc.epum.store.get_domain("alice", "dom") is None
    assert sc.epum.store.get_domain_for_instance_id(sc.provisioner.provisioned_ids()[0]) is None


def test_unanswered_requests_resent_no_more_than_every_interval(sc):
    sc.add_domain("alice", "dom", 1)
    sc.decide()
    assert len(sc.provisioner.provisioned) == 1
    sc.clock.advance(RESEND_INTERVAL - 1)
    sc.decide()
    assert len(sc.provisioner.provisioned) == 1
    sc.clock.advance(1)
    sc.decide()
    assert len(sc.provisioner.provisioned) == 2
    assert sc.provisioner.provisioned[0] == sc.provisioner.provisioned[1]
    sc.cloud.run_all()
    sc.epum.msg_reconfigure_domain("alice", "dom", {"engine_conf": {"preserve_n": 0}})
    sc.decide()
    assert len(sc.provisioner.terminated) == 1
    sc.decide()
    assert len(sc.provisioner.terminated) == 1
    sc.clock.advance(RESEND_INTERVAL)
    sc.decide()
    assert len(sc.provisioner.terminated) == 2


def test_provisioner_failure_is_retried_later(sc):
    sc.add_domain("alice", "dom", 1)
    sc.provisioner.fail = True
    sc.decide()
    assert sc.provisioner.provisioned == []
    assert len(sc.instances("alice", "dom")) == 1
    sc.provisioner.fail = False
    sc.clock.advance(RESEND_INTERVAL)
    sc.decide()
    assert len(sc.provisioner.provisioned) == 1
    assert len(sc.instances("alice", "dom")) == 1


def test_reaper_removes_old_terminal_records(sc):
    sc.add_domain("alice", "dom", 2)
    sc.decide()
    sc.cloud.run_all()
    old, young = sc.provisioner.provisioned_ids()
    sc.cloud.report(old, InstanceState.FAILED)
    sc.clock.advance(7000)
    sc.cloud.report(young, InstanceState.TERMINATED)
    sc.clock.advance(201)
    sc.epum._run_reaper_loop()
    ids = {r["instance_id"] for r in sc.instances("alice", "dom")}
    assert old not in ids
    assert young in ids


def test_callers_cannot_see_or_touch_each_others_domains(sc):
    sc.add_domain("alice", "dom", 1)
    sc.add_domain("bob", "dom", 2)
    sc.add_domain("bob", "other", 0)
    assert sc.epum.msg_list_domains("alice") == ["dom"]
    assert sc.epum.msg_list_domains("bob") == ["dom", "other"]
    with pytest.raises(NotFoundError):
        sc.epum.msg_describe_domain("alice", "other")
    with pytest.raises(NotFoundError):
        sc.epum.msg_remove_domain("alice", "other")
    with pytest.raises(NotFoundError):
        sc.epum.msg_reconfigure_domain("alice", "other", {"engine_conf": {"preserve_n": 9}})
    with pytest.raises(NotFoundError):
        sc.epum.msg_subscribe_domain("alice", "other", "spy", "op")
    sc.epum.msg_reconfigure_domain("alice", "dom", {"engine_conf": {"preserve_n": 5}})
    bob = sc.epum.msg_describe_domain("bob", "dom")
    assert bob["config"]["engine_conf"]["preserve_n"] == 2
    sc.decide()
    assert len(sc.instances("alice", "dom")) == 5
    assert len(sc.instances("bob", "dom")) == 2


def test_out_of_order_and_duplicate_records_dropped(sc):
    sc.add_domain("alice", "dom", 1)
    sc.decide()
    (node,) = sc.provisioner.provisioned_ids()
    sc.epum.msg_instance_info(
        "prov", {"node_id": node, "state": "600-RUNNING", "update_counter": 5}
    )
    sc.epum.msg_instance_info(
        "prov", {"node_id": node, "state": "400-PENDING", "update_counter": 6}
    )
    assert sc.instances("alice", "dom")[0]["state"] == "600-RUNNING"
    sc.epum.msg_instance_info(
        "prov", {"node_id": node, "state": "600-RUNNING", "update_counter": 5, "public_ip": "x"}
    )
    assert sc.instances("alice", "dom")[0]["public_ip"] is None, "same counter: dropped"
    sc.epum.msg_instance_info(
        "prov", {"node_id": node, "state": "600-RUNNING", "update_counter": 7, "public_ip": "y"}
    )
    assert sc.instances("alice", "dom")[0]["public_ip"] == "y"
    sc.epum.msg_instance_info("prov", {"node_id": "nobody", "state": "600-RUNNING"})
    assert [r["instance_id"] for r in sc.instances("alice", "dom")] == [node]


def test_terminating_resets_health(sc):
    sc.add_domain("alice", "dom", 1, health={"monitor_health": True})
    sc.decide()
    sc.cloud.run_all()
    (node,) = sc.provisioner.provisioned_ids()
    sc.epum.msg_heartbeat("a", {"node_id": node, "state": "PROCESS_ERROR"}, timestamp=sc.clock.now)
    sc.cloud.report(node, InstanceState.TERMINATING)
    assert sc.instances("alice", "dom")[0]["health"] == InstanceHealthState.UNKNOWN


class RacingStore(MemoryEPUMStore):
    """A store where another writer gets in first, once, for each domain's first update."""

    def get_domain(self, owner, domain_id):
        domain = super().get_domain(owner, domain_id)
        return domain

    def get_domain_for_instance_id(self, instance_id):
        domain = super().get_domain_for_instance_id(instance_id)
        if domain is None or getattr(domain, "_racing", False):
            return domain
        domain._racing = True
        original = domain.update_instance

        def update_after_a_rival(instance):
            if not getattr(domain, "_raced", False):
                domain._raced = True
                rival = domain.get_instance(instance.instance_id)
                original(rival.replace(hostname="rival"))
            return original(instance)

        domain.update_instance = update_after_a_rival
        return domain


def test_write_conflict_is_retried_from_a_fresh_read():
    sc = Scenario(store=RacingStore())
    try:
        sc.add_domain("alice", "dom", 1)
        sc.decide()
        (node,) = sc.provisioner.provisioned_ids()
        sc.cloud.report(node, InstanceState.RUNNING, public_ip="1.1.1.1")
        record = sc.instances("alice", "dom")[0]
        assert record["state"] == InstanceState.RUNNING
        assert record["public_ip"] == "1.1.1.1"
        assert record["hostname"] == "rival", "the rival's write was kept"
    finally:
        sc.epum.shutdown()


@pytest.mark.parametrize(
    "config, fragment",
    [
        ({"engine_conf": {"preserve_n": -1}}, "preserve_n"),
        ({"engine_conf": {"preserve_n": "many"}}, "preserve_n"),
        ({"general": {"engine_class": "no.such.Engine"}}, "no.such.Engine"),
        ({"general": {"engine_class": "os.system"}}, "os.system"),
        ({"health": {"missing_timeout": -5}}, "missing_timeout"),
        ({"health": {"missing_timeout": "soon"}}, "missing_timeout"),
        ({"health": {"monitor_health": "perhaps"}}, "monitor_health"),
        ("not a mapping", "mapping"),
    ],
)
def test_invalid_domain_config_rejected_with_nothing_stored(sc, config, fragment):
    sc.epum.msg_add_domain_definition(
        "simple", {"general": {"engine_class": "simplest"}, "engine_conf": {"preserve_n": 1}}
    )
    with pytest.raises(BadRequestError, match=fragment):
        sc.epum.msg_add_domain("alice", "dom", "simple", config)
    assert sc.epum.msg_list_domains("alice") == []
    assert sc.epum.store.get_domain("alice", "dom") is None


def test_invalid_reconfigure_changes_nothing(sc):
    sc.add_domain("alice", "dom", 2)
    with pytest.raises(BadRequestError, match="preserve_n"):
        sc.epum.msg_reconfigure_domain("alice", "dom", {"engine_conf": {"preserve_n": -3}})
    with pytest.raises(BadRequestError, match="engine_class"):
        sc.epum.msg_reconfigure_domain("alice", "dom", {"general": {"engine_class": "needy"}})
    config = sc.epum.msg_describe_domain("alice", "dom")["config"]
    assert config["engine_conf"]["preserve_n"] == 2


def test_definitions_and_domain_copies(sc):
    definition = {"general": {"engine_class": "simplest"}, "engine_conf": {"preserve_n": 1}}
    sc.epum.msg_add_domain_definition("def1", definition)
    with pytest.raises(WriteConflictError):
        sc.epum.msg_add_domain_definition("def1", definition)
    described = sc.epum.msg_describe_domain_definition("def1")
    assert described["name"] == "def1"
    assert described["definition"] == definition
    assert "preserve_n" in described["documentation"]
    with pytest.raises(NotFoundError):
        sc.epum.msg_describe_domain_definition("nope")
    sc.epum.msg_add_domain("alice", "dom", "def1", {"engine_conf": {"epuworker_type": "x"}})
    sc.epum.msg_update_domain_definition(
        "def1", {"general": {"engine_class": "simplest"}, "engine_conf": {"preserve_n": 4}}
    )
    config = sc.epum.msg_describe_domain("alice", "dom")["config"]
    assert config["engine_conf"] == {"preserve_n": 1, "epuworker_type": "x"}
    sc.epum.msg_remove_domain_definition("def1")
    assert sc.epum.msg_list_domain_definitions() == []
    with pytest.raises(NotFoundError):
        sc.epum.msg_add_domain("alice", "dom2", "def1", {})
    with pytest.raises(BadRequestError, match="engine"):
        sc.epum.msg_add_domain_definition("bad", {"general": {"engine_class": "nope.Nope"}})


def test_failing_engine_is_isolated():
    sc = Scenario({"allowed_engine_prefixes": ["tests.unit.failing_engine"]})
    try:
        sc.epum.msg_add_domain_definition(
            "bad", {"general": {"engine_class": "tests.unit.failing_engine.FailingEngine"}}
        )
        sc.epum.msg_add_domain("alice", "broken", "bad", {})
        sc.add_domain("alice", "fine", 2)
        sc.decide()
        sc.decide()
        assert len(sc.instances("alice", "fine")) == 2
        assert sc.instances("alice", "broken") == []
    finally:
        sc.epum.shutdown()


def test_notifier_failure_does_not_stop_the_update(sc):
    sc.add_domain("alice", "dom", 1)
    sc.epum.msg_subscribe_domain("alice", "dom", "watcher", "op")
    sc.decide()
    sc.notifier.fail = True
    sc.cloud.run_all()
    assert sc.instances("alice", "dom")[0]["state"] == InstanceState.RUNNING


def test_unsubscribe_stops_notices(sc):
    sc.add_domain("alice", "dom", 1)
    sc.epum.msg_subscribe_domain("alice", "dom", "watcher", "op")
    sc.epum.msg_unsubscribe_domain("alice", "dom", "watcher")
    sc.decide()
    sc.cloud.run_all()
    assert sc.notifier.notifications == []


def test_add_domain_with_subscriber(sc):
    sc.epum.msg_add_domain_definition("simple", {"general": {"engine_class": "simplest"}})
    sc.epum.msg_add_domain(
        "alice", "dom", "simple", {"engine_conf": {"preserve_n": 1}}, "watcher", "op"
    )
    sc.decide()
    sc.cloud.run_all()
    assert [n[0] for n in sc.notifier.notifications] == ["watcher"]


def test_log_lines_carry_domain_and_caller(sc, caplog):
    caplog.set_level(logging.INFO, logger="epum")
    sc.add_domain("alice", "dom", 1)
    sc.decide()
    decider_lines = [
        r for r in caplog.records if r.name.startswith(("epum.engines", "epum.control"))
    ]
    assert {r.name for r in decider_lines} >= {"epum.control"}
    assert all(r.domain == "dom" and r.caller == "alice" for r in decider_lines)


def test_new_decider_asks_provisioner_for_records(sc):
    sc.add_domain("alice", "dom", 2)
    sc.decide()
    sc.epum.decider.on_elected()
    assert sorted(sc.provisioner.dump_state_calls[-1]) == sorted(sc.provisioner.provisioned_ids())


def test_a_new_decider_asks_for_many_records_in_bounded_requests(sc, monkeypatch):
    monkeypatch.setattr("epum.decider.DUMP_STATE_BATCH", 2)
    sc.add_domain("alice", "dom", 5)
    sc.decide()
    before = len(sc.provisioner.dump_state_calls)
    sc.epum.decider.on_elected()
    asked = sc.provisioner.dump_state_calls[before:]
    assert [len(ids) for ids in asked] == [2, 2, 1]
    assert sorted(i for ids in asked for i in ids) == sorted(sc.provisioner.provisioned_ids())


def test_required_clients_and_initialization():
    with pytest.raises(ValueError, match="notifier"):
        EPUManagement({}, None, FakeProvisioner(), None, FakeDTRS())
    with pytest.raises(ValueError, match="provisioner_client"):
        EPUManagement({}, FakeNotifier(), None, None, FakeDTRS())
    with pytest.raises(ValueError, match="dtrs_client"):
        EPUManagement({}, FakeNotifier(), FakeProvisioner(), None, None)
    epum = EPUManagement(
        {"_external_decide_invocations": True}, FakeNotifier(), FakeProvisioner(), None, FakeDTRS()
    )
    with pytest.raises(NotInitializedError):
        epum.msg_add_domain_definition("d", {})
    with pytest.raises(NotInitializedError):
        epum._run_decisions()
    epum.initialize()
    epum.msg_add_domain_definition("d", {})
    assert epum.msg_list_domain_definitions() == ["d"]
    epum.shutdown()


def test_hooks_refused_outside_external_decide_mode():
    epum = EPUManagement(
        {"decider_loop_interval": 60}, FakeNotifier(), FakeProvisioner(), None, FakeDTRS()
    )
    epum.initialize()
    try:
        for hook in (epum._run_decisions, epum._doctor_appt, epum._run_reaper_loop):
            with pytest.raises(WrongModeError):
                hook()
    finally:
        epum.shutdown()


@pytest.mark.parametrize(
    "conf, fragment",
    [
        ({"decider_loop_interval": 0}, "decider_loop_interval"),
        ({"provisioner_vars": ["x"]}, "provisioner_vars"),
        ({"persistence_type": "sqlite"}, "persistence_type"),
        ({"allowed_engine_prefixes": "x"}, "allowed_engine_prefixes"),
    ],
)
def test_bad_service_conf_named(conf, fragment):
    # a bad service config is the service's problem, not a caller's: ConfigError
    with pytest.raises(ConfigError, match=fragment):
        EPUManagement(conf, FakeNotifier(), FakeProvisioner(), None, FakeDTRS())


def test_zombie_is_terminated_again(sc):
    sc.add_domain("alice", "dom", 1, health={"monitor_health": True, "zombie_seconds": 60})
    sc.decide()
    sc.cloud.run_all()
    (node,) = sc.provisioner.provisioned_ids()
    sc.cloud.report(node, InstanceState.TERMINATED)
    sc.decide()  # a replacement is launched; the terminated one is left alone
    assert sc.provisioner.terminated == []
    later = sc.clock.advance(100)
    sc.epum.msg_heartbeat("agent", {"node_id": node, "state": "OK"}, timestamp=later)
    sc.epum._doctor_appt(timestamp=later)
    record = next(r for r in sc.instances("alice", "dom") if r["instance_id"] == node)
    assert record["health"] == InstanceHealthState.ZOMBIE
    sc.decide()
    assert sc.provisioner.terminated == [node]


def test_subscribers_told_when_epum_terminates_a_running_instance(sc):
    sc.add_domain("alice", "dom", 1)
    sc.epum.msg_subscribe_domain("alice", "dom", "watcher", "op")
    sc.decide()
    sc.cloud.run_all()
    sc.epum.msg_reconfigure_domain("alice", "dom", {"engine_conf": {"preserve_n": 0}})
    sc.decide()
    sc.cloud.terminate_all()
    assert [n[2]["state"] for n in sc.notifier.notifications] == [
        InstanceState.RUNNING,
        InstanceState.FAILED,
    ]


class DeposedMidDecision(Engine):
    """Keeps one instance; from the second decision on, the decider is deposed
    while the engine decides (as on a ZooKeeper SUSPENDED), and the engine
    then tries to replace everything it has."""

    mid_decision = None  # set by the test

    def initialize(self, control, state, conf):
        self.decisions = 0

    def decide(self, control, state):
        self.decisions += 1
        live = [i.instance_id for i in state.get_live_instances()]
        if self.decisions == 1:
            control.launch("dt", None, None, count=1)
            return
        type(self).mid_decision()
        control.destroy_instances(live)
        control.launch("dt", None, None, count=2)


def test_a_decider_deposed_mid_decision_neither_launches_nor_destroys():
    sc = Scenario({"allowed_engine_prefixes": ["tests.unit.test_scenarios"]})
    DeposedMidDecision.mid_decision = sc.epum.decider.depose
    try:
        sc.epum.msg_add_domain_definition(
            "deposed",
            {"general": {"engine_class": "tests.unit.test_scenarios.DeposedMidDecision"}},
        )
        sc.epum.msg_add_domain("alice", "dom", "deposed", {})
        sc.decide()
        sc.cloud.run_all()
        (running,) = sc.live("alice", "dom")
        sc.decide()  # deposed while deciding: another decider may be in office now
        assert [i["instance_id"] for i in sc.live("alice", "dom")] == [running["instance_id"]]
        assert sc.live("alice", "dom")[0]["state"] == InstanceState.RUNNING
        assert len(sc.provisioner.provisioned) == 1
        assert sc.provisioner.terminated == []
    finally:
        DeposedMidDecision.mid_decision = None
        sc.epum.shutdown()


def test_a_re_elected_decider_starts_afresh_from_the_store(sc):
    a = sc.epum.decider
    sc.add_domain("alice", "dom", 2)
    sc.decide()
    sc.cloud.run_all()
    assert len(sc.live("alice", "dom")) == 2

    # a loses office; another worker's decider removes the domain, and the
    # owner adds it again, smaller.
    b = Decider(sc.epum.store, sc.epum.settings, sc.provisioner, clock=sc.clock)
    sc.epum.msg_remove_domain("alice", "dom")
    b.decide_all(sc.clock())
    sc.cloud.terminate_all()
    b.decide_all(sc.clock())
    assert sc.epum.msg_list_domains("alice") == []
    sc.add_domain("alice", "dom", 1)
    b.decide_all(sc.clock())
    sc.cloud.run_all()

    # a is elected again: it decides for the domain as it is now.
    a.on_elected()
    a.decide_all(sc.clock())
    assert len(sc.live("alice", "dom")) == 1


def test_a_repeated_error_heartbeat_is_written_at_the_bounded_rate(sc):
    sc.add_domain("alice", "dom", 1, health={"monitor_health": True, "missing_timeout": 100})
    sc.decide()
    sc.cloud.run_all()
    (node,) = sc.provisioner.provisioned_ids()
    domain = sc.epum.store.get_domain("alice", "dom")
    start = sc.clock.now
    beat = {"node_id": node, "state": "MONITOR_ERROR", "error": "disk full"}
    for second in range(20):
        sc.epum.msg_heartbeat("agent", beat, timestamp=start + second)
    record = domain.get_instance(node)
    assert record.version == 2, "RUNNING, then the first error heartbeat; no more"
    assert (record.error_time, record.last_heard) == (start, start)
    sc.epum.msg_heartbeat("agent", {**beat, "error": "disk fuller"}, timestamp=start + 20)
    record = domain.get_instance(node)
    assert (record.errors, record.error_time) == (["disk fuller"], start + 20)
