"""SimProvisioner and SimAgents: the simulated cloud speaks the protocol, in simulated time."""

from __future__ import annotations

import pytest

from epum.sim.agents import SimAgents, agent_address, node_of
from epum.sim.cloud import Delays, SimProvisioner
from epum.sim.world import Simulation
from epum.states import InstanceHealthState, InstanceState


class Recorder:
    """A sink that keeps every report and heartbeat it is given."""

    def __init__(self) -> None:
        self.infos: list[tuple[str, dict]] = []
        self.beats: list[tuple[str, dict, float | None]] = []

    def msg_instance_info(self, caller, content):
        self.infos.append((caller, content))

    def msg_heartbeat(self, caller, content, timestamp=None):
        self.beats.append((caller, content, timestamp))

    def states(self, node_id: str) -> list[str]:
        return [c["state"] for _, c in self.infos if c["node_id"] == node_id]


def launch(prov: SimProvisioner, node_id: str, site: str = "site1") -> None:
    prov.provision("launch-" + node_id, [node_id], "dt", site, vars={"node_id": node_id})


@pytest.fixture
def sink():
    return Recorder()


def test_launch_walks_the_states_on_time(sink):
    prov = SimProvisioner(sink, delays=Delays(requested=0, pending=1, started=2, running=3))
    launch(prov, "n1")
    assert sink.infos == [], "nothing happens before a step"
    prov.step(100.0)
    assert sink.states("n1") == [InstanceState.REQUESTED]
    prov.step(100.5)
    prov.step(101.0)
    assert sink.states("n1")[-1] == InstanceState.PENDING
    prov.step(105.9)
    assert sink.states("n1")[-1] == InstanceState.STARTED
    prov.step(106.0)
    assert sink.states("n1") == list(
        (
            InstanceState.REQUESTED,
            InstanceState.PENDING,
            InstanceState.STARTED,
            InstanceState.RUNNING,
        )
    )
    counters = [c["update_counter"] for _, c in sink.infos]
    assert counters == sorted(counters) and len(set(counters)) == len(counters)
    caller, running = sink.infos[-1]
    assert caller == "provisioner"
    assert running["public_ip"] and running["iaas_id"] and running["site"] == "site1"
    assert prov.nodes(InstanceState.RUNNING)[0].instance_id == "n1"
    assert not prov.pending_work()


def test_one_big_step_reports_every_state_in_order(sink):
    prov = SimProvisioner(sink)
    launch(prov, "n1")
    launch(prov, "n2")
    prov.step(0.0)
    prov.step(1000.0)
    for node in ("n1", "n2"):
        assert sink.states(node) == list(
            (
                InstanceState.REQUESTED,
                InstanceState.PENDING,
                InstanceState.STARTED,
                InstanceState.RUNNING,
            )
        )


def test_repeated_provision_is_the_same_request(sink):
    prov = SimProvisioner(sink)
    launch(prov, "n1")
    launch(prov, "n1")
    prov.step(0.0)
    launch(prov, "n1")
    prov.step(1000.0)
    assert sink.states("n1").count(InstanceState.RUNNING) == 1
    assert len(prov.nodes()) == 1
    assert len(prov.requests) == 3


def test_terminate_walks_to_terminated_and_repeats_terminal_records(sink):
    prov = SimProvisioner(sink, delays=Delays(terminating=0, terminated=2))
    launch(prov, "n1")
    prov.step(0.0)
    prov.step(100.0)
    prov.terminate_nodes(["n1", "ghost"])
    prov.step(101.0)
    assert sink.states("n1")[-1] == InstanceState.TERMINATING
    assert sink.states("ghost") == [InstanceState.TERMINATED], "unknown nodes are TERMINATED"
    prov.terminate_nodes(["n1"])
    prov.step(103.0)
    assert sink.states("n1")[-1] == InstanceState.TERMINATED
    assert sink.states("n1").count(InstanceState.TERMINATING) == 1
    prov.terminate_nodes(["n1"])
    prov.step(104.0)
    assert sink.states("n1")[-2:] == [InstanceState.TERMINATED, InstanceState.TERMINATED]


