"""Replay determinism on a recorded trace: two epum-worker processes on one
ZooKeeper store and the simulated provisioner as a process, a domain grown
and shrunk by reconfigures; ``epumctl domain export`` writes its trace and
``epum replay`` of it, with the engine and config that made it, makes the
same decisions (the same actions in the same order, each within one pass
interval of the recorded one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from epum.messaging import EPUManagementClient, RpcClient
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from epum.replay.run import TICK, decisions_of, replay, same_decisions
from epum.replay.trace import Trace
from epum.states import InstanceState
from tests import rabbit, zk_server
from tests.kit import wait_until
from tests.system.test_failover import _answers, processes, start_worker_pair

pytestmark = [pytest.mark.rabbitmq, pytest.mark.zookeeper]

amqp_url = rabbit.amqp_url
names = rabbit.names
zookeeper = zk_server.zk_server
__all__ = ["processes"]  # the fixture, used by name

BIN = Path(sys.executable).parent
SIZES = (2, 3, 1)


def test_a_recorded_trace_replays_to_the_same_decisions(
    amqp_url: str, names: Names, zookeeper, processes, tmp_path: Path
):
    start_worker_pair(processes, tmp_path, amqp_url, names, zookeeper.hosts)
    processes(
        "provisioner",
        sys.executable,
        "-m",
        "epum.sim.provisioner",
        *("--amqp-url", amqp_url, "--sysname", names.sysname),
        *("--pending", "0.2", "--started", "0.2", "--running", "0.2", "--terminated", "0.2"),
    )
    rpc = RpcClient(make_connection(amqp_url), names, "tester", timeout=10)
    client = EPUManagementClient(rpc)
    try:
        wait_until(lambda: _answers(client), 30, "the workers to serve")
        client.add_domain_definition("keep", {"general": {"engine_class": "simplest"}})

        def running() -> int:
            domain = client.describe_domain("pool", caller="alice")
            alive = [i for i in domain["instances"] if i["state"] < InstanceState.TERMINATING]
            if all(i["state"] == InstanceState.RUNNING for i in alive):
                return len(alive)
            return -1

        for n, size in enumerate(SIZES):
            conf = {"engine_conf": {"preserve_n": size}}
            if n == 0:
                client.add_domain("pool", "keep", conf, caller="alice")
            else:
                client.reconfigure_domain("pool", conf, caller="alice")
            wait_until(lambda size=size: running() == size, 30, f"{size} running instances")
    finally:
        rpc.close()

    exported = subprocess.run(
        [
            str(BIN / "epumctl"),
            *("--amqp-url", amqp_url, "--sysname", names.sysname, "--caller", "alice"),
            *("domain", "export", "pool", "--decide-every", "1"),  # the workers' interval
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert exported.returncode == 0, exported.stderr
    path = tmp_path / "trace.json"
    path.write_text(exported.stdout)
    trace = Trace.from_json(json.loads(exported.stdout))

    # the trace starts from the config then running, and carries the changes after it
    assert trace.config["engine_conf"]["preserve_n"] == SIZES[0]
    assert [c["preserve_n"] for _, c in trace.config_changes] == list(SIZES[1:])
    made = decisions_of(trace.history)
    assert [(do, count) for _, do, count, _ in made] == [
        ("launch", 2),
        ("launch", 1),
        ("destroy", 2),
    ]
    again = replay(trace)
    assert same_decisions(trace.history, again.history, trace.decide_every + TICK), (
        made,
        decisions_of(again.history),
    )

    printed = subprocess.run(
        [str(BIN / "epum"), "replay", str(path), "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("the replay made the same decisions"), printed.stdout
