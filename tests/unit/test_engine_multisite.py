"""MultiSiteOverflowEngine: rank order, overflow, failing sites, trimming."""

from __future__ import annotations

import pytest

from epum.engines.multisite import MultiSiteOverflowEngine
from epum.errors import BadRequestError
from epum.states import DecisionEngineState as DE
from epum.states import InstanceHealthState as H
from epum.states import InstanceState as S
from tests.unit.engine_fakes import FakeControl

CLOUDS = [
    {"site_name": "cheap", "size": 2, "rank": 1},
    {"site_name": "pricey", "size": 5, "rank": 3},
    {"site_name": "middle", "size": 1, "rank": 2, "allocation": "big"},
]
BASE = {"domain_desired_size": 4, "dtname": "dt", "clouds": CLOUDS, "iaas_allocation": "small"}


def start(conf=None, control=None, base=BASE):
    control = control or FakeControl()
    engine = MultiSiteOverflowEngine()
    engine.initialize(control, control.state(), {**base, **(conf or {})})
    return engine, control


def per_site(control):
    counts = {}
    for inst in control.instances.values():
        if inst.state < S.TERMINATING:
            counts[inst.site] = counts.get(inst.site, 0) + 1
    return counts


def test_fills_best_ranked_first_and_overflows():
    engine, control = start()
    engine.decide(control, control.state())
    launches = [(c.site, c.count, c.allocation, c.deployable_type) for c in control.launches]
    assert launches == [
        ("cheap", 2, "small", "dt"),
        ("middle", 1, "big", "dt"),
        ("pricey", 1, "small", "dt"),
    ]
    engine.decide(control, control.state())
    assert len(control.launched) == 4
    control.run_all()
    engine.decide(control, control.state())
    assert engine.de_state == DE.STABLE


def test_failed_instance_replaced_on_its_site():
    engine, control = start()
    engine.decide(control, control.state())
    control.run_all()
    cheap = [i for i, inst in control.instances.items() if inst.site == "cheap"]
    control.set(cheap[0], S.FAILED)
    engine.decide(control, control.state())
    assert control.launches[-1].site == "cheap"
    assert per_site(control) == {"cheap": 2, "middle": 1, "pricey": 1}


def test_unhealthy_instance_destroyed_and_replaced():
    engine, control = start({"domain_desired_size": 2})
    engine.decide(control, control.state())
    control.run_all()
    victim = control.launched[0]
    control.set(victim, health=H.ZOMBIE)
    engine.decide(control, control.state())
    assert control.destroyed == [victim]
    assert per_site(control) == {"cheap": 2}


def test_failing_site_counts_as_full_until_retry_period():
    conf = {"domain_desired_size": 2, "failure_threshold": 3, "failure_retry_period": 100}
    engine, control = start(conf)
    for n in range(2):  # two passes, two launches each, all fail on "cheap"
        engine.decide(control, control.state(now=1000 + n))
        assert per_site(control) == {"cheap": 2}
        for iid in list(control.live_ids()):
            control.set(iid, S.FAILED)
    # 4 FAILED >= 3, rising, and no healthy instance more: cheap holds 0
    engine.decide(control, control.state(now=1002))
    assert per_site(control) == {"middle": 1, "pricey": 1}
    assert engine.capacity["cheap"].capacity == 0
    control.run_all()
    engine.decide(control, control.state(now=1010))
    assert engine.de_state == DE.STABLE
    # within the retry period the full site is skipped
    engine.reconfigure(control, {**BASE, **conf, "domain_desired_size": 3})
    engine.decide(control, control.state(now=1050))
    assert per_site(control) == {"middle": 1, "pricey": 2}
    # after it, the site is tried again
    engine.reconfigure(control, {**BASE, **conf, "domain_desired_size": 4})
    engine.decide(control, control.state(now=1103))
    assert control.launches[-1].site == "cheap"


