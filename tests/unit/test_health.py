"""HealthMonitor rules at their boundaries, and the heartbeat write slack."""

from __future__ import annotations

import pytest

from epum.errors import BadRequestError
from epum.health import (
    HEARTBEAT_WRITE_FRACTION,
    HealthConfig,
    HealthMonitor,
    Verdict,
    heartbeat_write_due,
)
from epum.instances import Instance
from epum.states import InstanceHealthState as H
from epum.states import InstanceState as S

T0 = 10_000.0
CONF = HealthConfig(
    monitor_health=True,
    boot_timeout=300.0,
    missing_timeout=120.0,
    really_missing_timeout=15.0,
    zombie_seconds=120.0,
)
WINDOW = 150.0  # missing_timeout * (1 + HEARTBEAT_WRITE_FRACTION)
EPS = 0.001


def inst(
    state: str = S.RUNNING,
    state_time: float = T0,
    health: str = H.UNKNOWN,
    last_heard: float | None = None,
    agent_address: str | None = "agent-i1",
    instance_id: str = "i1",
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
        agent_address=agent_address,
    )


def monitor(started_at: float = T0 - 1000.0, **kwargs) -> HealthMonitor:
    return HealthMonitor(CONF, started_at=started_at, **kwargs)


def healths(verdicts: list[Verdict]) -> dict[str, str | None]:
    return {v.instance_id: v.health for v in verdicts}


# heartbeat_write_due ---------------------------------------------------------


def test_write_fraction_is_a_quarter():
    assert HEARTBEAT_WRITE_FRACTION == 0.25
    assert CONF.missing_window == WINDOW


def test_heartbeat_write_due_when_nothing_stored():
    assert heartbeat_write_due(None, T0, 120.0)


def test_heartbeat_write_due_only_past_the_fraction():
    assert not heartbeat_write_due(T0, T0, 120.0)
    assert not heartbeat_write_due(T0, T0 + 30.0, 120.0)
    assert heartbeat_write_due(T0, T0 + 30.0 + EPS, 120.0)


def test_heartbeat_write_due_not_for_an_older_heartbeat():
    assert not heartbeat_write_due(T0, T0 - 100.0, 120.0)


def test_write_slack_never_makes_a_recent_heartbeat_missing():
    # The agent heartbeats every second; the reactor writes only when due.
    mon = monitor()
    stored = T0
    for second in range(1, 600):
        now = T0 + second
        if heartbeat_write_due(stored, now, CONF.missing_timeout):
            stored = now
        # Silent from now on: within missing_timeout it is never out of contact.
        for quiet in (0.0, CONF.missing_timeout):
            record = inst(health=H.OK, last_heard=stored)
            assert mon.check(record, now + quiet) is None


# config ----------------------------------------------------------------------


def test_config_defaults():
    conf = HealthConfig.from_section({})
    assert conf == HealthConfig(False, 300.0, 120.0, 15.0, 120.0)
    assert HealthConfig.from_section(None) == conf


def test_config_reads_the_section():
    conf = HealthConfig.from_section({"monitor_health": True, "missing_timeout": 10, "x": 1})
    assert conf.monitor_health is True
    assert conf.missing_timeout == 10.0
    assert conf.missing_window == 12.5


@pytest.mark.parametrize(
    "section",
    [
        {"monitor_health": "maybe"},
        {"boot_timeout": "five"},
        {"zombie_seconds": -1},
        {"boot_timeout": True},
        {"missing_timeout": float("nan")},
    ],
)
def test_config_rejects_bad_values(section):
    with pytest.raises(BadRequestError, match=r"health\."):
        HealthConfig.from_section(section)


# boot ------------------------------------------------------------------------


def test_boot_timeout_boundary_from_state_time():
    mon = monitor()
    record = inst()
    assert mon.update(T0 + 300.0, [record]) == []
    (verdict,) = mon.update(T0 + 300.0 + EPS, [record])
    assert verdict.health == H.OUT_OF_CONTACT
    assert verdict.ask_agent == "agent-i1"
    assert "boot_timeout" in verdict.reason


def test_boot_rule_applies_to_running_failed_too():
    mon = monitor()
    assert healths(mon.update(T0 + 301.0, [inst(state=S.RUNNING_FAILED)])) == {
        "i1": H.OUT_OF_CONTACT
    }


def test_monitor_started_after_running_measures_from_its_own_start():
    started = T0 + 1000.0  # the instance has been RUNNING for 1000s already
    mon = monitor(started_at=started)
    record = inst()
    assert mon.update(started, [record]) == []
    assert mon.update(started + 300.0, [record]) == []
    assert healths(mon.update(started + 300.0 + EPS, [record])) == {"i1": H.OUT_OF_CONTACT}


