"""A sensor domain scaled by the load the simulated instances carry, all in processes.

An ``epum-worker`` (memory store, its collector polling every half second)
and the simulated provisioner (``epum.sim.provisioner --work-time``) run as
processes on the real broker; the domain's launch vars name a work queue,
so every instance the sim runs drains it, one message per work time, and
the ``rabbitmq`` source reads the queue through the real management API.
The test only publishes jobs and watches ``describe_domain``: it never
learns an instance id.  The domain holds at its minimum while the queue is
empty, grows to its maximum under a backlog (the consumers the source sees
growing with it), and shrinks back once the instances have drained it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kombu import Connection, Queue

from epum.messaging import EPUManagementClient, NoSuchServiceError, RpcClient
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from epum.sim.demo_sensor import engine_conf, management_has_stats
from epum.states import InstanceState
from tests import rabbit
from tests.kit import wait_until
from tests.rabbit_management import ensure_management
from tests.system.test_worker import BIN, Daemon

pytestmark = [pytest.mark.rabbitmq, pytest.mark.rabbitmq_management]

amqp_url = rabbit.amqp_url
names = rabbit.names

OWNER = "alice"
JOBS = 120
WORK_TIME = 0.25  # s per job per instance: one instance alone needs 30 s for the jobs
LIMIT = 90.0


def worker_config(path: Path, names: Names) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "server": {
                    "amqp": {"sysname": names.sysname, "dtrs_timeout": 0.5},
                    "sensors": {"min_sample_period": 0.5, "query_timeout": 2},
                },
                "epumanagement": {"decider_loop_interval": 0.5},
                "worker_name": f"{names.sysname}-w1",
                "log_level": "INFO",
            }
        )
    )
    return path


def domain_conf(queue: str, management_url: str) -> dict:
    """The sensor demo's domain (``epum.sim.demo_sensor``), up to 3 instances."""
    return {"engine_conf": {**engine_conf(queue, management_url), "maximum_vms": 3}}


class Watch:
    """The domain as ``describe_domain`` shows it, and every live size seen in turn."""

    def __init__(self, daemon: Daemon, domain_id: str):
        self.client = daemon.client
        self.domain_id = domain_id
        self.sizes: list[int] = []
        self.consumers_seen: set[float] = set()

    def look(self) -> dict:
        described = self.client.describe_domain(self.domain_id, caller=OWNER)
        live = [i for i in described["instances"] if i["state"] < InstanceState.TERMINATING]
        if not self.sizes or self.sizes[-1] != len(live):
            self.sizes.append(len(live))
        consumers = (described.get("sensor_data") or {}).get("consumers") or {}
        self.consumers_seen.update(consumers.get("Series") or [])
        return described

    def reading(self) -> dict:
        return self.look().get("sensor_data") or {}

    def settled(self, size: int) -> bool:
        """Exactly ``size`` live instances, all RUNNING."""
        instances = self.look()["instances"]
        live = [i for i in instances if i["state"] < InstanceState.TERMINATING]
        return len(live) == size == sum(i["state"] == InstanceState.RUNNING for i in live)


