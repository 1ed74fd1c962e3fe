"""The fault matrix: three epum-worker processes on one ZooKeeper store and a
RabbitMQ node of the test's own, a simulated provisioner process, and one
domain held at an exact size while the faults of the matrix strike one by one.

Each case strikes its fault, then changes the domain's size (3 -> 4 -> 3 ...)
so the workers must act after it, and passes when, within ``CONVERGE``:

- epum's domain holds exactly the target, every instance RUNNING;
- the provisioner holds exactly the target of live nodes;
- the provisioner was asked for exactly as many nodes as the size changes
  need (``expected_launches``): no launch twice, none lost, no spurious
  replacement;
- once the victims are restarted, every role has a leader among the live
  workers and every live worker contends for every role.

The workers reach ZooKeeper through a ``TcpProxy``, so a cut blocks them
only; the session timeout is 4 s, so a 2 s cut keeps the sessions and an
8 s cut expires them.  The broker is a private node (``tests/private_rabbit.py``),
really stopped and started, never the shared one.  A cut or outage lasts its
stated length: ``hold`` is the fault itself, not a wait for an effect.

The normal test run takes the ``fault_subset`` cases; ``pytest
--fault-matrix tests/system/test_fault_matrix.py`` takes them all.  The
report (``tests/fault_report.py``) is printed at the end of the run.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from kazoo.client import KazooClient

from epum.messaging import EPUManagementClient, RpcClient
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from epum.states import InstanceState
from tests import fault_report, zk_server
from tests.kit import wait_until
from tests.private_rabbit import PrivateBroker
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.rabbitmq, pytest.mark.zookeeper, pytest.mark.fault_matrix]

zookeeper = zk_server.zk_server

BIN = Path(sys.executable).parent
WORKERS = ("w1", "w2", "w3")
ROLES = ("decider", "doctor", "reaper")
SESSION_TIMEOUT = 4.0
#: How long a case may take to converge after its fault.
CONVERGE = 90.0
SIZES = (3, 4)


def hold(seconds: float) -> None:
    """Keep a fault in place for its stated length."""
    threading.Event().wait(seconds)


@dataclass
class Rig:
    """The processes of the matrix, the store's address and what the domain should be."""

    folder: Path
    broker: PrivateBroker
    proxy: TcpProxy
    zk_hosts: str
    names: Names
    base_path: str
    config: Path
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    others: list[subprocess.Popen] = field(default_factory=list)
    target: int = SIZES[0]
    expected_launches: int = SIZES[0]
    client: EPUManagementClient | None = None
    rpc: RpcClient | None = None

    # processes -----------------------------------------------------------
    def start_worker(self, name: str) -> None:
        """Start (or restart) worker ``name``, logging to its file."""
        own = self.folder / f"{name}.yaml"
        own.write_text(f"worker_name: {self.names.sysname}-{name}\n")
        with open(self.folder / f"{name}.log", "a") as out:
            self.workers[name] = subprocess.Popen(
                [str(BIN / "epum-worker"), "--config", str(self.config), "--config", str(own)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop_worker(self, name: str, sig: int) -> None:
        """Send ``sig`` to worker ``name`` and wait for it to end."""
        proc = self.workers[name]
        proc.send_signal(sig)
        proc.wait(30)

    def dead_workers(self) -> list[str]:
        """The workers whose process has ended."""
        return [name for name, proc in self.workers.items() if proc.poll() is not None]

    # elections -----------------------------------------------------------
    def contenders(self) -> dict[str, list[str]]:
        """Each role's contenders (election identifiers, the leader first)."""
        client = KazooClient(hosts=self.zk_hosts)
        client.start(timeout=10)
        try:
            return {
                role: client.Election(f"{self.base_path}/elections/{role}").contenders()
                for role in ROLES
            }
        finally:
            client.stop()
            client.close()

    def worker_of(self, identifier: str) -> str | None:
        """The worker name behind an election identifier ``<worker_name>@<host>:<pid>``."""
        for name in WORKERS:
            if identifier.startswith(f"{self.names.sysname}-{name}@"):
                return name
        return None

    def leader(self, role: str) -> str:
        """The worker leading ``role`` now."""
        name = self.worker_of(self.contenders()[role][0])
        assert name is not None
        return name

    def elections_settled(self) -> bool:
        """Every live worker contends for every role, and only live ones (by pid)."""
        live = {str(proc.pid) for proc in self.workers.values() if proc.poll() is None}
        return all(
            {c.rsplit(":", 1)[-1] for c in seats} == live for seats in self.contenders().values()
        )

    # the domain ----------------------------------------------------------
    def provisioner_nodes(self) -> list[dict]:
        """Every node the simulated provisioner was ever asked for."""
        assert self.rpc is not None
        return self.rpc.call("provisioner", "describe_nodes", timeout=5, nodes=None)

    def converged(self) -> bool:
        """The domain and the provisioner hold exactly the target, launched exactly once."""
        assert self.client is not None
        try:
            instances = self.client.describe_domain("pool", caller="alice")["instances"]
            nodes = self.provisioner_nodes()
        except Exception:  # a worker or the broker still coming back
            return False
        alive = [i for i in instances if i["state"] < InstanceState.TERMINATING]
        live_nodes = [n for n in nodes if n["state"] < InstanceState.TERMINATING]
        return (
            len(alive) == self.target
            and all(i["state"] == InstanceState.RUNNING for i in alive)
            and len(live_nodes) == self.target
            and len(nodes) == self.expected_launches
        )

    def resize(self) -> None:
        """Move the target to the other size and ask the domain for it."""
        new = SIZES[1] if self.target == SIZES[0] else SIZES[0]
        self.expected_launches += max(0, new - self.target)
        self.target = new
        assert self.client is not None

        def asked() -> bool:
            try:
                self.client.reconfigure_domain(
                    "pool", {"engine_conf": {"preserve_n": new}}, caller="alice"
                )
            except Exception:  # a worker or the broker still coming back
                return False
            return True

        wait_until(asked, CONVERGE, "the domain to take its new size")


def _serves(client: EPUManagementClient) -> bool:
    try:
        client.list_domain_definitions()
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def rig(zookeeper, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """The workers, broker, proxy and provisioner, with the domain converged at 3."""
    folder = tmp_path_factory.mktemp("fault-matrix")
    broker = PrivateBroker()
    proxy = TcpProxy(zookeeper.host, zookeeper.port)
    names = Names(f"fm{uuid.uuid4().hex[:8]}")
    base_path = f"/{names.sysname}"
    config = folder / "epum.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {
                    "amqp": {"url": broker.url, "sysname": names.sysname, "heartbeat": 2},
                    "zookeeper": {
                        "hosts": proxy.hosts,
                        "path": base_path,
                        "timeout": SESSION_TIMEOUT,
                    },
                },
                "epumanagement": {
                    "persistence_type": "zookeeper",
                    "decider_loop_interval": 0.5,
                },
            }
        )
    )
    rig = Rig(folder, broker, proxy, zookeeper.hosts, names, base_path, config)
    try:
        broker.start()
        for name in WORKERS:
            rig.start_worker(name)
        with open(folder / "provisioner.log", "w") as out:
            rig.others.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "epum.sim.provisioner",
                        *("--amqp-url", broker.url, "--sysname", names.sysname),
                        *("--pending", "0.2", "--started", "0.2"),
                        *("--running", "0.2", "--terminated", "0.2"),
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        rig.rpc = RpcClient(make_connection(broker.url), names, "tester", timeout=10)
        rig.client = EPUManagementClient(rig.rpc)
        wait_until(lambda: _serves(rig.client), 60, "the workers to serve")
        rig.client.add_domain_definition("keep", {"general": {"engine_class": "simplest"}})
        rig.client.add_domain(
            "pool", "keep", {"engine_conf": {"preserve_n": rig.target}}, caller="alice"
        )
        wait_until(rig.converged, CONVERGE, "the domain to reach its first size")
        wait_until(rig.elections_settled, CONVERGE, "every worker to contend for every role")
        yield rig
    finally:
        if rig.rpc is not None:
            rig.rpc.close()
        for proc in [*rig.workers.values(), *rig.others]:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        broker.close()
        proxy.close()


