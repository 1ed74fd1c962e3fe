"""One ``epum-worker`` process for a benchmark, its store seeded, its doubles, its rig.

``seed(hosts, path, D, N)`` fills a ZooKeeper store with D domains of N
RUNNING instances before a worker starts on it.  ``rig(...)`` brings up what
a run talks to besides the worker: the provisioner and DTRS doubles, the bare
consumer, a client and the benchmark's wire, under a fresh sysname whose
queues are deleted afterwards; ``Rig.worker(path)`` starts a worker on a
store path for a ``with`` block.

``WorkerProcess(url, names, zk_hosts, zk_path, workdir)`` writes a config
(the ZooKeeper store under ``zk_path``, the benchmark's sysname, the given
prefetch) and starts ``epum-worker`` from this interpreter's venv; ``start``
returns once the service answers.  Its log goes to ``workdir/<name>.log``
(``worker.log`` by default; shown in the error when it fails).  The timed
loops are an hour apart, so every decider pass the benchmark sees is one a
change woke (the path the replacement of a failed instance takes) and no
timed pass, doctor or reaper adds ZooKeeper requests to what the messages
cost; a benchmark that times the decider's own passes gives a shorter
``decider_interval`` and a ``statsd`` section to hear them on.

``bench.probes.paused(worker.pid)`` stops the whole process for a block:
messages published meanwhile wait in the service queue, so the benchmark
can time a drain of a full queue.  Keep pauses well under the ZooKeeper
session ``timeout``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kombu import Connection

from bench.bare import BareConsumer, bare_queue
from bench.common import ensure_rabbit_plugin, unbounded_launches
from bench.doubles import ProvisionerDouble, served
from bench.probes import rss_bytes
from bench.wire import Wire
from epum.messaging import EPUManagementClient, NoSuchServiceError, RpcClient, envelope, retry
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from epum.messaging.retry import RetryPolicy
from epum.messaging.service_queues import SHARDING_PLUGIN
from epum.sim.agents import agent_address
from epum.states import InstanceHealthState, InstanceState

SERVICE = "epu_management_service"
LOOPS_APART = 3600.0
OWNER = "bench"
BARE = "bench_bare"
#: The queue of the bare consumer that reads in chunks, as the worker does.
BARE_CHUNKED = "bench_bare_chunked"
#: A heartbeat's time is written once the stored one is 900 s old: every heartbeat of a run
#: after the seeding is steady.
MISSING_TIMEOUT = 3600.0

#: The call queued behind other messages: its reply says they are all done.  An operation
#: the worker does not have, so it is refused at once, touching no store.
MARKER = envelope.request("bench_drained", {})


class WorkerProcess:
    """An ``epum-worker`` subprocess on a ZooKeeper store (a context manager)."""

    def __init__(
        self,
        url: str,
        names: Names,
        zk_hosts: str,
        zk_path: str,
        workdir: Path,
        *,
        prefetch: int = 1,
        zk_timeout: float = 30.0,
        decider_interval: float = LOOPS_APART,
        statsd: dict[str, Any] | None = None,
        name: str = "worker",
        decider_partitions: int = 1,
        handlers: int | None = None,
        queue_shards: int = 1,
    ):
        self.url = url
        self.names = names
        self.name = name
        self.workdir = Path(workdir)
        self.config_path = self.workdir / f"{name}.yaml"
        self.log_path = self.workdir / f"{name}.log"
        self.prefetch = prefetch
        config: dict[str, Any] = {
            "server": {
                "amqp": {
                    "url": url,
                    "sysname": names.sysname,
                    "prefetch": prefetch,
                    "queue_shards": queue_shards,
                },
                "zookeeper": {"hosts": zk_hosts, "path": zk_path, "timeout": zk_timeout},
            },
            "epumanagement": {
                "service_name": SERVICE,
                "persistence_type": "zookeeper",
                "decider_loop_interval": decider_interval,
                "decider_partitions": decider_partitions,
                "doctor_loop_interval": LOOPS_APART,
                "reaper_loop_interval": LOOPS_APART,
            },
            # room for the benchmark's own domains and the ones it adds
            "limits": {"max_domains_per_caller": 1_000_000},
            "worker_name": f"{names.sysname}-{name}",
            "log_level": "INFO",
        }
        if statsd is not None:
            config["statsd"] = statsd
        if handlers is not None:  # else the worker's default
            config["server"]["amqp"]["handlers"] = handlers
        self.config_path.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The worker's process id (once started)."""
        assert self.proc is not None, "not started"
        return self.proc.pid

    def rss(self) -> int:
        """The worker's resident memory now, in bytes."""
        return rss_bytes(self.pid)

    def start(self, client: EPUManagementClient, timeout: float = 60.0) -> None:
        """Start the worker; return once ``client`` gets an answer from it."""
        worker = Path(sys.executable).parent / "epum-worker"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(worker), "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.list_domain_definitions()
                return
            except NoSuchServiceError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker never answered:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the worker's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the worker (resumed first if paused); SIGKILL if it does not exit."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def epum_client(url: str, names: Names, sender: str, timeout: float = 30.0) -> EPUManagementClient:
    """A client of the worker's service (close it with ``client.rpc.close()``)."""
    rpc = RpcClient(make_connection(url, name=f"{names.sysname}-{sender}"), names, sender)
    return EPUManagementClient(rpc, SERVICE, timeout=timeout)


