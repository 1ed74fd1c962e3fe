"""SensorEngine: the original's defaults, averaging, bounds, cooldown, uniques.

The behaviour these tests check was changed on purpose to match the original
sensor engine (issue 8): every key is optional, the size aimed for is the
counted instances plus the step, and instances without a reading count as 0.
"""

from __future__ import annotations

import pytest

from epum.engines.scaling import STATISTICS, statistic_name
from epum.engines.sensor import SensorEngine
from epum.errors import BadRequestError
from epum.states import DecisionEngineState as DE
from epum.states import InstanceHealthState as H
from tests.unit.engine_fakes import FakeControl

LAUNCH = {"deployable_type": "dt", "iaas_site": "site-a", "iaas_allocation": "small"}
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
    **LAUNCH,
}


def start(conf=None, control=None, now=1000.0, base=BASE):
    control = control or FakeControl(now=now)
    engine = SensorEngine()
    engine.initialize(control, control.state(now=now), {**base, **(conf or {})})
    return engine, control


def readings(control, value, statistic="Average"):
    """Give every live instance the original's shape of reading of ``load``."""
    for iid in control.live_ids():
        control.set(iid, sensor_data={"load": {"Series": [value], statistic: value}})


def size(control):
    return len(control.live_ids())


def test_only_bounds_keeps_the_minimum_and_never_scales():
    engine, control = start(base={"minimum_vms": 2, "maximum_vms": 4, **LAUNCH})
    for now in (1000, 2000, 3000):
        engine.decide(control, control.state(now=now))
        control.run_all()
        readings(control, 99.0)
    assert size(control) == 2 and engine.de_state == DE.STABLE


def test_missing_threshold_means_no_scaling_that_way():
    conf = {k: v for k, v in BASE.items() if k != "scale_up_threshold"}
    engine, control = start(base=conf)
    engine.decide(control, control.state())
    control.run_all()
    readings(control, 99.0)
    engine.decide(control, control.state(now=5000))
    assert size(control) == 1


def test_metric_without_sample_function_never_scales():
    conf = {k: v for k, v in BASE.items() if k != "sample_function"}
    engine, control = start(base=conf)
    engine.decide(control, control.state())
    control.run_all()
    readings(control, 99.0)
    engine.decide(control, control.state(now=5000))
    assert size(control) == 1


def test_scale_up_cooldown_then_maximum_then_down_to_minimum():
    engine, control = start()
    sizes = []
    for step, value in enumerate([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]):
        control.run_all()
        readings(control, value)
        engine.decide(control, control.state(now=1000 + 61 * step))
        sizes.append(size(control))
    # first pass: none counted, no reading -> the minimum; then +2 per step up to 5
    assert sizes == [1, 3, 5, 5, 5, 4, 3, 2, 1, 1, 1]


def test_cooldown_blocks_scaling_but_not_the_bounds():
    engine, control = start({"minimum_vms": 3})
    engine.decide(control, control.state(now=1000))
    control.run_all()
    readings(control, 1.0)
    engine.decide(control, control.state(now=1001))
    assert size(control) == 5
    control.run_all()
    readings(control, 0.0)
    engine.decide(control, control.state(now=1030))  # cooling down: no step
    assert size(control) == 5
    for victim in sorted(control.live_ids())[:3]:
        control.set(victim, health=H.MISSING)
    engine.decide(control, control.state(now=1040))  # but the minimum holds
    assert len(control.destroyed) == 3 and size(control) == 3


def test_a_failed_instance_is_replaced_only_to_the_minimum():
    # the original aimed for the counted instances plus the step: a lost
    # instance above the minimum is not replaced unless the metric asks
    engine, control = start({"minimum_vms": 1})
    for n in range(3):
        control.add(f"i{n}", state_time=n)
    readings(control, 0.5)
    control.set("i0", health=H.MISSING)
    engine.decide(control, control.state())
    assert control.destroyed == ["i0"] and size(control) == 2


def test_average_counts_instances_without_reading_as_zero():
    engine, control = start({"scale_up_threshold": 0.5, "cooldown_period": 0})
    control.add("a")
    control.add("b")
    control.set("a", sensor_data={"load": {"Average": 0.8}})
    engine.decide(control, control.state())
    # (0.8 + 0) / 2 = 0.4: not above 0.5
    assert size(control) == 2
    control.set("b", sensor_data={"load": {"Average": 0.4}})
    engine.decide(control, control.state(now=2000))
    assert size(control) == 4  # (0.8 + 0.4) / 2 = 0.6 > 0.5


@pytest.mark.parametrize(
    "name, expected",
    [("Average", 2.0), ("Maximum", 3.0), ("Minimum", 1.0), ("Sum", 6.0), ("SampleCount", 3.0)],
)
def test_statistics_from_series(name, expected):
    assert STATISTICS[statistic_name(name)]([1.0, 2.0, 3.0]) == expected


def test_statistic_computed_from_series_when_record_lacks_it():
    engine, control = start({"sample_function": "Maximum", "scale_up_threshold": 2.5})
    control.add("a", sensor_data={"load": {"Series": [1, 3]}})
    engine.decide(control, control.state())
    assert size(control) == 3


def test_negative_scale_down_n_vms_is_its_absolute_value():
    engine, control = start({"scale_down_n_vms": -2, "cooldown_period": 0})
    for n in range(4):
        control.add(f"i{n}", state_time=n)
    readings(control, 0.0)
    engine.decide(control, control.state())
    assert size(control) == 2


