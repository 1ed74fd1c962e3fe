"""The no-server parts of the simulated instances' work: which queue each running
instance drains, the service's ``work_time`` option, and the sensor story's
command line and domain."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from epum.engines.loader import load_engine_class
from epum.engines.sensor import SensorEngine
from epum.sensors import validate_sensor_conf
from epum.sim import demo
from epum.sim.cloud import NodeView
from epum.sim.demo_sensor import MAXIMUM, MINIMUM, engine_conf
from epum.sim.provisioner import WORK_QUEUE_VAR, parse_args, read_config, work_queues
from epum.states import InstanceState

ROOT = Path(__file__).resolve().parents[2]


def node(instance_id: str, **vars: object) -> NodeView:
    return NodeView(instance_id, "l", InstanceState.RUNNING, "s", None, dict(vars), None, 0.0)


def test_each_node_whose_launch_vars_name_a_queue_drains_it():
    nodes = [node("a", work_queue="jobs"), node("b"), node("c", work_queue="")]
    nodes += [node("d", work_queue=7), node("e", **{WORK_QUEUE_VAR: "other"})]
    assert work_queues(nodes) == {"a": "jobs", "e": "other"}


def test_work_time_is_an_option_and_a_config_key(tmp_path):
    assert parse_args([]).work_time == 0.0  # no work unless asked
    assert parse_args(["--work-time", "0.5"]).work_time == 0.5
    config = tmp_path / "sim.yaml"
    config.write_text("work_time: 0.25\n")
    assert read_config(str(config))["work_time"] == 0.25
    assert parse_args(["--config", str(config)]).work_time == 0.25


def test_the_sensor_story_needs_a_broker(capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--story", "sensor"])
    assert exit_info.value.code == 2
    assert "--story sensor needs --amqp" in capsys.readouterr().err


def test_the_sensor_storys_domain_is_a_valid_sensor_domain():
    conf = engine_conf("q.jobs", "http://127.0.0.1:15672")
    SensorEngine.validate_config(conf)
    assert conf["provisioner_vars"] == {WORK_QUEUE_VAR: "q.jobs"}
    assert conf["rabbitmq_queue"] == "q.jobs"
    assert (conf["minimum_vms"], conf["maximum_vms"]) == (MINIMUM, MAXIMUM)


def test_the_config_example_for_the_sim_is_a_valid_sensor_domain_draining_its_queue():
    definition = yaml.safe_load((ROOT / "config" / "sim" / "work-queue.yaml").read_text())
    conf = definition["engine_conf"]
    validate_sensor_conf(conf)
    load_engine_class(definition["general"]["engine_class"]).validate_config(conf)
    assert conf["provisioner_vars"][WORK_QUEUE_VAR] == conf["rabbitmq_queue"]