# the faults ----------------------------------------------------------------
def signal_leader(role: str, sig: int) -> Callable[[Rig], None]:
    """A fault: ``sig`` to the worker leading ``role``."""

    def strike(rig: Rig) -> None:
        rig.stop_worker(rig.leader(role), sig)

    return strike


def kill_follower(rig: Rig) -> None:
    """A fault: SIGKILL to a worker leading no role (or, if every one leads, not the decider)."""
    leaders = {rig.worker_of(seats[0]) for seats in rig.contenders().values()}
    followers = [name for name in WORKERS if name not in leaders]
    decider = rig.leader("decider")
    victim = followers[0] if followers else next(n for n in WORKERS if n != decider)
    rig.stop_worker(victim, signal.SIGKILL)


def zookeeper_cut(seconds: float) -> Callable[[Rig], None]:
    """A fault: every worker's ZooKeeper connections stall for ``seconds``."""

    def strike(rig: Rig) -> None:
        rig.proxy.block()
        try:
            hold(seconds)
        finally:
            rig.proxy.unblock()

    return strike


def broker_restart(seconds: float) -> Callable[[Rig], None]:
    """A fault: the broker stops, stays down ``seconds``, and starts again."""

    def strike(rig: Rig) -> None:
        rig.broker.stop()
        hold(seconds)
        rig.broker.start()

    return strike


