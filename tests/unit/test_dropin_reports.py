"""Reports as the original handled them (issue 8): subscribers told of every change of
state or address at or past RUNNING, and a heartbeat without a sender."""

from __future__ import annotations

import pytest

from epum.states import InstanceHealthState, InstanceState
from tests.unit.scenario import Scenario

S = InstanceState


@pytest.fixture
def sc():
    scenario = Scenario()
    yield scenario
    scenario.epum.shutdown()


def _one_node(sc: Scenario, **health) -> str:
    sc.add_domain("alice", "dom", 1, **({"health": health} if health else {}))
    sc.epum.msg_subscribe_domain("alice", "dom", "watcher", "op")
    sc.decide()
    (node,) = sc.provisioner.provisioned_ids()
    return node


def _told(sc: Scenario) -> list[tuple[str, str | None]]:
    return [(n[2]["state"], n[2]["properties"]["hostname"]) for n in sc.notifier.notifications]


def test_an_address_change_while_running_is_told_and_the_same_one_never_twice(sc):
    node = _one_node(sc)
    sc.cloud.report(node, S.STARTED)
    sc.cloud.report(node, S.RUNNING)  # no address yet
    sc.cloud.report(node, S.RUNNING, public_ip="10.0.0.1")
    sc.cloud.report(node, S.RUNNING, public_ip="10.0.0.1")  # nothing new
    sc.cloud.report(node, S.RUNNING, public_ip="10.0.0.2")
    assert _told(sc) == [(S.RUNNING, None), (S.RUNNING, "10.0.0.1"), (S.RUNNING, "10.0.0.2")]


def test_past_running_each_change_is_one_failed_notice(sc):
    node = _one_node(sc)
    sc.cloud.report(node, S.RUNNING, public_ip="10.0.0.1")
    sc.cloud.report(node, S.RUNNING_FAILED)
    sc.cloud.report(node, S.TERMINATING)  # still FAILED at the same address: silent
    sc.cloud.report(node, S.TERMINATED, public_ip=None)  # the address is gone: told
    sc.cloud.report(node, S.TERMINATED, public_ip=None)
    assert _told(sc) == [
        (S.RUNNING, "10.0.0.1"),
        (S.FAILED, "10.0.0.1"),
        (S.FAILED, None),
    ]


def test_updates_before_running_are_never_told(sc):
    node = _one_node(sc)
    sc.cloud.report(node, S.PENDING, public_ip="10.0.0.1")
    sc.cloud.report(node, S.STARTED, public_ip="10.0.0.2")
    assert _told(sc) == []


def test_the_provisioners_other_fields_are_kept_in_the_record(sc):
    node = _one_node(sc)
    sc.cloud.report(node, S.PENDING, iaas_image="ami-1", ctx_name="ctx", iaas_sshkeyname="k")
    sc.cloud.report(node, S.RUNNING, public_ip="10.0.0.1", ctx_name="ctx2", tags={"a": "b"})
    (record,) = sc.instances("alice", "dom")
    assert record["iaas_image"] == "ami-1"
    assert record["iaas_sshkeyname"] == "k"
    assert record["ctx_name"] == "ctx2"  # the newer report wins
    assert record["tags"] == {"a": "b"}
    assert record["public_ip"] == "10.0.0.1" and record["state"] == S.RUNNING
    assert "node_id" not in record and "extra_fields" not in record


def test_the_original_provisioners_state_changes_list_is_kept(sc, caplog):
    # every record of the original provisioner carries its [state, time] pairs
    node = _one_node(sc)
    changes = [[S.REQUESTED, 1000.5]]
    sc.cloud.report(node, S.REQUESTED, state_changes=changes, client_token="epum-x")
    changes = [*changes, [S.PENDING, 1001.25]]
    sc.cloud.report(node, S.PENDING, state_changes=changes, iaas_sshkeyname="k")
    (record,) = sc.instances("alice", "dom")
    assert record["state_changes"] == [[S.REQUESTED, 1000.5], [S.PENDING, 1001.25]]
    assert record["client_token"] == "epum-x" and record["iaas_sshkeyname"] == "k"
    assert "dropped" not in caplog.text


def test_extra_fields_beyond_the_bounds_are_dropped_not_stored(sc, caplog):
    node = _one_node(sc)
    sc.cloud.report(
        node,
        S.PENDING,
        big="x" * 2000,
        long_list=list(range(400)),
        **{"n" * 65: 1},
        extra_fields={"state": "forged"},
        kept=1,
        listed=[1, 2],
    )
    (record,) = sc.instances("alice", "dom")
    assert record["kept"] == 1 and record["listed"] == [1, 2]
    for dropped in ("big", "long_list", "n" * 65):
        assert dropped not in record
    assert record["state"] == S.PENDING
    assert "big" in caplog.text
    many = {f"f{i}": "y" * 900 for i in range(12)}  # 12 x ~900 bytes > 8 KiB in all
    sc.cloud.report(node, S.STARTED, **many)
    (record,) = sc.instances("alice", "dom")
    kept = [k for k in many if k in record]
    assert 0 < len(kept) < len(many)
    assert "full" in caplog.text


def test_a_heartbeat_without_a_sender_uses_the_node_id_as_the_agent_address(sc):
    node = _one_node(
        sc, monitor_health=True, missing_timeout=100, really_missing_timeout=10, boot_timeout=10
    )
    sc.cloud.report(node, S.RUNNING, public_ip="10.0.0.1")
    start = sc.clock.now
    sc.epum.msg_heartbeat(None, {"node_id": node, "state": "OK"}, timestamp=start)
    sc.epum._doctor_appt(timestamp=start + 1000)
    (record,) = sc.instances("alice", "dom")
    assert record["health"] == InstanceHealthState.OUT_OF_CONTACT
    assert record["agent_address"] == node
    assert sc.agents.dump_state_calls == [node]


def test_a_zombie_silent_for_zombie_seconds_goes_back_to_unknown(sc):
    node = _one_node(sc, monitor_health=True, zombie_seconds=60)
    sc.cloud.report(node, S.RUNNING, public_ip="10.0.0.1")
    sc.cloud.report(node, S.TERMINATED)

    def health() -> str:
        (record,) = [r for r in sc.instances("alice", "dom") if r["instance_id"] == node]
        return record["health"]

    late = sc.clock.advance(100)
    sc.epum.msg_heartbeat("agent", {"node_id": node, "state": "OK"}, timestamp=late)
    sc.epum._doctor_appt(timestamp=late + 1)
    assert health() == InstanceHealthState.ZOMBIE
    sc.epum._doctor_appt(timestamp=late + 60)
    assert health() == InstanceHealthState.ZOMBIE, "not silent for zombie_seconds yet"
    sc.epum._doctor_appt(timestamp=late + 61)
    assert health() == InstanceHealthState.UNKNOWN