def depth(url: str, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of ``queue``, by a passive declare (no stats lag)."""
    with Connection(url) as conn:
        ok = conn.default_channel.queue_declare(queue=queue, passive=True)
        return ok.message_count, ok.consumer_count


@pytest.fixture
def queue(amqp_url: str, names: Names) -> Iterator[str]:
    name = f"{names.sysname}.jobs"
    with Connection(amqp_url) as conn:
        Queue(name, durable=True, auto_delete=False).bind(conn.default_channel).declare()
    yield name
    with Connection(amqp_url) as conn:
        Queue(name).bind(conn.default_channel).delete()


def spawn(argv: list[str], log: Path) -> subprocess.Popen:
    """Start ``argv`` with its output in ``log`` (a file: a pipe nobody reads would
    fill up and block the process's logging)."""
    with open(log, "w") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def processes(amqp_url: str, names: Names, tmp_path: Path) -> Iterator[Daemon]:
    """The worker and the simulated provisioner (its instances working), as processes."""
    sim = spawn(
        [
            *(sys.executable, "-m", "epum.sim.provisioner", "--amqp-url", amqp_url),
            *("--sysname", names.sysname, "--work-time", str(WORK_TIME)),
            *("--pending", "0.2", "--started", "0.3", "--running", "0.2", "--terminated", "0.2"),
        ],
        tmp_path / "sim.log",
    )
    config = worker_config(tmp_path / "epum.yaml", names)
    worker = spawn([str(BIN / "epum-worker"), "--config", str(config)], tmp_path / "worker.log")
    rpc = RpcClient(make_connection(amqp_url), names, "tester", timeout=5)
    client = EPUManagementClient(rpc)
    try:
        wait_until(lambda: serves(client, worker), 30, what="the worker to answer")
        yield Daemon(worker, client, f"{names.sysname}-w1")
    finally:
        rpc.close()
        stop(worker)
        stop(sim)
        for name in ("worker.log", "sim.log"):
            print(f"----- {name}\n" + (tmp_path / name).read_text()[-3000:])


def serves(client: EPUManagementClient, proc: subprocess.Popen) -> bool:
    """True once the worker answers; fails the test if it exited."""
    assert proc.poll() is None, "the worker exited"
    try:
        client.list_domain_definitions()
    except NoSuchServiceError:
        return False
    return True


def test_the_domain_grows_on_the_backlog_and_shrinks_once_the_sim_drained_it(
    amqp_url: str, queue: str, processes: Daemon
) -> None:
    management = ensure_management()
    client = processes.client
    client.add_domain_definition("workers", {"general": {"engine_class": "sensor"}})
    client.add_domain("hot", "workers", domain_conf(queue, management), caller=OWNER)
    watch = Watch(processes, "hot")

    # idle: one instance, consuming the empty queue (nobody told the sim its id)
    wait_until(lambda: watch.settled(1), LIMIT, what="hot at 1")
    wait_until(
        lambda: watch.reading().get("consumers", {}).get("Series") == [1.0],
        LIMIT,
        what=lambda: f"the source to see the one instance consume: {watch.reading()}",
    )
    first = watch.reading()["consumers"]["time"]
    wait_until(
        lambda: watch.reading()["consumers"]["time"] >= first + 3,
        LIMIT,
        what="more readings of the idle queue",
    )
    assert watch.reading()["backlog"]["Series"] == [0.0]
    assert watch.settled(1), watch.sizes  # no load, no growth
    # from now on every reading comes through the management API, none over AMQP
    # (a new queue's first seconds mix the two, and the API's figures lag)
    wait_until(
        lambda: management_has_stats(management, queue, ("guest", "guest")),
        LIMIT,
        what="the management API's statistics of the queue",
    )

    with Connection(amqp_url) as conn, conn.Producer() as producer:
        for n in range(JOBS):
            producer.publish({"job": n}, routing_key=queue, retry=True)
    wait_until(lambda: watch.settled(3), LIMIT, what=lambda: f"hot at 3 (sizes {watch.sizes})")
    wait_until(
        lambda: watch.look() and 3.0 in watch.consumers_seen,
        LIMIT,
        what=lambda: f"three consumers seen (seen {watch.consumers_seen})",
    )
    wait_until(lambda: watch.settled(1), LIMIT, what=lambda: f"hot back at 1 ({watch.sizes})")

    # all drained by the sim, and only the one instance left consumes
    wait_until(lambda: depth(amqp_url, queue) == (0, 1), 10, what=lambda: depth(amqp_url, queue))
    peak = watch.sizes.index(3)
    assert watch.sizes[:peak] == sorted(watch.sizes[:peak]), watch.sizes  # up, step by step
    assert watch.sizes[peak:] == sorted(watch.sizes[peak:], reverse=True), watch.sizes
    assert watch.sizes[0] <= 1 and watch.sizes[-1] == 1
    print(
        f"sizes seen: {' -> '.join(map(str, watch.sizes))}; consumers seen {watch.consumers_seen}"
    )
    client.remove_domain("hot", caller=OWNER)
    wait_until(lambda: "hot" not in client.list_domains(OWNER), LIMIT, what="hot removed")