def test_boot_clock_keeps_the_first_sighting_when_state_time_moves():
    mon = monitor()
    assert mon.update(T0 + 200.0, [inst()]) == []
    # A later same-state update moved state_time: the instance is still as late.
    moved = inst(state_time=T0 + 250.0)
    assert healths(mon.update(T0 + 300.0 + EPS, [moved])) == {"i1": H.OUT_OF_CONTACT}


def test_boot_clock_restarts_after_the_instance_leaves_running():
    mon = monitor()
    assert mon.update(T0 + 10.0, [inst()]) == []
    assert mon.update(T0 + 20.0, [inst(state=S.TERMINATING, state_time=T0 + 20.0)]) == []
    assert mon.update(T0 + 30.0, []) == []  # record gone: forgotten
    again = inst(state_time=T0 + 500.0)
    assert mon.update(T0 + 800.0, [again]) == []
    assert healths(mon.update(T0 + 800.0 + EPS, [again])) == {"i1": H.OUT_OF_CONTACT}


@pytest.mark.parametrize("state", [S.REQUESTING, S.REQUESTED, S.PENDING, S.STARTED])
def test_instances_before_running_are_not_judged(state):
    mon = monitor()
    assert mon.update(T0 + 10_000.0, [inst(state=state)]) == []


# missing ---------------------------------------------------------------------


def test_missing_boundary_includes_the_write_slack():
    mon = monitor()
    record = inst(health=H.OK, last_heard=T0 + 50.0)
    assert mon.update(T0 + 50.0 + 120.0 + EPS, [record]) == []  # past missing_timeout only
    assert mon.update(T0 + 50.0 + WINDOW, [record]) == []
    (verdict,) = mon.update(T0 + 50.0 + WINDOW + EPS, [record])
    assert verdict.health == H.OUT_OF_CONTACT
    assert verdict.ask_agent == "agent-i1"
    assert "missing_timeout" in verdict.reason


def test_missing_rule_judges_process_error_instances_too():
    mon = monitor()
    record = inst(health=H.PROCESS_ERROR, last_heard=T0)
    assert healths(mon.update(T0 + WINDOW + EPS, [record])) == {"i1": H.OUT_OF_CONTACT}


def test_lost_contact_without_agent_address_is_missing_at_once():
    mon = monitor()
    record = inst(health=H.OK, last_heard=T0, agent_address=None)
    (verdict,) = mon.update(T0 + WINDOW + EPS, [record])
    assert verdict.health == H.MISSING
    assert verdict.ask_agent is None
    assert "no agent address" in verdict.reason


def test_lost_contact_without_agent_client_is_missing_at_once():
    mon = monitor(can_ask_agents=False)
    (verdict,) = mon.update(T0 + 301.0, [inst()])
    assert verdict.health == H.MISSING
    assert verdict.ask_agent is None
    assert "no agent client" in verdict.reason


# out of contact -> missing -----------------------------------------------------


def _out_of_contact(mon: HealthMonitor, at: float) -> Instance:
    """Drive a silent instance to OUT_OF_CONTACT at ``at`` (as the doctor would)."""
    record = inst(health=H.OK, last_heard=at - WINDOW - EPS)
    (verdict,) = mon.update(at, [record])
    assert verdict.health == H.OUT_OF_CONTACT
    return record.replace(health=H.OUT_OF_CONTACT)


def test_nothing_heard_within_really_missing_timeout_is_missing():
    mon = monitor()
    asked = T0 + 500.0
    record = _out_of_contact(mon, asked)
    assert mon.update(asked + 5.0, [record]) == []
    assert mon.update(asked + 15.0, [record]) == []
    (verdict,) = mon.update(asked + 15.0 + EPS, [record])
    assert verdict.health == H.MISSING
    assert verdict.ask_agent is None
    assert "really_missing_timeout" in verdict.reason


def test_heard_back_after_the_request_stays_ok():
    mon = monitor()
    asked = T0 + 500.0
    _out_of_contact(mon, asked)
    # The agent answers; the reactor writes its health and time.
    answered = inst(health=H.OK, last_heard=asked + 1.0)
    assert mon.update(asked + 16.0, [answered]) == []
    assert mon.update(asked + 1.0 + WINDOW, [answered]) == []


def test_heard_back_but_health_not_restored_is_not_missing():
    mon = monitor()
    asked = T0 + 500.0
    record = _out_of_contact(mon, asked)
    answered = record.replace(last_heard=asked)  # a heartbeat at the very moment of asking
    assert mon.update(asked + 100.0, [answered]) == []
    # ...and once silent again past the window, its agent is asked again.
    again = asked + WINDOW + EPS
    (verdict,) = mon.update(again, [answered])
    assert verdict.health is None
    assert verdict.ask_agent == "agent-i1"
    assert mon.update(again + 15.0, [answered]) == []
    assert healths(mon.update(again + 15.0 + EPS, [answered])) == {"i1": H.MISSING}


