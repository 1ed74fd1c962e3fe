"""NeedyEngine: preserve_n, retirable nodes, unique values."""

from __future__ import annotations

import pytest

from epum.engines.needy import NeedyEngine
from epum.errors import BadRequestError
from epum.states import DecisionEngineState as DE
from epum.states import InstanceHealthState as H
from epum.states import InstanceState as S
from tests.unit.engine_fakes import FakeControl

#: What a needy domain must name before it can launch.
LAUNCH = {"deployable_type": "dt", "iaas_site": "site-a"}

BASE = {"preserve_n": 2, "deployable_type": "dt", "iaas_site": "site-a", "iaas_allocation": "small"}


def start(conf=None, control=None):
    control = control or FakeControl()
    engine = NeedyEngine()
    engine.initialize(control, control.state(), {**BASE, **(conf or {})})
    return engine, control


def test_grows_with_configured_target():
    engine, control = start()
    engine.decide(control, control.state())
    assert [(c.count, c.deployable_type, c.site, c.allocation) for c in control.launches] == [
        (2, "dt", "site-a", "small")
    ]
    engine.decide(control, control.state())
    assert len(control.launched) == 2


def test_allocation_may_be_absent_but_not_what_a_launch_needs():
    # the original failed at launch time without a site or deployable type;
    # epum refuses such a config up front, naming the missing keys
    control = FakeControl()
    engine = NeedyEngine()
    engine.initialize(control, control.state(), {"preserve_n": 1, **LAUNCH})
    engine.decide(control, control.state())
    call = control.launches[0]
    assert (call.deployable_type, call.site, call.allocation) == ("dt", "site-a", None)
    with pytest.raises(BadRequestError, match="deployable_type and iaas_site required"):
        NeedyEngine.validate_config({"preserve_n": 1})
    NeedyEngine.validate_config({})  # preserve_n defaults to 0: nothing to launch yet


def test_preserve_n_as_a_string_and_blank_uniques_are_the_originals():
    control = FakeControl()
    engine = NeedyEngine()
    conf = {"preserve_n": "2", "unique_key": "slot", "unique_values": " ", **LAUNCH}
    engine.initialize(control, control.state(), conf)
    engine.decide(control, control.state())
    assert [(c.count, c.extravars) for c in control.launches] == [(2, None)]


def test_shrink_terminates_retirable_nodes_first():
    control = FakeControl()
    control.add("old", state_time=1)
    control.add("spare", state_time=2)
    control.add("new", state_time=3)
    engine, _ = start({"preserve_n": 3}, control)
    engine.decide(control, control.state())
    assert control.destroyed == []
    engine.reconfigure(control, {**BASE, "preserve_n": 1, "retirable_nodes": ["spare", "old"]})
    engine.decide(control, control.state())
    assert sorted(control.destroyed) == ["old", "spare"]
    assert control.live_ids() == {"new"}


def test_retirable_node_is_kept_while_domain_is_at_size():
    control = FakeControl()
    control.add("a")
    control.add("b")
    engine, _ = start({"retirable_nodes": "a"}, control)
    engine.decide(control, control.state())
    assert control.destroyed == [] and control.launches == []
    assert engine.de_state == DE.STABLE


def test_unhealthy_is_replaced():
    control = FakeControl()
    control.add("a")
    control.add("b", health=H.MISSING)
    engine, _ = start(control=control)
    engine.decide(control, control.state())
    assert control.destroyed == ["b"]
    assert len(control.launched) == 1


class TestUniques:
    UNIQUE = {"preserve_n": 3, "unique_key": "slot", "unique_values": ["x", "y", "z"]}

    def test_each_instance_gets_its_own_value_in_single_launches(self):
        engine, control = start(self.UNIQUE)
        engine.decide(control, control.state())
        assert [c.count for c in control.launches] == [1, 1, 1]
        assert [c.extravars for c in control.launches] == [
            {"slot": "x"},
            {"slot": "y"},
            {"slot": "z"},
        ]
        engine.decide(control, control.state())
        assert len(control.launches) == 3

    def test_no_launch_when_values_run_out(self):
        engine, control = start({**self.UNIQUE, "unique_values": "x,y"})
        engine.decide(control, control.state())
        assert [c.extravars["slot"] for c in control.launches] == ["x", "y"]
        assert engine.de_state == DE.DEVIATING
        engine.decide(control, control.state())
        assert len(control.launches) == 2

    def test_freed_value_is_reused(self):
        engine, control = start(self.UNIQUE)
        engine.decide(control, control.state())
        holder_of_y = control.launches[1].instance_ids[0]
        control.set(holder_of_y, S.FAILED)
        engine.decide(control, control.state())
        assert len(control.launches) == 4
        assert control.launches[3].extravars == {"slot": "y"}

    def test_values_held_by_existing_records_are_respected(self):
        control = FakeControl()
        control.add("old", extravars={"slot": "x"})
        control.add("gone", S.TERMINATED, extravars={"slot": "y"})
        engine, _ = start(self.UNIQUE, control)
        engine.decide(control, control.state())
        assert [c.extravars["slot"] for c in control.launches] == ["y", "z"]


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"preserve_n": -3}, "preserve_n must be >= 0"),
        ({"preserve_n": 1.5}, "preserve_n must be an integer"),
        ({"deployable_type": 1}, "deployable_type"),
        ({"iaas_site": ["a"]}, "iaas_site"),
        ({"iaas_allocation": 3}, "iaas_allocation"),
        ({"retirable_nodes": 5}, "retirable_nodes"),
        ({"retirable_nodes": [None]}, "retirable_nodes"),
        ({"unique_key": "k", "unique_values": {"a": 1}}, "unique_values"),
    ],
)
def test_validate_config_rejects(conf, message):
    with pytest.raises(BadRequestError, match=message):
        NeedyEngine.validate_config({**BASE, **conf})


def test_doc_names_every_key():
    doc = NeedyEngine.get_config_doc()
    for key in (
        "preserve_n",
        "deployable_type",
        "iaas_site",
        "iaas_allocation",
        "retirable_nodes",
        "unique_key",
        "unique_values",
    ):
        assert key in doc
