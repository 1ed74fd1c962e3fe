"""The simulated cloud's and agents' faults on demand: contextualization, vanish, zombie."""

from __future__ import annotations

from epum.sim.agents import SimAgents, agent_address
from epum.sim.cloud import SimProvisioner
from epum.states import InstanceState
from tests.unit.test_sim import Recorder, launch


def test_a_failed_contextualization_ends_running_failed_instead_of_running():
    sink = Recorder()
    prov = SimProvisioner(sink)
    launch(prov, "n1")
    prov.step(0.0)
    prov.fail_contextualization("n1")
    prov.fail_contextualization("unknown")
    prov.step(100.0)
    assert sink.states("n1")[-1] == InstanceState.RUNNING_FAILED
    assert InstanceState.RUNNING not in sink.states("n1")
    assert sink.infos[-1][1]["errors"] == ["simulated contextualization failure"]


def test_a_running_node_whose_contextualization_fails_is_running_failed_at_once():
    sink = Recorder()
    prov = SimProvisioner(sink)
    launch(prov, "n1")
    prov.step(0.0)
    prov.step(100.0)
    prov.fail_contextualization("n1")
    prov.step(101.0)
    assert sink.states("n1")[-2:] == [InstanceState.RUNNING, InstanceState.RUNNING_FAILED]


def test_a_vanished_node_is_terminated_and_its_zombie_agent_goes_on():
    sink = Recorder()
    prov = SimProvisioner(sink)
    agents = SimAgents(sink, prov, interval=5.0)
    launch(prov, "n1")
    prov.step(0.0)
    prov.step(100.0)
    prov.vanish("n1")
    agents.zombie("n1")
    prov.step(101.0)
    assert sink.states("n1")[-1] == InstanceState.TERMINATED
    agents.step(101.0)
    agents.step(106.0)
    assert [b[0] for b in sink.beats] == [agent_address("n1")] * 2
    prov.vanish("n1")  # already terminal: nothing more
    prov.step(107.0)
    assert sink.states("n1").count(InstanceState.TERMINATED) == 1


def test_without_zombie_a_terminated_node_sends_nothing():
    sink = Recorder()
    prov = SimProvisioner(sink)
    agents = SimAgents(sink, prov, interval=5.0)
    launch(prov, "n1")
    prov.step(0.0)
    prov.step(100.0)
    prov.vanish("n1")
    prov.step(101.0)
    agents.step(101.0)
    assert sink.beats == []
