"""SensorEngine: threshold scaling, cooldown, bounds, retirables, uniques."""

from __future__ import annotations

import pytest

from epum.engines.sensor import SensorEngine
from epum.errors import BadRequestError
from epum.states import DecisionEngineState as DE
from epum.states import InstanceHealthState as H
from epum.states import InstanceState as S
from tests.unit.engine_fakes import FakeControl

BASE = {
    "minimum_vms": 1,
    "maximum_vms": 5,
    "metric": "load",
    "sample_function": "Average",
    "cooldown_period": 60,
    "scale_up_threshold": 0.8,
    "scale_up_n_vms": 2,
    "scale_down_threshold": 0.2,
    "scale_down_n_vms": 1,
    "deployable_type": "dt",
    "iaas_site": "site-a",
}


def start(conf=None, control=None, now=1000.0):
    control = control or FakeControl(now=now)
    engine = SensorEngine()
    engine.initialize(control, control.state(now=now), {**BASE, **(conf or {})})
    return engine, control


def readings(control, value):
    """Give every live instance the same one-sample reading of ``load``."""
    for iid in control.live_ids():
        control.set(iid, sensor_data={"load": {"Series": [value]}})


def test_starts_at_minimum_without_readings():
    engine, control = start()
    engine.decide(control, control.state())
    assert len(control.launched) == 1
    assert control.launches[0].site == "site-a"
    control.run_all()
    engine.decide(control, control.state())
    assert len(control.launched) == 1 and engine.de_state == DE.STABLE


def test_initial_size_is_live_count_within_bounds():
    control = FakeControl()
    for n in range(7):
        control.add(f"i{n}", state_time=n)
    engine, _ = start(control=control)
    assert engine.wanted == 5
    engine.decide(control, control.state())
    assert sorted(control.destroyed) == ["i5", "i6"]


def test_scale_up_then_cooldown_then_up_to_maximum():
    engine, control = start()
    engine.decide(control, control.state(now=1000))
    control.run_all()
    readings(control, 0.9)
    engine.decide(control, control.state(now=1001))
    assert len(control.launched) == 3
    assert engine.last_scale_time == 1001
    control.run_all()
    readings(control, 0.95)
    engine.decide(control, control.state(now=1060))
    assert len(control.launched) == 3, "still cooling down"
    engine.decide(control, control.state(now=1061))
    assert len(control.launched) == 5, "capped at maximum_vms"
    control.run_all()
    readings(control, 0.99)
    engine.decide(control, control.state(now=2000))
    assert len(control.launched) == 5
    assert engine.wanted == 5
    assert engine.last_scale_time == 1061, "a step capped to nothing is no step"


def test_scale_down_retirable_first_and_not_below_minimum():
    control = FakeControl()
    for n in range(3):
        control.add(f"i{n}", state_time=n)
    engine, _ = start({"retirable_nodes": ["i0"], "cooldown_period": 0}, control)
    readings(control, 0.1)
    engine.decide(control, control.state(now=1000))
    assert control.destroyed == ["i0"]
    engine.decide(control, control.state(now=1001))
    assert control.destroyed == ["i0", "i2"]
    engine.decide(control, control.state(now=1002))
    assert control.destroyed == ["i0", "i2"], "minimum_vms holds"
    assert control.live_ids() == {"i1"}


def test_between_thresholds_nothing_scales():
    control = FakeControl()
    control.add("a")
    control.add("b")
    engine, _ = start(control=control)
    readings(control, 0.5)
    engine.decide(control, control.state())
    assert control.launches == [] and control.destroy_calls == []
    assert engine.de_state == DE.STABLE


def test_metric_is_averaged_over_valid_instances_only():
    control = FakeControl()
    control.add("hot", sensor_data={"load": [1.0, 0.8]})  # Average 0.9
    control.add("cool", sensor_data={"load": 0.8})
    control.add("silent")  # no reading: skipped
    control.add("booting", S.PENDING, sensor_data={"load": 0.0})  # not running: skipped
    engine, _ = start(control=control)
    state = control.state()
    assert engine.metric_value(state, list(state.instances.values())) == pytest.approx(0.85)
    engine.decide(control, state)
    assert len(control.launched) == 1  # from 4 to 5 (maximum), the step of 2 capped


