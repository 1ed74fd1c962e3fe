"""The simulated provisioner service's fault RPC and its config file, on a real RabbitMQ."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from epum.errors import BadRequestError
from epum.sim.cloud import Delays
from epum.sim.provisioner import SimProvisionerService
from epum.states import InstanceState
from tests import rabbit
from tests.integration.test_sim_provisioner import (  # noqa: F401 (fixtures)
    EPUM_SERVICE,
    epum,
    records,
    rpc,
    wait_until,
)

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names

SIM = Path(sys.executable).with_name("epum-sim-provisioner")


def state_of(epum, node_id: str) -> str | None:  # noqa: F811
    return next((r["state"] for r in records(epum) if r["instance_id"] == node_id), None)


def test_faults_on_demand_over_the_wire(amqp_url, names, epum, rpc):  # noqa: F811
    service = SimProvisionerService(
        amqp_url,
        names.sysname,
        epum_service=EPUM_SERVICE,
        delays=Delays(pending=0.05, started=0.05, running=0.05, terminated=0.05),
        heartbeat_interval=0.2,
        tick=0.05,
    )
    with service:
        epum.msg_add_domain_definition("d", {"general": {"engine_class": "simplest"}})
        epum.msg_add_domain("owner", "dom", "d", {"engine_conf": {"preserve_n": 4}})
        epum._run_decisions()
        assert wait_until(lambda: len(service.cloud.nodes(InstanceState.RUNNING)) == 4)
        a, b, c, d = sorted(n.instance_id for n in service.cloud.nodes(InstanceState.RUNNING))

        rpc.call("provisioner", "fail", node_id=a, reason="pulled the plug")
        rpc.call("provisioner", "fail_contextualization", node_id=b)
        rpc.call("provisioner", "zombie", node_id=c)
        rpc.call("provisioner", "silence", node_id=d)
        assert wait_until(lambda: state_of(epum, a) == InstanceState.FAILED)
        assert wait_until(lambda: state_of(epum, b) == InstanceState.RUNNING_FAILED)
        assert wait_until(lambda: state_of(epum, c) == InstanceState.TERMINATED)
        beats = len([x for x in service.agents.beats if x.content["node_id"] == c])
        assert wait_until(
            lambda: len([x for x in service.agents.beats if x.content["node_id"] == c]) > beats + 1
        ), "the zombie's agent heartbeats on"
        silent = len([x for x in service.agents.beats if x.content["node_id"] == d])
        assert wait_until(lambda: len(service.agents.beats) > silent + 6)
        assert len([x for x in service.agents.beats if x.content["node_id"] == d]) == silent

        with pytest.raises(BadRequestError, match="node_id must be a non-empty string"):
            rpc.call("provisioner", "fail", node_id="")


def test_agent_faults_need_agents(amqp_url, names, rpc):  # noqa: F811
    service = SimProvisionerService(amqp_url, names.sysname, epum_service=EPUM_SERVICE, tick=0.05)
    with service, pytest.raises(BadRequestError, match="silence needs agents"):
        rpc.call("provisioner", "silence", node_id="n1")


def test_the_console_script_reads_its_config_file(amqp_url, names, tmp_path):
    config = tmp_path / "sim.yaml"
    config.write_text(
        f"amqp_url: {amqp_url}\nsysname: {names.sysname}\ntick: 0.05\n"
        "heartbeat_interval: 0.5\nfailure_rates: {flaky: 0.5}\n"
    )
    proc = subprocess.Popen([str(SIM), "--config", str(config)], stderr=subprocess.PIPE, text=True)
    from epum.messaging import RpcClient
    from epum.messaging.connection import make_connection

    client = RpcClient(make_connection(amqp_url), names, "tester", timeout=5)
    try:
        assert wait_until(lambda: _answers(client), timeout=20)
    finally:
        client.close()
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "simulated provisioner serving" in err


def _answers(client) -> bool:
    try:
        return client.call("provisioner", "describe_nodes") == []
    except Exception:
        return False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tick: fast\n", "tick has the wrong type (str)"),
        ("tik: 1\n", "unknown key 'tik'"),
        ("failure_rates: {s1: 2}\n", "a probability is between 0 and 1"),
        ("- a list\n", "must hold a mapping"),
    ],
)
def test_a_bad_config_file_is_named(tmp_path, text, message):
    config = tmp_path / "sim.yaml"
    config.write_text(text)
    done = subprocess.run(
        [str(SIM), "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1
