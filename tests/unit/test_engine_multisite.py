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


def start(conf=None, control=None):
    control = control or FakeControl()
    engine = MultiSiteOverflowEngine()
    engine.initialize(control, control.state(), {**BASE, **(conf or {})})
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
    engine, control = start({"domain_desired_size": 2, "failure_retry_period": 100})
    for n in range(2):  # two passes, two launches each, all fail on "cheap"
        engine.decide(control, control.state(now=1000 + n))
        assert per_site(control) == {"cheap": 2}
        for iid in list(control.live_ids()):
            control.set(iid, S.FAILED)
    assert engine.failing_sites(control.state(now=1003)) == {"cheap"}
    engine.decide(control, control.state(now=1003))
    assert per_site(control) == {"middle": 1, "pricey": 1}
    control.run_all()
    engine.decide(control, control.state(now=1010))
    assert engine.de_state == DE.STABLE
    # after the retry period the good site is tried again once there is room
    engine.reconfigure(control, {**BASE, "domain_desired_size": 3, "failure_retry_period": 100})
    engine.decide(control, control.state(now=1050))
    assert per_site(control) == {"middle": 1, "pricey": 2}
    engine.reconfigure(control, {**BASE, "domain_desired_size": 4, "failure_retry_period": 100})
    engine.decide(control, control.state(now=1103))
    assert control.launches[-1].site == "cheap"


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
        ({"domain_desired_size": None}, "domain_desired_size is required"),
        ({"domain_desired_size": -1}, "domain_desired_size must be >= 0"),
        ({"domain_desired_size": "two"}, "domain_desired_size must be an integer"),
        ({"dtname": None}, "dtname is required"),
        ({"clouds": []}, "clouds must be a non-empty list"),
        ({"clouds": "cheap"}, "clouds must be a non-empty list"),
        ({"clouds": ["cheap"]}, r"clouds\[0\] must be a mapping"),
        ({"clouds": [{"size": 1, "rank": 1}]}, r"clouds\[0\]\.site_name is required"),
        (
            {"clouds": [{"site_name": "a", "size": -1, "rank": 1}]},
            r"clouds\[0\]\.size must be >= 0",
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