@pytest.mark.parametrize(("func", "expected"), [("Sum", 6.0), ("Max", 3.0), ("min", 1.0)])
def test_sample_functions(func, expected):
    control = FakeControl()
    control.add("a", sensor_data={"load": [1, 2, 3]})
    engine, _ = start({"sample_function": func, "scale_up_threshold": 100}, control)
    state = control.state()
    assert engine.metric_value(state, list(state.instances.values())) == expected


def test_domain_reading_wins_and_config_readings_override_records():
    control = FakeControl()
    control.add("a", sensor_data={"load": 0.1})
    engine, _ = start({"sensor_data": {"a": {"load": [0.9]}}}, control)
    state = control.state()
    live = list(state.instances.values())
    assert engine.metric_value(state, live) == pytest.approx(0.9)
    state = control.state(sensor_data={"load": {"Series": [0.3, 0.5]}})
    assert engine.metric_value(state, live) == pytest.approx(0.4)


def test_unhealthy_replaced_and_its_reading_ignored():
    control = FakeControl()
    control.add("a", sensor_data={"load": 0.5})
    control.add("sick", health=H.MISSING, sensor_data={"load": 5.0})
    engine, _ = start(control=control)
    engine.decide(control, control.state())
    assert control.destroyed == ["sick"]
    assert len(control.launched) == 1, "replacement only: the sick reading did not scale up"
    assert engine.last_scale_time is None


def test_uniques_shared_with_needy():
    engine, control = start({"minimum_vms": 2, "unique_key": "port", "unique_values": "80,81"})
    engine.decide(control, control.state())
    assert [c.extravars for c in control.launches] == [{"port": "80"}, {"port": "81"}]


def test_reconfigure_brings_wanted_within_new_bounds():
    control = FakeControl()
    for n in range(4):
        control.add(f"i{n}", state_time=n)
    engine, _ = start(control=control)
    engine.reconfigure(control, {**BASE, "maximum_vms": 2})
    assert engine.wanted == 2
    engine.decide(control, control.state())
    assert sorted(control.destroyed) == ["i2", "i3"]


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"minimum_vms": None}, "minimum_vms is required"),
        ({"minimum_vms": -1}, "minimum_vms must be >= 0"),
        ({"maximum_vms": "five"}, "maximum_vms must be an integer"),
        ({"minimum_vms": 4, "maximum_vms": 3}, "maximum_vms"),
        ({"metric": None}, "metric is required"),
        ({"metric": 3}, "metric must be"),
        ({"sample_function": "Median"}, "sample_function"),
        ({"cooldown_period": -1}, "cooldown_period"),
        ({"cooldown_period": "1m"}, "cooldown_period"),
        ({"scale_up_threshold": None}, "scale_up_threshold is required"),
        ({"scale_down_threshold": "x"}, "scale_down_threshold must be a number"),
        ({"scale_down_threshold": 0.9}, "scale_down_threshold .* above scale_up_threshold"),
        ({"scale_up_n_vms": 0}, "scale_up_n_vms must be >= 1"),
        ({"scale_down_n_vms": 0}, "scale_down_n_vms must be >= 1"),
        ({"deployable_type": ""}, "deployable_type"),
        ({"retirable_nodes": 1}, "retirable_nodes"),
        ({"unique_key": "k"}, "unique_values"),
        ({"sensor_type": "cloudwatch"}, "sensor_type"),
        ({"sensor_data": {"a": {"load": "high"}}}, "sensor_data"),
        ({"domain_sensor_data": []}, "domain_sensor_data"),
    ],
)
def test_validate_config_rejects(conf, message):
    with pytest.raises(BadRequestError, match=message):
        SensorEngine.validate_config({**BASE, **conf})


def test_equal_thresholds_are_valid_and_scale_both_ways():
    # The original engine took them (no dead band): strictly above scales up,
    # strictly below scales down.
    control = FakeControl()
    control.add("a")
    control.add("b")
    engine, _ = start({"scale_up_threshold": 0.5, "scale_down_threshold": 0.5}, control)
    readings(control, 0.5)
    engine.decide(control, control.state(now=1000))
    assert control.launches == [] and control.destroy_calls == []
    readings(control, 0.4)
    engine.decide(control, control.state(now=2000))
    assert engine.wanted == 1


def test_doc_names_every_key():
    doc = SensorEngine.get_config_doc()
    for key in (*BASE, "retirable_nodes", "unique_key", "unique_values", "sensor_type"):
        assert key in doc
    assert "sensor_data" in doc and "domain_sensor_data" in doc