def kill_everyone(rig: Rig) -> None:
    """A fault: SIGKILL to every worker, then all of them start again."""
    for name in WORKERS:
        rig.stop_worker(name, signal.SIGKILL)
    for name in WORKERS:
        rig.start_worker(name)


subset = pytest.mark.fault_subset

#: The matrix: case name -> its fault (the ``fault_subset`` ones run in every test run).
CASES = {
    "decider leader SIGTERM": signal_leader("decider", signal.SIGTERM),
    "decider leader SIGKILL": pytest.param(signal_leader("decider", signal.SIGKILL), marks=subset),
    "doctor leader SIGTERM": signal_leader("doctor", signal.SIGTERM),
    "doctor leader SIGKILL": signal_leader("doctor", signal.SIGKILL),
    "follower SIGKILL": pytest.param(kill_follower, marks=subset),
    "ZooKeeper cut 2 s": pytest.param(zookeeper_cut(2.0), marks=subset),
    "ZooKeeper cut 8 s": zookeeper_cut(8.0),
    "broker restart 10 s": broker_restart(10.0),
    "every worker SIGKILL": kill_everyone,
}


@pytest.mark.parametrize("strike", list(CASES.values()), ids=list(CASES))
def test_the_domain_converges_after(rig: Rig, strike, request: pytest.FixtureRequest) -> None:
    case = request.node.callspec.id
    started = time.monotonic()
    passed, detail = False, ""
    try:
        strike(rig)
        rig.resize()
        wait_until(rig.converged, CONVERGE, f"the domain to converge after {case}")
        seconds = time.monotonic() - started
        for name in rig.dead_workers():
            rig.start_worker(name)
        wait_until(rig.elections_settled, CONVERGE, "every live worker to contend for every role")
        leaders = {role: rig.leader(role) for role in ROLES}
        detail = "leaders " + ", ".join(f"{role} {name}" for role, name in leaders.items())
        passed = True
    finally:
        if not passed:
            seconds = time.monotonic() - started
            detail = "see the workers' logs in " + str(rig.folder)
        fault_report.OUTCOMES.append(
            fault_report.Outcome(
                case,
                passed,
                seconds,
                len(rig.provisioner_nodes()) if passed else -1,
                rig.expected_launches,
                detail,
            )
        )
