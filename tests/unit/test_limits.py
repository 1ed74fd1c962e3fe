"""The facade's checks before any write, bounded launches, and corrupt stored domains."""

from __future__ import annotations

import copy
import logging

import pytest

from epum.control import DomainControl, LaunchBudget, LaunchDeferred
from epum.errors import BadRequestError
from epum.instances import Instance
from epum.messaging import envelope
from epum.store.memory import MemoryEPUMStore
from tests.fakes import FakeProvisioner
from tests.unit.scenario import Scenario

BIG = "x" * 1_000_000


def snapshot(s: Scenario) -> dict:
    """Everything the store holds, as the facade describes it."""
    epum = s.epum
    out = {"definitions": {}, "domains": {}}
    for def_id in epum.msg_list_domain_definitions():
        out["definitions"][def_id] = epum.msg_describe_domain_definition(def_id)
    for caller in ("alice", "bob"):
        for dom in epum.msg_list_domains(caller):
            out["domains"][(caller, dom)] = epum.msg_describe_domain(caller, dom)
    return copy.deepcopy(out)


@pytest.fixture
def s() -> Scenario:
    scenario = Scenario()
    scenario.add_domain("alice", "pool", 1)
    scenario.decide()
    return scenario


def node_id(s: Scenario) -> str:
    return s.instances("alice", "pool")[0]["instance_id"]


def refused(s: Scenario, words: str, call, *args) -> None:
    """``call(*args)`` is refused with a short BadRequestError naming ``words``, and
    the store is as it was."""
    before = snapshot(s)
    with pytest.raises(BadRequestError, match=words) as caught:
        call(*args)
    assert len(str(caught.value)) < 400
    assert snapshot(s) == before


def test_oversized_names_are_refused_before_anything_is_stored(s):
    e = s.epum
    refused(s, "limits.max_name_length", e.msg_instance_info, "p", {"node_id": BIG})
    refused(s, "limits.max_name_length", e.msg_heartbeat, "agent", {"node_id": BIG, "state": "OK"})
    refused(s, "limits.max_name_length", e.msg_add_domain, "alice", BIG, "simple", {})
    refused(
        s,
        "limits.max_name_length",
        e.msg_add_domain,
        "alice",
        "new",
        "simple",
        {"engine_conf": {"preserve_n": 0}},
        BIG,
        "op",
    )
    assert e.msg_list_domains("alice") == ["pool"]  # no half-created domain
    refused(s, "limits.max_name_length", e.msg_add_domain_definition, BIG, {})


def test_wrong_typed_record_fields_are_refused(s):
    e, nid = s.epum, node_id(s)
    for fields, words in (
        ({"extravars": "zzz"}, "extravars must be a mapping"),
        ({"site": ["a"]}, "site must be a string"),
        ({"hostname": BIG}, "limits.max_string_length"),
        ({"error_time": float("nan")}, "finite"),
        ({"update_counter": 1.5}, "update_counter"),
    ):
        content = {"node_id": nid, "state": "600-RUNNING", **fields}
        refused(s, words, e.msg_instance_info, "provisioner", content)


def test_a_record_is_bounded_as_a_whole():
    s = Scenario({"limits": {"max_record_bytes": 2000}})
    s.add_domain("alice", "pool", 1)
    s.decide()
    content = {"node_id": node_id(s), "state": "600-RUNNING", "errors": ["e" * 900] * 2}
    refused(s, "limits.max_record_bytes", s.epum.msg_instance_info, "p", content)


def test_bad_heartbeats_are_refused():
    s = Scenario()
    s.add_domain("alice", "pool", 1, health={"monitor_health": True})
    s.decide()
    nid, e = node_id(s), s.epum
    refused(
        s,
        "list of mappings",
        e.msg_heartbeat,
        "a",
        {"node_id": nid, "state": "OK", "failed_processes": [1, 2]},
    )
    refused(s, "finite", e.msg_heartbeat, "a", {"node_id": nid, "state": "OK"}, float("nan"))
    refused(
        s,
        "error_time",
        e.msg_heartbeat,
        "a",
        {"node_id": nid, "state": "PROCESS_ERROR", "error_time": float("inf")},
    )


def test_configs_and_definitions_are_checked_whole(s):
    e = s.epum
    refused(
        s, "finite", e.msg_reconfigure_domain, "alice", "pool", {"health": {"boot_timeout": 1e999}}
    )
    refused(
        s,
        "finite",
        e.msg_add_domain_definition,
        "d2",
        {"engine_conf": {"preserve_n": float("nan")}},
    )
    refused(
        s,
        "provisioner_vars must be a mapping",
        e.msg_reconfigure_domain,
        "alice",
        "pool",
        {"engine_conf": {"provisioner_vars": "x"}},
    )
    refused(
        s,
        "limits.max_instances_per_domain",
        e.msg_reconfigure_domain,
        "alice",
        "pool",
        {"engine_conf": {"preserve_n": 1_000_000_000}},
    )
    refused(
        s,
        "limits.max_config_bytes",
        e.msg_add_domain_definition,
        "d3",
        {"engine_conf": {f"k{i}": "v" * 10_000 for i in range(20)}},
    )