def test_out_of_contact_found_by_a_new_monitor_is_asked_again():
    record = inst(health=H.OUT_OF_CONTACT, last_heard=T0)
    mon = monitor(started_at=T0 + 1000.0)
    (verdict,) = mon.update(T0 + 1000.0, [record])
    assert verdict.health is None
    assert verdict.ask_agent == "agent-i1"
    assert mon.update(T0 + 1015.0, [record]) == []
    assert healths(mon.update(T0 + 1015.0 + EPS, [record])) == {"i1": H.MISSING}


def test_out_of_contact_found_without_agent_address_is_missing():
    record = inst(health=H.OUT_OF_CONTACT, last_heard=T0, agent_address=None)
    assert healths(monitor().update(T0 + 200.0, [record])) == {"i1": H.MISSING}


def test_a_request_not_acted_on_is_forgotten():
    # The doctor did not write OUT_OF_CONTACT (the record moved on): a later
    # loss of contact starts a new request and a new wait.
    mon = monitor()
    first = T0 + 500.0
    _out_of_contact(mon, first)
    later = first + 1000.0
    record = _out_of_contact(mon, later)
    assert mon.update(later + 15.0, [record]) == []
    assert healths(mon.update(later + 15.0 + EPS, [record])) == {"i1": H.MISSING}


def test_missing_is_final_for_the_monitor():
    mon = monitor()
    record = inst(health=H.MISSING, last_heard=T0)
    assert mon.update(T0 + 100_000.0, [record]) == []


# zombie ----------------------------------------------------------------------


@pytest.mark.parametrize("state", [S.TERMINATING, S.TERMINATED, S.FAILED, S.REJECTED])
def test_zombie_boundary(state):
    # judged soon after the late heartbeat (changed on purpose, issue 8: a zombie
    # silent for zombie_seconds is UNKNOWN again, so judging at T0 + 5000 finds none)
    mon = monitor()
    at_limit = inst(state=state, last_heard=T0 + 120.0)
    assert mon.update(T0 + 200.0, [at_limit]) == []
    (verdict,) = mon.update(T0 + 200.0, [at_limit.replace(last_heard=T0 + 120.0 + EPS)])
    assert verdict.health == H.ZOMBIE
    assert verdict.ask_agent is None
    assert "zombie_seconds" in verdict.reason


def test_terminated_never_heard_or_quiet_is_no_zombie():
    mon = monitor()
    assert mon.update(T0 + 5000.0, [inst(state=S.TERMINATED)]) == []
    assert mon.update(T0 + 5000.0, [inst(state=S.TERMINATED, last_heard=T0 - 500.0)]) == []


def test_zombie_stays_zombie_while_heard_and_goes_unknown_once_silent():
    # changed on purpose (issue 8): ZOMBIE used to stay until reaped
    mon = monitor()
    record = inst(state=S.TERMINATED, health=H.ZOMBIE, last_heard=T0 + 500.0)
    assert mon.update(T0 + 500.0 + 120.0, [record]) == []
    (verdict,) = mon.update(T0 + 500.0 + 120.0 + EPS, [record])
    assert verdict.health == H.UNKNOWN and verdict.ask_agent is None
    assert "zombie_seconds" in verdict.reason
    # UNKNOWN again: silent, so no zombie; a new late heartbeat makes it one again
    unknown = record.replace(health=H.UNKNOWN)
    assert mon.update(T0 + 5000.0, [unknown]) == []
    (again,) = mon.update(T0 + 5000.0, [unknown.replace(last_heard=T0 + 4990.0)])
    assert again.health == H.ZOMBIE


def test_terminating_instances_are_never_out_of_contact():
    mon = monitor()
    record = inst(state=S.TERMINATING, health=H.UNKNOWN, last_heard=None)
    assert mon.update(T0 + 100_000.0, [record]) == []


# many instances ----------------------------------------------------------------


def test_update_returns_only_changes_for_many_instances():
    mon = monitor()
    now = T0 + 1000.0
    records = [
        inst(instance_id="ok", health=H.OK, last_heard=now - 10.0),
        inst(instance_id="silent", health=H.OK, last_heard=now - 200.0),
        inst(instance_id="unbooted", state_time=now - 400.0),
        inst(instance_id="booting", state_time=now - 100.0),
        inst(instance_id="zombie", state=S.TERMINATED, state_time=now - 500.0, last_heard=now),
        inst(instance_id="pending", state=S.PENDING),
    ]
    assert healths(mon.update(now, records)) == {
        "silent": H.OUT_OF_CONTACT,
        "unbooted": H.OUT_OF_CONTACT,
        "zombie": H.ZOMBIE,
    }