def test_terminate_during_launch_cancels_the_rest(sink):
    prov = SimProvisioner(sink)
    launch(prov, "n1")
    prov.step(0.0)
    prov.terminate_nodes(["n1"])
    prov.step(1.0)
    prov.step(1000.0)
    assert InstanceState.RUNNING not in sink.states("n1")
    assert sink.states("n1")[-1] == InstanceState.TERMINATED


def test_fail_hook_fails_a_live_node_at_the_next_step(sink):
    prov = SimProvisioner(sink)
    launch(prov, "n1")
    prov.step(0.0)
    prov.step(100.0)
    prov.fail("n1", "disk on fire")
    prov.fail("unknown")
    assert sink.states("n1")[-1] == InstanceState.RUNNING
    prov.step(101.0)
    _, content = sink.infos[-1]
    assert content["state"] == InstanceState.FAILED
    assert content["errors"] == ["disk on fire"]
    prov.step(1000.0)
    assert sink.states("n1")[-1] == InstanceState.FAILED


def test_site_failure_rate_is_deterministic_with_a_seed(sink):
    def failed(seed: int) -> list[str]:
        rec = Recorder()
        prov = SimProvisioner(rec, failure_rates={"flaky": 0.5}, seed=seed)
        for n in range(40):
            launch(prov, f"f{n}", site="flaky")
            launch(prov, f"s{n}", site="solid")
        prov.step(0.0)
        prov.step(1000.0)
        return sorted(c["node_id"] for _, c in rec.infos if c["state"] == InstanceState.FAILED)

    first = failed(seed=7)
    assert first == failed(seed=7)
    assert first != failed(seed=8)
    assert 5 < len(first) < 35
    assert all(n.startswith("f") for n in first), "a site without a rate never fails"


def test_failed_launch_never_starts(sink):
    prov = SimProvisioner(sink, default_failure_rate=1.0)
    launch(prov, "n1")
    prov.step(0.0)
    prov.step(1000.0)
    assert sink.states("n1") == [
        InstanceState.REQUESTED,
        InstanceState.PENDING,
        InstanceState.FAILED,
    ]


def test_dump_state_resends_known_records(sink):
    prov = SimProvisioner(sink)
    launch(prov, "n1")
    prov.step(0.0)
    prov.step(1000.0)
    last = sink.infos[-1][1]
    prov.dump_state(["n1", "unknown"])
    prov.step(1001.0)
    assert sink.infos[-1][1] == last
    assert prov.describe_nodes(["n1", "unknown"]) == [last]
    assert prov.describe_nodes() == [last]


def running_cloud(sink, *nodes: str) -> SimProvisioner:
    prov = SimProvisioner(None)
    for node in nodes:
        launch(prov, node)
    prov.step(0.0)
    prov.step(100.0)
    return prov


def test_agents_heartbeat_every_interval(sink):
    prov = running_cloud(sink, "n1", "n2")
    agents = SimAgents(sink, prov, interval=10.0)
    agents.step(100.0)
    agents.step(105.0)
    agents.step(110.0)
    assert [(c, b["node_id"], t) for c, b, t in sink.beats] == [
        (agent_address("n1"), "n1", 100.0),
        (agent_address("n2"), "n2", 100.0),
        (agent_address("n1"), "n1", 110.0),
        (agent_address("n2"), "n2", 110.0),
    ]
    assert all(b["state"] == InstanceHealthState.OK for _, b, _ in sink.beats)
    assert node_of(agent_address("n1")) == "n1"
    assert node_of("somebody") is None


def test_agents_only_for_running_nodes(sink):
    prov = SimProvisioner(None)
    launch(prov, "n1")
    prov.step(0.0)
    agents = SimAgents(sink, prov, interval=10.0)
    agents.step(0.0)
    assert sink.beats == []
    prov.step(100.0)
    agents.step(100.0)
    assert len(sink.beats) == 1
    prov.terminate_nodes(["n1"])
    prov.step(101.0)
    agents.step(200.0)
    assert len(sink.beats) == 1, "a terminating node's agent is gone"


def test_dump_state_brings_a_heartbeat_at_the_next_step(sink):
    prov = running_cloud(sink, "n1")
    agents = SimAgents(sink, prov, interval=10.0)
    agents.step(100.0)
    agents.dump_state(agent_address("n1"), mock_timestamp=101.0)
    agents.dump_state("not-an-agent")
    agents.step(102.0)
    assert [t for _, _, t in sink.beats] == [100.0, 102.0]
    agents.step(111.0)
    assert [t for _, _, t in sink.beats] == [100.0, 102.0]
    agents.step(112.0)
    assert [t for _, _, t in sink.beats] == [100.0, 102.0, 112.0]