def test_few_failures_say_nothing_about_capacity():
    engine, control = start({"domain_desired_size": 2})  # threshold 32, the original's
    for n in range(3):
        engine.decide(control, control.state(now=1000 + n))
        assert per_site(control) == {"cheap": 2}
        for iid in list(control.live_ids()):
            control.set(iid, S.FAILED)


def test_minimum_maximum_format_with_unlimited_site():
    clouds = [
        {"site_name": "cheap", "size": 2, "rank": 1},
        {"site_name": "rest", "size": -1, "rank": 2},
    ]
    conf = {"minimum_vms": 7, "maximum_vms": 9, "dtname": "dt", "clouds": clouds}
    engine, control = start(conf, base={})
    engine.decide(control, control.state())
    assert per_site(control) == {"cheap": 2, "rest": 5}


def test_ranks_must_be_one_to_n():
    clouds = [{"site_name": "a", "size": 1, "rank": 1}, {"site_name": "b", "size": 1, "rank": 3}]
    with pytest.raises(BadRequestError, match=r"clouds ranks must be 1..2"):
        MultiSiteOverflowEngine.validate_config({"minimum_vms": 1, "dtname": "d", "clouds": clouds})


def test_desired_size_cannot_go_with_minimum():
    with pytest.raises(BadRequestError, match=r"domain_desired_size .* cannot go with minimum_vms"):
        MultiSiteOverflowEngine.validate_config({**BASE, "minimum_vms": 1})


def test_terminate_removes_named_instances_and_refills_the_minimum():
    engine, control = start({"domain_desired_size": 2})
    engine.decide(control, control.state())
    control.run_all()
    victim = control.launched[0]
    engine.reconfigure(control, {**BASE, "domain_desired_size": 2, "terminate": victim})
    engine.decide(control, control.state())
    assert control.destroyed == [victim]
    assert per_site(control) == {"cheap": 2}
    engine.decide(control, control.state())  # asked once only
    assert control.destroyed == [victim]


def test_sensor_scaling_between_bounds():
    conf = {
        "domain_desired_size": None,
        "minimum_vms": 1,
        "maximum_vms": 4,
        "metric": "load",
        "sample_function": "Average",
        "scale_up_threshold": 0.5,
        "scale_up_n_vms": 2,
        "scale_down_threshold": 0.1,
        "scale_down_n_vms": -1,
    }
    engine, control = start(conf)
    sizes = []
    for step, value in enumerate([0.9, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0]):
        control.run_all()
        for iid in control.live_ids():
            control.set(iid, sensor_data={"load": {"Average": value}})
        engine.decide(control, control.state(now=1000 + step))
        sizes.append(sum(per_site(control).values()))
    assert sizes == [1, 3, 4, 3, 2, 1, 1]


def test_domain_reading_is_averaged_in():
    conf = {
        "domain_desired_size": None,
        "minimum_vms": 1,
        "metric": "q",
        "sample_function": "Sum",
        "scale_up_threshold": 5,
        "scale_up_n_vms": 1,
    }
    engine, control = start(conf)
    engine.decide(control, control.state())
    control.run_all()
    # one instance without a reading (0) and the domain's 12: 12 / 2 = 6 > 5
    engine.decide(control, control.state(sensor_data={"q": {"Sum": 12}}))
    assert sum(per_site(control).values()) == 2


def test_deviating_when_clouds_cannot_hold_desired_size():
    engine, control = start({"domain_desired_size": 10})
    engine.decide(control, control.state())
    assert per_site(control) == {"cheap": 2, "middle": 1, "pricey": 5}
    assert engine.de_state == DE.DEVIATING


def test_lower_desired_size_trims_worst_ranked_first():
    engine, control = start({"domain_desired_size": 6})
    engine.decide(control, control.state())
    control.run_all()
    assert per_site(control) == {"cheap": 2, "middle": 1, "pricey": 3}
    engine.reconfigure(control, {**BASE, "domain_desired_size": 2})
    engine.decide(control, control.state())
    assert per_site(control) == {"cheap": 2}
    assert control.launches[3:] == []