def test_maximum_below_minimum_keeps_the_minimum():
    engine, control = start({"minimum_vms": 3, "maximum_vms": 1})
    engine.decide(control, control.state())
    assert size(control) == 3


def test_uniques_keep_type_and_run_out_to_none():
    engine, control = start({"minimum_vms": 4, "unique_key": "slot", "unique_values": [1, 2, 3]})
    engine.decide(control, control.state())
    assert [c.extravars for c in control.launches] == [
        {"slot": 1},
        {"slot": 2},
        {"slot": 3},
        {"slot": None},
    ]


def test_replacement_gets_the_freed_value():
    engine, control = start({"minimum_vms": 2, "unique_key": "slot", "unique_values": [1, 2, 3]})
    engine.decide(control, control.state())
    first = control.launches[0].instance_ids[0]
    control.set(first, "900-FAILED")
    control.reset_calls()
    engine.decide(control, control.state())
    assert [c.extravars for c in control.launches] == [{"slot": 1}]


def test_strings_are_read_as_numbers():
    engine, control = start({"minimum_vms": "2", "scale_up_threshold": "0.9"})
    engine.decide(control, control.state())
    assert size(control) == 2


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"minimum_vms": -1}, "minimum_vms must be >= 0"),
        ({"maximum_vms": "five"}, "maximum_vms must be an integer"),
        ({"sample_function": "Median"}, "sample_function must be one of"),
        ({"scale_up_threshold": "high"}, "scale_up_threshold must be a number"),
        ({"scale_up_n_vms": -1}, "scale_up_n_vms must be >= 0"),
        ({"cooldown_period": -5}, "cooldown_period must be >= 0"),
        ({"deployable_type": None}, "deployable_type required to launch"),
        ({"iaas_site": None, "iaas_allocation": None}, "iaas_site, iaas_allocation required"),
        ({"unique_key": "k", "unique_values": {"a": 1}}, "unique_values"),
        ({"sensor_type": "no-such"}, "sensor_type"),
    ],
)
def test_validate_config_rejects(conf, message):
    with pytest.raises(BadRequestError, match=message):
        SensorEngine.validate_config({**BASE, **conf})


def test_nothing_to_launch_needs_no_launch_keys():
    SensorEngine.validate_config({})
    SensorEngine.validate_config({"minimum_vms": 0, "maximum_vms": 0, "metric": "x"})


def test_reconfigure_takes_new_bounds():
    engine, control = start()
    engine.decide(control, control.state())
    engine.reconfigure(control, {**BASE, "minimum_vms": 3})
    engine.decide(control, control.state())
    assert size(control) == 3


POLLED = {
    **BASE,
    "sensor_type": "prometheus",
    "prometheus_url": "http://prom.example:9090",
    "prometheus_instance_query": "load",
    "sample_period": 10,
    "cooldown_period": 0,
}


def polled_readings(control, value, taken_at):
    """Give every live instance a collector-stored reading of ``load`` taken at ``taken_at``."""
    for iid in control.live_ids():
        control.set(iid, sensor_data={"load": {"Series": [value], "time": taken_at}})


@pytest.mark.parametrize(
    ("policy", "expected"),
    [({}, 3), ({"sensor_error_policy": "fallback", "fallback_size": 2}, 2)],
)
def test_without_a_fresh_reading_hold_keeps_the_size_and_fallback_aims_for_its_size(
    policy, expected
):
    engine, control = start({"minimum_vms": 3, **policy}, base=POLLED, now=1000.0)
    engine.decide(control, control.state(now=1000.0))
    control.run_all()
    engine.reconfigure(control, {**POLLED, "minimum_vms": 1, **policy})
    polled_readings(control, 0.5, taken_at=1000.0)
    engine.decide(control, control.state(now=1005.0))
    control.run_all()
    assert size(control) == 3  # fresh and between the thresholds: no step
    # the readings are stale (older than 3 sample periods): no fresh reading
    engine.decide(control, control.state(now=1100.0))
    control.run_all()
    assert size(control) == expected


def test_fallback_stays_within_the_bounds():
    conf = {"sensor_error_policy": "fallback", "fallback_size": 9}
    engine, control = start(conf, base=POLLED)
    engine.decide(control, control.state(now=1000.0))
    control.run_all()
    assert size(control) == 5


@pytest.mark.parametrize(
    "conf",
    [
        {"sensor_error_policy": "panic"},
        {"sensor_error_policy": "fallback"},
        {"sensor_error_policy": "fallback", "fallback_size": -1},
    ],
)
def test_bad_error_policy_keys_are_refused(conf):
    with pytest.raises(BadRequestError, match=r"sensor_error_policy|fallback_size"):
        start(conf, base=POLLED)


def test_a_metric_only_the_domain_has_is_compared_as_it_is():
    conf = {"metric": "backlog", "scale_up_threshold": 5, "scale_down_threshold": 1}
    engine, control = start(conf, base=POLLED)
    engine.decide(control, control.state(now=1000.0))
    control.run_all()
    backlog = {"backlog": {"Series": [40.0], "time": 1000.0}}
    engine.decide(control, control.state(now=1001.0, sensor_data=backlog))
    control.run_all()
    assert size(control) == 3  # 1 + scale_up_n_vms 2
    drained = {"backlog": {"Series": [0.0], "time": 1002.0}}
    engine.decide(control, control.state(now=1002.0, sensor_data=drained))
    control.run_all()
    assert size(control) == 2