@dataclass
class Fleet:
    """The domains of the benchmark and their live instances."""

    instances: dict[str, list[str]]

    @property
    def ids(self) -> list[str]:
        """Every live instance id."""
        return [i for ids in self.instances.values() for i in ids]


DEFINITION = {
    "general": {"engine_class": "simplest"},
    "engine_conf": {"epuworker_type": "dt", "force_site": "site1"},
    "health": {"monitor_health": True, "missing_timeout": MISSING_TIMEOUT},
}


def seed(hosts: str, base_path: str, domains: int, instances: int) -> Fleet:
    """Store the definition and the domains under ``base_path``, every instance RUNNING,
    healthy and heard from.

    Done before the worker starts, through an in-process facade on the same
    ZooKeeper store (its decider launches, then one RUNNING report and one
    heartbeat per instance): the store ends as the worker's own work would
    leave it, in a fraction of the time (the worker's decider, woken by
    every record it changes, takes such reports at a few dozen a second).
    """
    from epum.management import EPUManagement
    from epum.settings import ZooKeeperSettings
    from epum.store.zookeeper import ZooKeeperEPUMStore
    from tests.fakes import FakeDTRS, FakeNotifier, FakeProvisioner

    settings = ZooKeeperSettings(hosts=hosts, path=base_path)
    store = ZooKeeperEPUMStore(settings, worker_name="bench-seed")
    store.initialize()
    provisioner = FakeProvisioner()
    conf = {"_external_decide_invocations": True, **unbounded_launches(domains * instances)}
    epum = EPUManagement(conf, FakeNotifier(), provisioner, None, FakeDTRS(), store=store)
    try:
        epum.initialize()
        epum.msg_add_domain_definition("bench", DEFINITION)
        for d in range(domains):
            domain_conf = {"engine_conf": {"preserve_n": instances}}
            epum.msg_add_domain(OWNER, f"dom{d:05d}", "bench", domain_conf)
        epum._run_decisions()
        ids = [i for request in provisioner.provisioned for i in request["instance_ids"]]
        for instance_id in ids:
            report = {"node_id": instance_id, "state": InstanceState.RUNNING}
            epum.msg_instance_info("provisioner", {**report, "update_counter": 1})
        for instance_id in ids:  # on the wall clock, which the worker stamps heartbeats with
            beat = {"node_id": instance_id, "state": InstanceHealthState.OK}
            epum.msg_heartbeat(agent_address(instance_id), beat, timestamp=time.time())
        fleet = {
            d.domain_id: [
                r.instance_id for r in d.get_instances() if r.state == InstanceState.RUNNING
            ]
            for d in store.get_all_domains()
        }
    finally:
        epum.shutdown()
        store.shutdown()
    running = sum(len(ids) for ids in fleet.values())
    if running != domains * instances:
        raise RuntimeError(f"seeding left {running} instances RUNNING, not {domains * instances}")
    return Fleet(fleet)