def test_silent_agent_sends_and_answers_nothing_until_resumed(sink):
    prov = running_cloud(sink, "n1")
    agents = SimAgents(sink, prov, interval=10.0)
    agents.go_silent("n1")
    agents.step(100.0)
    agents.dump_state(agent_address("n1"))
    agents.step(101.0)
    assert sink.beats == []
    agents.resume("n1")
    agents.step(102.0)
    assert [t for _, _, t in sink.beats] == [102.0]


def test_process_error_is_reported_at_once_until_recovered(sink):
    prov = running_cloud(sink, "n1")
    agents = SimAgents(sink, prov, interval=10.0)
    agents.step(100.0)
    agents.report_error("n1", "boom")
    agents.step(101.0)
    _, beat, _ = sink.beats[-1]
    assert beat["state"] == InstanceHealthState.PROCESS_ERROR
    assert beat["error"] == "boom"
    assert beat["failed_processes"][0]["error"] == "boom"
    agents.recover("n1")
    agents.step(102.0)
    assert sink.beats[-1][1] == {"node_id": "n1", "state": InstanceHealthState.OK}


def test_agents_need_a_positive_interval():
    with pytest.raises(ValueError):
        SimAgents(None, SimProvisioner(), interval=0)


# the simulation against the real facade --------------------------------------------


def add_domain(sim: Simulation, size: int, **health) -> None:
    epum = sim.epum
    epum.msg_add_domain_definition(
        "d", {"general": {"engine_class": "simplest"}, "engine_conf": {"epuworker_type": "dt"}}
    )
    config = {"engine_conf": {"preserve_n": size}}
    if health:
        config["health"] = {"monitor_health": True, **health}
    epum.msg_add_domain("owner", "dom", "d", config)


def live(sim: Simulation) -> list[dict]:
    records = sim.epum.msg_describe_domain("owner", "dom")["instances"]
    return [r for r in records if r["state"] < InstanceState.TERMINATING]


def test_simulation_brings_a_domain_to_size():
    with Simulation() as sim:
        add_domain(sim, 4)
        assert sim.run(60, until=lambda: len(sim.provisioner.nodes(InstanceState.RUNNING)) == 4)
        sim.run(5)
        records = live(sim)
        assert len(records) == 4
        assert {r["state"] for r in records} == {InstanceState.RUNNING}
        assert all(r["public_ip"] for r in records)
        assert len(sim.provisioner.requests) == 4


def test_simulation_replaces_failed_launches_on_a_flaky_site():
    with Simulation(failure_rates={"flaky": 0.5}, seed=3) as sim:
        sim.epum.msg_add_domain_definition(
            "d",
            {
                "general": {"engine_class": "simplest"},
                "engine_conf": {"epuworker_type": "dt", "force_site": "flaky"},
            },
        )
        sim.epum.msg_add_domain("owner", "dom", "d", {"engine_conf": {"preserve_n": 3}})
        assert sim.run(300, until=lambda: len(sim.provisioner.nodes(InstanceState.RUNNING)) == 3)
        assert len(sim.provisioner.nodes(InstanceState.FAILED)) > 0
        sim.run(5)
        assert len(live(sim)) == 3


def test_simulation_heartbeats_keep_instances_healthy_and_silence_is_noticed():
    with Simulation(heartbeat_interval=5.0) as sim:
        add_domain(sim, 2, boot_timeout=30, missing_timeout=10, really_missing_timeout=5)
        assert sim.run(60, until=lambda: len(sim.provisioner.nodes(InstanceState.RUNNING)) == 2)
        sim.run(60)
        records = live(sim)
        assert {r["health"] for r in records} == {InstanceHealthState.OK}
        assert {r["agent_address"] for r in records} == {
            agent_address(r["instance_id"]) for r in records
        }
        silent = records[0]["instance_id"]
        sim.agents.go_silent(silent)
        assert sim.run(60, until=lambda: silent not in {r["instance_id"] for r in live(sim)})
        assert sim.run(60, until=lambda: len(sim.provisioner.nodes(InstanceState.RUNNING)) == 2)