def test_lower_site_size_trims_that_site_and_refills_elsewhere():
    engine, control = start()
    engine.decide(control, control.state())
    control.run_all()
    clouds = [dict(c) for c in CLOUDS]
    clouds[0]["size"] = 1
    engine.reconfigure(control, {**BASE, "clouds": clouds})
    engine.decide(control, control.state())
    assert len(control.destroyed) == 1
    assert control.instances[control.destroyed[0]].site == "cheap"
    assert per_site(control) == {"cheap": 1, "middle": 1, "pricey": 2}


def test_instances_on_unlisted_site_are_terminated():
    control = FakeControl()
    control.add("stray", site="elsewhere")
    engine, _ = start({"domain_desired_size": 1}, control)
    engine.decide(control, control.state())
    assert control.destroyed == ["stray"]
    assert [c.site for c in control.launches] == ["cheap"]


def test_healthy_instances_are_not_moved_to_better_site():
    control = FakeControl()
    control.add("p1", site="pricey")
    engine, _ = start({"domain_desired_size": 1}, control)
    engine.decide(control, control.state())
    assert control.destroy_calls == [] and control.launches == []


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"domain_desired_size": None}, "minimum_vms is required"),
        ({"domain_desired_size": -1}, "domain_desired_size must be >= 0"),
        ({"domain_desired_size": "two"}, "domain_desired_size must be an integer"),
        ({"dtname": None}, "dtname is required"),
        ({"clouds": []}, "clouds must be a non-empty list"),
        ({"clouds": "cheap"}, "clouds must be a non-empty list"),
        ({"clouds": ["cheap"]}, r"clouds\[0\] must be a mapping"),
        ({"clouds": [{"size": 1, "rank": 1}]}, r"clouds\[0\]\.site_name is required"),
        (
            {"clouds": [{"site_name": "a", "size": -2, "rank": 1}]},
            r"clouds\[0\]\.size must be >= -1",
        ),
        ({"clouds": [{"site_name": "a", "size": 1}]}, r"clouds\[0\]\.rank is required"),
        (
            {"clouds": [{"site_name": "a", "size": 1, "rank": "first"}]},
            r"clouds\[0\]\.rank must be",
        ),
        ({"clouds": [*CLOUDS, {"site_name": "cheap", "size": 1, "rank": 9}]}, "listed twice"),
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_retry_period": -5}, "failure_retry_period"),
    ],
)
def test_validate_config_rejects(conf, message):
    with pytest.raises(BadRequestError, match=message):
        MultiSiteOverflowEngine.validate_config({**BASE, **conf})


def test_doc_names_every_key():
    doc = MultiSiteOverflowEngine.get_config_doc()
    for key in ("domain_desired_size", "dtname", "clouds", "site_name", "size", "rank"):
        assert key in doc


@pytest.mark.parametrize(("policy", "expected"), [({}, 3), ({"fallback_size": 1}, 1)])
def test_without_any_reading_hold_keeps_the_size_and_fallback_aims_for_its_size(policy, expected):
    conf = {
        "domain_desired_size": None,
        "minimum_vms": 0,
        "maximum_vms": 4,
        "metric": "load",
        "sample_function": "Average",
        "scale_up_threshold": 0.5,
        "scale_up_n_vms": 3,
        "scale_down_threshold": 0.1,
        "scale_down_n_vms": 1,
    }
    if policy:
        conf.update(policy, sensor_error_policy="fallback")
    engine, control = start(conf)
    engine.decide(control, control.state(now=1000, sensor_data={"load": {"Average": 0.9}}))
    control.run_all()
    assert sum(per_site(control).values()) == 3
    # the domain's reading is gone and no instance has one
    engine.decide(control, control.state(now=1001))
    control.run_all()
    assert sum(per_site(control).values()) == expected
