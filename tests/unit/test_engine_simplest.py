"""SimplestEngine: keep exactly preserve_n live instances."""

from __future__ import annotations

import logging

import pytest

from epum.engines.simplest import SimplestEngine
from epum.errors import BadRequestError
from epum.states import DecisionEngineState as DE
from epum.states import InstanceHealthState as H
from epum.states import InstanceState as S
from tests.unit.engine_fakes import FakeControl

CONF = {
    "preserve_n": 3,
    "epuworker_type": "worker",
    "force_site": "ec2",
    "epuworker_allocation": "m1",
}


def start(conf=CONF, control=None):
    control = control or FakeControl()
    engine = SimplestEngine()
    engine.initialize(control, control.state(), dict(conf))
    return engine, control


def test_grows_to_preserve_n_in_one_launch_with_the_configured_target():
    engine, control = start()
    engine.decide(control, control.state())
    assert len(control.launches) == 1
    call = control.launches[0]
    assert (call.count, call.deployable_type, call.site, call.allocation) == (
        3,
        "worker",
        "ec2",
        "m1",
    )
    assert engine.de_state == DE.PENDING


def test_pending_instances_count_so_nothing_is_launched_twice():
    engine, control = start()
    engine.decide(control, control.state())
    engine.decide(control, control.state())
    assert len(control.launched) == 3
    control.run_all()
    engine.decide(control, control.state())
    assert len(control.launched) == 3
    assert engine.de_state == DE.STABLE


def test_shrink_destroys_newest_pending_first_then_newest_running():
    control = FakeControl()
    control.add("run-old", S.RUNNING, state_time=1)
    control.add("run-new", S.RUNNING, state_time=5)
    control.add("pend", S.PENDING, state_time=3)
    engine, _ = start({"preserve_n": 1}, control)
    engine.decide(control, control.state())
    assert control.destroyed == ["pend", "run-new"]
    assert control.launches == []
    engine.decide(control, control.state())
    assert control.destroyed == ["pend", "run-new"]
    assert engine.de_state == DE.STABLE


@pytest.mark.parametrize(
    "change",
    [
        {"state": S.RUNNING_FAILED},
        {"health": H.MISSING},
        {"health": H.PROCESS_ERROR},
    ],
)
def test_unhealthy_instance_is_destroyed_and_replaced(change):
    control = FakeControl()
    control.add("a")
    control.add("b")
    engine, _ = start({"preserve_n": 2}, control)
    control.set("b", **change)
    engine.decide(control, control.state())
    assert control.destroyed == ["b"]
    assert len(control.launched) == 1
    engine.decide(control, control.state())
    assert control.destroyed == ["b"] and len(control.launched) == 1


def test_failed_instance_is_replaced():
    engine, control = start({"preserve_n": 2})
    engine.decide(control, control.state())
    first, _ = control.launched
    control.set(first, S.FAILED)
    engine.decide(control, control.state())
    assert len(control.launched) == 3
    assert control.destroyed == []


def test_destroyed_but_still_running_records_are_not_destroyed_again():
    control = FakeControl(mark_destroyed=False)
    for name in "abc":
        control.add(name)
    engine, _ = start({"preserve_n": 1}, control)
    engine.decide(control, control.state())
    engine.decide(control, control.state())
    assert len(control.destroyed) == 2
    assert control.launches == []


def test_launches_that_keep_failing_make_it_deviating():
    engine, control = start({"preserve_n": 1})
    for n in range(3):
        engine.decide(control, control.state(now=1000 + n))
        control.set(control.launched[-1], S.FAILED)
    engine.decide(control, control.state(now=1010))
    assert len(control.launched) == 4
    assert engine.de_state == DE.DEVIATING
    control.set(control.launched[-1], S.RUNNING)
    engine.decide(control, control.state(now=1011))
    assert engine.de_state == DE.STABLE


def test_reconfigure_changes_size():
    engine, control = start({"preserve_n": 1})
    engine.decide(control, control.state())
    engine.reconfigure(control, {"preserve_n": 4})
    engine.decide(control, control.state())
    assert len(control.launched) == 4
    with pytest.raises(BadRequestError, match="preserve_n"):
        engine.reconfigure(control, {"preserve_n": -1})


@pytest.mark.parametrize(
    ("conf", "key"),
    [
        ({}, "preserve_n is required"),
        ({"preserve_n": -1}, "preserve_n must be >= 0"),
        ({"preserve_n": "two"}, "preserve_n must be an integer"),
        ({"preserve_n": 1, "epuworker_type": 5}, "epuworker_type"),
        ({"preserve_n": 1, "force_site": ""}, "force_site"),
        ({"preserve_n": 1, "epuworker_allocation": []}, "epuworker_allocation"),
        ([], "engine conf must be a mapping"),
    ],
)
def test_validate_config_rejects(conf, key):
    with pytest.raises(BadRequestError, match=key):
        SimplestEngine.validate_config(conf)


def test_validate_config_accepts_extra_keys_and_doc_names_keys():
    SimplestEngine.validate_config({"preserve_n": 0, "provisioner_vars": {"a": 1}})
    doc = SimplestEngine.get_config_doc()
    for key in ("preserve_n", "epuworker_type", "force_site", "epuworker_allocation"):
        assert key in doc


def test_decisions_are_logged_through_the_engine_log(caplog):
    engine = SimplestEngine()
    engine.log = logging.LoggerAdapter(logging.getLogger("epum.test"), {"domain": "d1"})
    control = FakeControl()
    control.add("a")
    control.add("b")
    engine.initialize(control, control.state(), {"preserve_n": 1})
    with caplog.at_level(logging.INFO, logger="epum.test"):
        engine.decide(control, control.state())
    assert [r.domain for r in caplog.records] == ["d1"]
    assert "asking to destroy b" in caplog.records[0].getMessage()