def test_reconfigure_never_changes_the_engine_class(s):
    for value in (None, "needy", ""):
        refused(
            s,
            "engine_class cannot be changed",
            s.epum.msg_reconfigure_domain,
            "alice",
            "pool",
            {"general": {"engine_class": value}},
        )


def test_domains_per_caller_and_definitions_are_counted():
    s = Scenario({"limits": {"max_domains_per_caller": 2, "max_definitions": 1}})
    s.add_domain("alice", "a", 0)
    s.add_domain("alice", "b", 0)
    refused(s, "limits.max_domains_per_caller", s.add_domain, "alice", "c", 0)
    s.add_domain("bob", "c", 0)  # another caller has a count of its own
    refused(s, "limits.max_definitions", s.epum.msg_add_domain_definition, "other", {})


def test_a_large_domain_is_grown_in_bounded_steps_and_does_not_starve_others():
    s = Scenario({"limits": {"max_launches_per_pass": 50}})
    s.add_domain("alice", "big", 120)
    s.add_domain("bob", "small", 2)
    s.decide()
    assert (len(s.live("alice", "big")), len(s.live("bob", "small"))) == (50, 2)
    s.clock.advance(1)
    s.decide()
    assert len(s.live("alice", "big")) == 100
    s.clock.advance(1)
    s.decide()
    assert len(s.live("alice", "big")) == 120


def test_all_domains_share_a_launch_rate_refilled_by_decision_time():
    s = Scenario({"limits": {"max_launches_per_second": 10}})
    s.add_domain("alice", "one", 8)
    s.add_domain("bob", "two", 8)
    s.decide()
    assert len(s.live("alice", "one")) + len(s.live("bob", "two")) == 10
    s.decide()  # no time passed: nothing more
    assert len(s.live("alice", "one")) + len(s.live("bob", "two")) == 10
    s.clock.advance(1)
    s.decide()
    assert len(s.live("alice", "one")) + len(s.live("bob", "two")) == 16


def test_the_budget_refills_at_most_one_seconds_worth():
    budget = LaunchBudget(4)
    budget.refill(100.0)
    assert [budget.take() for _ in range(5)] == [True] * 4 + [False]
    budget.refill(100.5)
    assert [budget.take() for _ in range(3)] == [True, True, False]
    budget.refill(200.0)
    assert sum(budget.take() for _ in range(10)) == 4


def test_a_removal_stops_pending_launches_at_once():
    store = MemoryEPUMStore()
    store.initialize()
    domain = store.add_domain("alice", "pool", {"general": {}, "engine_conf": {}, "health": {}})
    provisioner = FakeProvisioner()
    control = DomainControl(domain, provisioner, "epum")
    original = domain.add_instance
    written = []

    def add_then_remove(record: Instance, term=None) -> Instance:
        written.append(record)
        if len(written) == 3:
            domain.mark_removed()  # an operator's remove_domain lands mid-launch
        return original(record, term=term)

    domain.add_instance = add_then_remove
    _, ids = control.launch("dt", "site", "small", count=10)
    assert len(ids) == 3
    with pytest.raises(LaunchDeferred, match="being removed"):
        control.launch("dt", "site", "small")
    assert len(provisioner.provisioned) == 3


def test_a_corrupt_stored_domain_is_left_alone_and_described_with_the_reason(s, caplog):
    domain = s.epum.store.get_domain("alice", "pool")
    record = domain.get_instances()[0]
    domain.update_instance(record.replace(extravars="zzz", error_time=float("nan")))
    s.add_domain("bob", "other", 1)
    before = list(s.provisioner.provisioned), list(s.provisioner.terminated)
    with caplog.at_level(logging.ERROR, logger="epum.decider"):
        s.decide()
        s.decide()
    corrupt = [r for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(corrupt) == 1  # logged once, with the reason
    assert "extravars must be a mapping" in corrupt[0].getMessage()
    assert s.provisioner.terminated == before[1]  # the corrupt domain's instances untouched
    assert len(s.provisioner.provisioned) == len(before[0]) + 1  # the other domain goes on
    described = s.epum.msg_describe_domain("alice", "pool")
    assert "extravars must be a mapping" in described["corrupt"]
    assert envelope.reply_ok(described)  # describable, NaN and all
    assert "corrupt" not in s.epum.msg_describe_domain("bob", "other")


def test_a_corrupt_config_is_decided_again_once_reconfigured_and_can_be_removed(s):
    domain = s.epum.store.get_domain("alice", "pool")
    domain.update_config({"engine_conf": {"provisioner_vars": "x"}})
    s.decide()
    assert "provisioner_vars" in s.epum.msg_describe_domain("alice", "pool")["corrupt"]
    s.epum.msg_reconfigure_domain("alice", "pool", {"engine_conf": {"provisioner_vars": {}}})
    assert "corrupt" not in s.epum.msg_describe_domain("alice", "pool")
    domain.update_config({"engine_conf": {"provisioner_vars": "x"}})
    s.epum.msg_remove_domain("alice", "pool")
    s.decide()
    assert len(s.provisioner.terminated) == 1  # a corrupt domain is still removed