@dataclass
class Rig:
    """What one run talks to besides the worker: its doubles, the bare consumers (kombu's
    reads and chunked ones), the wire."""

    url: str
    names: Names
    server: Any
    workdir: Path
    prefetch: int
    wire: Wire
    bare: BareConsumer
    bare_chunked: BareConsumer
    provisioner: ProvisionerDouble
    client: EPUManagementClient

    @contextlib.contextmanager
    def worker(
        self, zk_path: str, name: str = "worker", handlers: int | None = None, queue_shards: int = 1
    ) -> Iterator[WorkerProcess]:
        """A worker called ``name`` on the store under ``zk_path``, answering, for the
        block; stopped after.  ``handlers``: its ``amqp.handlers`` (None: the default);
        ``queue_shards``: its ``amqp.queue_shards`` (the broker's plugin enabled first)."""
        if not 1 <= queue_shards <= MAX_BENCH_SHARDS:
            raise ValueError(f"a benchmark worker has 1 to {MAX_BENCH_SHARDS} queue shards")
        if queue_shards > 1:
            ensure_rabbit_plugin(SHARDING_PLUGIN)
        worker = WorkerProcess(
            self.url,
            self.names,
            self.server.hosts,
            zk_path,
            self.workdir,
            prefetch=self.prefetch,
            name=name,
            handlers=handlers,
            queue_shards=queue_shards,
        )
        try:
            worker.start(self.client)
            yield worker
        finally:
            worker.stop()


@dataclass
class BrokerSide:
    """What the workers talk to on the broker, under a fresh sysname."""

    url: str
    names: Names
    client: EPUManagementClient
    provisioner: ProvisionerDouble
    workdir: Path


@contextlib.contextmanager
def broker_side(url: str, services: tuple[str, ...] = ()) -> Iterator[BrokerSide]:
    """The doubles and a client under a fresh sysname, and a work folder; the queues of
    the worker's service, the doubles and ``services`` are deleted afterwards."""
    names = Names(sysname=f"bench{uuid.uuid4().hex[:10]}")
    with contextlib.ExitStack() as stack:
        stack.callback(delete_namespace, url, names, (SERVICE, "provisioner", "dtrs", *services))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="epum-bench-")))
        provisioner = stack.enter_context(served(url, names, SERVICE))
        client = epum_client(url, names, "bench")
        stack.callback(client.rpc.close)
        yield BrokerSide(url, names, client, provisioner, workdir)


@contextlib.contextmanager
def rig(url: str, server: Any, prefetch: int) -> Iterator[Rig]:
    """A ``broker_side`` with the bare consumers and the wire on ``url`` (their queues deleted
    afterwards too), for workers on ZooKeeper ``server``."""
    with contextlib.ExitStack() as stack:
        side = stack.enter_context(broker_side(url, (BARE, BARE_CHUNKED)))
        names = side.names
        wire = Wire(url, names)
        stack.callback(wire.close)
        bares = []
        for service, chunked in ((BARE, False), (BARE_CHUNKED, True)):
            name = names.qualify(service)
            bare_queue(name, names.exchange).bind(wire.channel).declare()
            bares.append(
                stack.enter_context(BareConsumer(url, name, names.exchange, prefetch, chunked))
            )
            wire.call(name, MARKER, timeout=30)  # the bare consumer is up
        bare, bare_chunked = bares
        yield Rig(
            url,
            names,
            server,
            side.workdir,
            prefetch,
            wire,
            bare,
            bare_chunked,
            side.provisioner,
            side.client,
        )


#: The most queue shards a benchmark's workers are given (their queues are deleted after).
MAX_BENCH_SHARDS = 8


def delete_namespace(url: str, names: Names, services: tuple[str, ...]) -> None:
    """Delete the run's queues, shards and exchanges (``epum.messaging.retry.delete_namespace``)."""
    with Connection(url) as conn:
        retry.delete_namespace(conn, names, services, RetryPolicy(), shards=MAX_BENCH_SHARDS)
