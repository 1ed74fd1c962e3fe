"""The original's multi-site overflow scenarios (``epu/test/test_multi_site.py``), via the facade.

Configs use the original's last format (``minimum_vms``/``maximum_vms``,
``clouds`` ranked 1..n) unless a test is about the older
``domain_desired_size``.
"""

from __future__ import annotations

import pytest

from epum.errors import BadRequestError
from epum.states import InstanceState
from tests.migration.drive import Driven

MULTISITE = {
    "general": {
        "engine_class": (
            "epu.decisionengine.impls.phantom_multi_site_overflow.PhantomMultiSiteOverflowEngine"
        )
    }
}


def cloud(name, size, rank):
    return {"site_name": name, "size": size, "rank": rank}


def conf(clouds, n=None, **over):
    """The original's make_conf: minimum = maximum = n (its instance_type key, which
    the original engine never read, is kept and ignored)."""
    engine_conf = {"clouds": clouds, "dtname": "testdt", "instance_type": "m1.small"}
    engine_conf["iaas_allocation"] = "m1.small"
    if n is not None:
        engine_conf.update(minimum_vms=n, maximum_vms=n)
    engine_conf.update(over)
    return {"engine_conf": engine_conf}


@pytest.fixture
def driven():
    made = []

    def make(*args, **kwargs):
        d = Driven(MULTISITE, *args, **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def test_basic_start(driven):
    d = driven(conf([cloud("hotel", 10, 1)], 5))
    assert d.decide() == 5
    assert {p["deployable_type"] for p in d.provisioned} == {"testdt"}


def test_older_domain_desired_size(driven):
    d = driven(conf([cloud("hotel", 10, 1)], domain_desired_size="4"))
    assert d.decide() == 4


def test_basic_sensor_sequence(driven):
    engine_conf = conf(
        [cloud("hotel", 6, 1)],
        minimum_vms=4,
        maximum_vms=6,
        metric="something",
        sample_function="Average",
        scale_up_threshold=2,
        scale_down_threshold=0.5,
        scale_up_n_vms=1,
        scale_down_n_vms=1,
        cooldown_period=0,
    )
    d = driven(engine_conf)
    assert d.decide() == 4
    up, down = [1, 3, 5], [0, 1, 0]
    assert [d.step("something", up) for _ in range(3)] == [5, 6, 6]
    assert [d.step("something", down) for _ in range(3)] == [5, 4, 4]


def test_start_on_two_clouds(driven):
    d = driven(conf([cloud("hotel", 5, 1), cloud("sierra", 5, 2)], 10))
    d.decide()
    assert d.per_site() == {"hotel": 5, "sierra": 5}


def test_too_many_clouds_uses_only_the_first(driven):
    clouds = [cloud("hotel", 10, 1), cloud("sierra", 10, 2), cloud("foxtrot", 10, 3)]
    d = driven(conf(clouds, 10))
    d.decide()
    assert d.per_site() == {"hotel": 10}


def test_negative_one_is_no_limit(driven):
    clouds = [cloud("hotel", -1, 1), cloud("sierra", 10, 2), cloud("foxtrot", 10, 3)]
    d = driven(conf(clouds, 10))
    d.decide()
    assert d.per_site() == {"hotel": 10}


def test_node_failed_is_replaced(driven):
    d = driven(conf([cloud("hotel", 10, 1)], 4))
    d.step()
    d.run_all()
    d.fail(d.live()[0]["instance_id"])
    assert d.decide() == 4
    assert len(d.provisioned) == 5


def test_reconf_one_cloud_increase(driven):
    d = driven(conf([cloud("hotel", 4, 1)], 4))
    d.step()
    d.reconfigure({"clouds": [cloud("hotel", 8, 1)]})
    assert d.step() == 4, "a bigger site does not grow the domain"


def test_reconf_one_cloud_n_decrease(driven):
    d = driven(conf([cloud("hotel", 4, 1)], 4))
    d.step()
    kept = {r["instance_id"] for r in d.live()}
    d.reconfigure({"clouds": [cloud("hotel", 2, 1)]})
    assert d.step() == 2
    assert {r["instance_id"] for r in d.live()} < kept, "the site keeps two of its own"


def test_reconf_overall_n_decrease(driven):
    d = driven(conf([cloud("hotel", 4, 1)], 4))
    d.step()
    d.reconfigure({"minimum_vms": 2, "maximum_vms": 2})
    assert d.step() == 2


def test_reconf_two_clouds_n_increase_overflows(driven):
    d = driven(conf([cloud("hotel", 3, 1), cloud("sierra", 5, 2)], 3))
    d.step()
    assert d.per_site() == {"hotel": 3}
    d.reconfigure({"minimum_vms": 5, "maximum_vms": 5})
    d.step()
    assert d.per_site() == {"hotel": 3, "sierra": 2}


def test_site_that_stays_keeps_its_instances_and_shrunk_site_is_lowered(driven):
    d = driven(conf([cloud("hotel", 3, 1), cloud("sierra", 5, 2)], 6))
    d.step()
    sierra = {r["instance_id"] for r in d.live("sierra")}
    d.reconfigure({"clouds": [cloud("hotel", 1, 1), cloud("sierra", 5, 2)]})
    d.step()
    assert sierra <= {r["instance_id"] for r in d.live("sierra")}
    assert d.per_site() == {"hotel": 1, "sierra": 5}


def test_node_dies_on_second_cloud_and_is_rebalanced(driven):
    d = driven(conf([cloud("hotel", 6, 1), cloud("sierra", 6, 2)], 8))
    d.step()
    d.reconfigure({"clouds": [cloud("hotel", 7, 1), cloud("sierra", 6, 2)]})
    d.step()
    assert d.per_site() == {"hotel": 6, "sierra": 2}
    d.fail(d.live("sierra")[0]["instance_id"])
    d.step()
    assert d.per_site() == {"hotel": 7, "sierra": 1}


def test_multi_cloud_decrease_trims_worst_ranked_first(driven):
    clouds = [cloud("hotel", 8, 1), cloud("sierra", 4, 2), cloud("foxtrot", 2, 3)]
    d = driven(conf(clouds, 14))
    d.step()
    d.reconfigure({"minimum_vms": 10, "maximum_vms": 10})
    d.step()
    assert d.per_site() == {"hotel": 8, "sierra": 2}


def test_basic_move_to_pending(driven):
    d = driven(conf([cloud("hotel", 2, 1)], 2))
    d.decide()
    for r in d.live():
        d.sc.cloud.report(r["instance_id"], InstanceState.PENDING)
    assert d.decide() == 2
    assert len(d.provisioned) == 2, "pending instances count"


def test_reconf_one_cloud_and_overall_increase_of_the_original(driven):
    d = driven(conf([cloud("hotel", 4, 1)], 4))
    d.step()
    d.reconfigure({"clouds": [cloud("hotel", 6, 1)], "minimum_vms": 6, "maximum_vms": 6})
    assert d.step() == 6
    assert len(d.provisioned) == 6


def test_reconf_two_clouds_n_increase_of_the_original(driven):
    clouds = [cloud("hotel", 4, 1), cloud("sierra", 2, 2)]
    d = driven(conf(clouds, 3))
    d.step()
    assert d.per_site() == {"hotel": 3}
    d.reconfigure({"minimum_vms": 5, "maximum_vms": 5})
    d.step()
    assert d.per_site() == {"hotel": 4, "sierra": 1}
    d.reconfigure({"minimum_vms": 16, "maximum_vms": 16})
    d.step()
    assert d.per_site() == {"hotel": 4, "sierra": 2}, "no more than the clouds hold"
    assert len(d.provisioned) == 6


def test_reconf_two_clouds_bigger_site_moves_nothing(driven):
    d = driven(conf([cloud("hotel", 4, 1), cloud("sierra", 2, 2)], 6))
    d.step()
    d.reconfigure({"clouds": [cloud("hotel", 9, 1), cloud("sierra", 2, 2)]})
    d.step()
    assert d.per_site() == {"hotel": 4, "sierra": 2}
    assert len(d.provisioned) == 6 and d.terminated == []


def test_sensor_cooldown_in_decision_time(driven):
    engine_conf = conf(
        [cloud("hotel", -1, 1)],
        minimum_vms=1,
        maximum_vms=5,
        metric="load",
        sample_function="Average",
        scale_up_threshold=2,
        scale_up_n_vms=1,
        cooldown_period="60",
    )
    d = driven(engine_conf)
    d.decide()
    assert d.step("load", [5]) == 2
    assert d.step("load", [5]) == 2, "cooling down"
    d.sc.clock.advance(60)
    assert d.step("load", [5]) == 3


def test_terminate_named_instance(driven):
    d = driven(conf([cloud("hotel", 10, 1)], 3))
    d.step()
    victim = d.live()[0]["instance_id"]
    d.reconfigure({"terminate": victim})
    assert d.step() == 3
    assert d.terminated == [victim]
    assert victim not in {r["instance_id"] for r in d.live()}


def test_capacity_learnt_from_failures(driven):
    """The original's test_basic_capacity: a site that fails all but 5 holds 5."""
    d = driven(conf([cloud("hotel", 10, 1)], 10))
    capacity = 5
    for _ in range(12):
        d.decide()
        for r in d.live():
            if d.size() > capacity and r["state"] < InstanceState.RUNNING:
                d.fail(r["instance_id"])
            else:
                d.sc.cloud.report(r["instance_id"], InstanceState.RUNNING)
    assert d.size() == capacity
    sent = len(d.provisioned)
    d.decide()
    assert len(d.provisioned) == sent, "no more launches on a site known to be full"
    d.reconfigure({"minimum_vms": capacity, "maximum_vms": capacity})
    d.decide()
    assert d.size() == capacity and d.terminated == []


def test_capacity_overflow_to_the_next_site(driven):
    d = driven(conf([cloud("hotel", 20, 1), cloud("sierra", 10, 2)], 10))
    capacity = 5
    for _ in range(12):
        d.decide()
        for r in d.live("hotel"):
            if d.size("hotel") > capacity and r["state"] < InstanceState.RUNNING:
                d.fail(r["instance_id"])
        d.run_all()
    d.decide()
    assert d.per_site() == {"hotel": capacity, "sierra": 10 - capacity}


@pytest.mark.parametrize(
    ("engine_conf", "message"),
    [
        ({"clouds": [cloud("hotel", 10, 1)], "dtname": "dt"}, "minimum_vms is required"),
        ({"clouds": [cloud("hotel", 10, 1)], "minimum_vms": 1}, "dtname is required"),
        ({"minimum_vms": 1, "dtname": "dt"}, "clouds must be a non-empty list"),
        (
            {"minimum_vms": 1, "dtname": "dt", "clouds": [cloud("a", 1, 1), cloud("b", 1, 3)]},
            r"ranks must be 1\.\.2",
        ),
        (
            {"minimum_vms": 1, "dtname": "dt", "clouds": [cloud("a", "ten", 1)]},
            r"clouds\[0\]\.size must be an integer",
        ),
    ],
)
def test_conf_errors(driven, engine_conf, message):
    d = driven(conf([cloud("hotel", 1, 1)], 0))
    with pytest.raises(BadRequestError, match=message):
        d.epum.msg_add_domain("migrating", "other", "def", {"engine_conf": engine_conf})


def test_reconfigure_must_give_the_whole_cloud_list(driven):
    d = driven(conf([cloud("hotel", 10, 1), cloud("sierra", 10, 2)], 2))
    with pytest.raises(BadRequestError, match=r"ranks must be 1\.\.1"):
        d.reconfigure({"clouds": [cloud("foxtrot", 10, 3)]})
