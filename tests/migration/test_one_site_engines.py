"""The original's simplest, needy and sensor engine scenarios, through the facade.

The configs and sequences of sizes are those of the original engine tests
(``epu/test/test_sensor.py``, ``test_needy.py``), retold as epum tests.
"""

from __future__ import annotations

import pytest

from epum.errors import BadRequestError
from tests.migration.drive import DOMAIN, OWNER, Driven

ORIGINAL = "epu.decisionengine.impls."
SENSOR = {"general": {"engine_class": ORIGINAL + "sensor.SensorEngine"}}
NEEDY = {"general": {"engine_class": ORIGINAL + "needy.NeedyEngine"}}
SIMPLEST = {"general": {"engine_class": ORIGINAL + "simplest.SimplestEngine"}}


@pytest.fixture
def driven():
    made = []

    def make(*args, **kwargs):
        d = Driven(*args, **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def sensor_conf(**over):
    """The original test_sensor config: 1..3, thresholds 2.0 / 0.5, steps of 1."""
    conf = {
        "minimum_vms": 1,
        "maximum_vms": 3,
        "metric": "fake",
        "sample_function": "Average",
        "scale_up_threshold": 2.0,
        "scale_up_n_vms": 1,
        "scale_down_threshold": 0.5,
        "scale_down_n_vms": 1,
        "deployable_type": "dt1",
        "iaas_site": "chicago",
        "iaas_allocation": "small",
    }
    conf.update(over)
    return {"engine_conf": conf}


# simplest ----------------------------------------------------------------------


def test_simplest_with_only_preserve_n_launches_the_originals_defaults(driven):
    d = driven(SIMPLEST, {"engine_conf": {"preserve_n": 2}})
    assert d.decide() == 2
    sent = {(p["deployable_type"], p["site"], p["allocation"]) for p in d.provisioned}
    assert sent == {("epu_work_consumer", "ec2-east", "small")}


def test_simplest_default_site_is_checked_with_the_dtrs():
    from tests.fakes import FakeDTRS
    from tests.unit.scenario import Scenario

    sc = Scenario(dtrs=FakeDTRS(sites={"hotel"}))
    try:
        sc.epum.msg_add_domain_definition("def", SIMPLEST)
        with pytest.raises(BadRequestError, match="ec2-east"):
            sc.epum.msg_add_domain(OWNER, DOMAIN, "def", {"engine_conf": {"preserve_n": 1}})
        sc.epum.msg_add_domain(
            OWNER, DOMAIN, "def", {"engine_conf": {"preserve_n": 1, "force_site": "hotel"}}
        )
    finally:
        sc.epum.shutdown()


def test_simplest_replaces_an_unhealthy_instance(driven):
    d = driven(SIMPLEST, {"engine_conf": {"preserve_n": 2}})
    assert d.step() == 2
    d.run_all()
    victim = d.live()[0]["instance_id"]
    d.sc.cloud.report(victim, "650-RUNNING_FAILED")
    assert d.decide() == 2
    assert victim in d.terminated


# needy -------------------------------------------------------------------------


def needy_conf(preserve_n, **over):
    """The original test_needy config: dt1 at chicago, small."""
    conf = {"preserve_n": preserve_n, "deployable_type": "dt1", "iaas_site": "chicago"}
    conf.update(iaas_allocation="small", **over)
    return {"engine_conf": conf}


def test_needy_basic_sequence_of_the_original(driven):
    d = driven(NEEDY, needy_conf(1))
    assert d.decide() == 1
    d.reconfigure({"preserve_n": 2})
    assert d.decide() == 2
    assert len(d.provisioned) == 2


@pytest.mark.parametrize(
    ("values", "preserve_n", "launched"),
    [
        ([1, 2, 3], 2, [1, 2, 1]),  # test_uniques: the replacement takes the freed value
        ("a, b,c ", 2, ["a", "b", "a"]),  # test_uniques_string_values
        ([1], 2, [1, 1]),  # test_ran_out_of_uniques: one at a time
    ],
)
def test_needy_unique_sequences_of_the_original(driven, values, preserve_n, launched):
    d = driven(NEEDY, needy_conf(preserve_n, unique_key="somekey", unique_values=values))
    d.decide()
    d.run_all()
    d.fail(d.provisioned[0]["instance_ids"][0])
    d.decide()
    assert [p["vars"]["somekey"] for p in d.provisioned] == launched


def test_needy_grows_and_retires_the_named_nodes_first(driven):
    conf = {"preserve_n": 3, "deployable_type": "dt", "iaas_site": "hotel"}
    d = driven(NEEDY, {"engine_conf": conf})
    assert d.step() == 3
    spare = d.live()[1]["instance_id"]
    d.reconfigure({"preserve_n": 2, "retirable_nodes": [spare]})
    assert d.step() == 2
    assert d.terminated == [spare]


def test_needy_site_from_the_service_default(driven):
    d = driven(
        NEEDY,
        {"engine_conf": {"preserve_n": 1, "deployable_type": "dt"}},
        service_conf={"needy_default_iaas_site": "hotel", "needy_default_iaas_allocation": "big"},
    )
    d.decide()
    assert (d.provisioned[0]["site"], d.provisioned[0]["allocation"]) == ("hotel", "big")


def test_needy_without_what_a_launch_needs_is_refused_at_add_domain(driven):
    d = driven(NEEDY, {"engine_conf": {}})  # preserve_n 0: accepted, as the original
    assert d.decide() == 0
    with pytest.raises(BadRequestError, match="deployable_type and iaas_site required"):
        d.epum.msg_add_domain(OWNER, "other", "def", {"engine_conf": {"preserve_n": 1}})
    with pytest.raises(BadRequestError, match="deployable_type and iaas_site required"):
        d.reconfigure({"preserve_n": 1})
    assert not d.provisioned, "no request the provisioner must reject"


@pytest.mark.parametrize("blank", ["", " ", [], None])
def test_needy_blank_unique_values_means_no_uniques(driven, blank):
    conf = {"preserve_n": 2, "deployable_type": "dt", "iaas_site": "hotel"}
    conf.update(unique_key="slot", unique_values=blank)
    d = driven(NEEDY, {"engine_conf": conf})
    assert d.decide() == 2
    assert all("slot" not in p["vars"] for p in d.provisioned)


def test_needy_unique_values_keep_their_type_and_run_out(driven):
    conf = {"preserve_n": 3, "deployable_type": "dt", "iaas_site": "hotel"}
    conf.update(unique_key="slot", unique_values=[1, 2])
    d = driven(NEEDY, {"engine_conf": conf})
    assert d.decide() == 2, "the original stopped launching when the values ran out"
    assert [p["vars"]["slot"] for p in d.provisioned] == [1, 2]
    held = [r["extravars"]["slot"] for r in d.records()]
    assert sorted(held) == [1, 2]


# sensor ------------------------------------------------------------------------


def test_sensor_basic_sequence_of_the_original(driven):
    d = driven(SENSOR, sensor_conf())
    up, down = [1, 3, 5], [0, 1, 0]
    assert d.decide() == 1
    assert [d.step("fake", up) for _ in range(3)] == [2, 3, 3]
    assert [d.step("fake", down) for _ in range(3)] == [2, 1, 1]
    assert len(d.provisioned) == 3 and len(d.terminated) == 2


def test_sensor_uniques_and_replacement_of_the_original(driven):
    d = driven(SENSOR, sensor_conf(minimum_vms=2, unique_key="somekey", unique_values=[1, 2, 3]))
    d.decide()
    assert [p["vars"]["somekey"] for p in d.provisioned] == [1, 2]
    first = d.provisioned[0]["instance_ids"][0]
    d.fail(first)
    d.decide()
    assert [p["vars"]["somekey"] for p in d.provisioned] == [1, 2, 1]


def test_sensor_uniques_running_out_launch_with_none(driven):
    d = driven(SENSOR, sensor_conf(minimum_vms=3, unique_key="k", unique_values="a,b"))
    d.decide()
    assert [p["vars"]["k"] for p in d.provisioned] == ["a", "b", None]


def test_sensor_with_only_bounds_keeps_the_minimum(driven):
    conf = {"minimum_vms": 2, "maximum_vms": 5, "deployable_type": "dt"}
    conf.update(iaas_site="hotel", iaas_allocation="small")
    d = driven(SENSOR, {"engine_conf": conf})
    assert [d.step("fake", [100]) for _ in range(3)] == [2, 2, 2]


def test_sensor_with_no_keys_at_all_is_accepted_and_holds_nothing(driven):
    d = driven(SENSOR, {})
    assert d.decide() == 0


def test_sensor_strings_and_negative_scale_down(driven):
    conf = sensor_conf(
        minimum_vms="1", maximum_vms="3", scale_up_threshold="2", scale_down_n_vms="-2"
    )
    d = driven(SENSOR, conf)
    d.decide()
    assert [d.step("fake", [5]) for _ in range(2)] == [2, 3]
    assert d.step("fake", [0]) == 1


def test_sensor_statistic_names_of_the_original(driven):
    for name in ("Maximum", "Minimum", "Sum", "SampleCount"):
        d = driven(SENSOR, sensor_conf(sample_function=name, scale_up_threshold=2.5))
        d.decide()
        d.run_all()
        d.read("fake", [1, 2, 3], statistic=name)
        # Maximum 3, Sum 6, SampleCount from the series (3): above 2.5; Minimum 1 is not
        assert d.decide() == (1 if name == "Minimum" else 2), name


def test_sensor_average_counts_a_new_instance_without_reading_as_zero(driven):
    d = driven(SENSOR, sensor_conf(minimum_vms=2, scale_up_threshold=2.0))
    d.decide()
    d.run_all()
    first = d.live()[0]["instance_id"]
    d.sc.cloud.report(first, "600-RUNNING", sensor_data={"fake": {"Average": 3.0}})
    # (3 + 0) / 2 = 1.5: not above 2
    assert d.decide() == 2


def test_sensor_cooldown_in_decision_time(driven):
    d = driven(SENSOR, sensor_conf(maximum_vms=5, cooldown_period=60))
    d.decide()
    assert d.step("fake", [5]) == 2
    assert d.step("fake", [5]) == 2, "cooling down"
    d.sc.clock.advance(60)
    assert d.step("fake", [5]) == 3


def test_sensor_unhealthy_instance_destroyed(driven):
    d = driven(SENSOR, sensor_conf(minimum_vms=2))
    d.step()
    victim = d.live()[0]["instance_id"]
    d.sc.cloud.report(victim, "650-RUNNING_FAILED")
    assert d.decide() == 2
    assert victim in d.terminated
