"""Knocking a worker over: two epum-worker daemons on one ZooKeeper store, a
simulated provisioner service, everything over RabbitMQ; the deciding worker
is killed with SIGKILL and the survivor takes over and keeps the domain.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kazoo.client import KazooClient

from epum.messaging import EPUManagementClient, RpcClient
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from epum.states import InstanceState
from tests import rabbit, zk_server
from tests.kit import wait_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.zookeeper]

amqp_url = rabbit.amqp_url
names = rabbit.names
zookeeper = zk_server.zk_server

BIN = Path(sys.executable).parent
SESSION_TIMEOUT = 2.0


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """``start(name, *argv)``: a subprocess logging to a file, killed after the test."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def start(name: str, *argv: str) -> subprocess.Popen:
        log = tmp_path / f"{name}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        started.append((proc, log))
        return proc

    yield start
    for proc, _ in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    for _, log in started:  # shown only when the test fails
        print(f"----- {log.name}\n{log.read_text()[-4000:]}")


def leader_of(hosts: str, base_path: str, role: str = "decider") -> str:
    """The election identifier (``<worker_name>@<host>:<pid>``) of ``role``'s leader."""
    client = KazooClient(hosts=hosts)
    client.start(timeout=10)
    try:
        contenders = client.Election(f"{base_path}/elections/{role}").contenders()
        return contenders[0] if contenders else ""
    finally:
        client.stop()
        client.close()


def start_worker_pair(
    processes, tmp_path: Path, amqp_url: str, names: Names, hosts: str, **epumanagement: Any
) -> tuple[str, dict[str, subprocess.Popen]]:
    """Two epum-worker processes (``w1``, ``w2``) on one ZooKeeper store under
    ``/<sysname>``, deciding every second, with ``epumanagement`` keys added;
    returns the store's base path and the processes by name."""
    base_path = f"/{names.sysname}"
    config = tmp_path / "epum.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {
                    "amqp": {"url": amqp_url, "sysname": names.sysname},
                    "zookeeper": {"hosts": hosts, "path": base_path, "timeout": SESSION_TIMEOUT},
                },
                "epumanagement": {
                    "persistence_type": "zookeeper",
                    "decider_loop_interval": 1.0,
                    **epumanagement,
                },
            }
        )
    )
    workers = {}
    for name in ("w1", "w2"):
        own = tmp_path / f"{name}.yaml"
        own.write_text(f"worker_name: {names.sysname}-{name}\n")
        workers[name] = processes(
            name, str(BIN / "epum-worker"), "--config", str(config), "--config", str(own)
        )
    return base_path, workers


def test_the_survivor_keeps_the_domain_when_the_decider_is_killed(
    amqp_url: str, names: Names, zookeeper, processes, tmp_path: Path
):
    base_path, workers = start_worker_pair(processes, tmp_path, amqp_url, names, zookeeper.hosts)
    processes(
        "provisioner",
        sys.executable,
        "-m",
        "epum.sim.provisioner",
        "--amqp-url",
        amqp_url,
        "--sysname",
        names.sysname,
        "--pending",
        "0.2",
        "--started",
        "0.2",
        "--running",
        "0.2",
    )
    rpc = RpcClient(make_connection(amqp_url), names, "tester", timeout=10)
    client = EPUManagementClient(rpc)
    try:
        wait_until(lambda: _answers(client), 30, "the workers to serve")
        client.add_domain_definition("keep", {"general": {"engine_class": "simplest"}})
        client.add_domain("pool", "keep", {"engine_conf": {"preserve_n": 2}}, caller="alice")

        def running() -> list[dict]:
            domain = client.describe_domain("pool", caller="alice") or {"instances": []}
            return [i for i in domain["instances"] if i["state"] == InstanceState.RUNNING]

        wait_until(lambda: len(running()) == 2, 30, "two running instances")
        leader = leader_of(zookeeper.hosts, base_path)
        victim = next(name for name in workers if leader.startswith(f"{names.sysname}-{name}@"))
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(10)

        # the survivor serves at once, and decides once the victim's session expires
        client.reconfigure_domain("pool", {"engine_conf": {"preserve_n": 3}}, caller="alice")
        wait_until(lambda: len(running()) == 3, 30, "the survivor to grow the domain")
        survivor = next(name for name in workers if name != victim)
        assert leader_of(zookeeper.hosts, base_path).startswith(f"{names.sysname}-{survivor}@")
        instances = client.describe_domain("pool", caller="alice")["instances"]
        assert len(instances) == 3, "no instance was launched twice across the failover"
    finally:
        rpc.close()


def _answers(client: EPUManagementClient) -> bool:
    try:
        client.list_domain_definitions()
    except Exception:
        return False
    return True
