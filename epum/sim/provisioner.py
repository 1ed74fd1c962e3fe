"""A simulated provisioner *service*: a ``SimProvisioner`` on the broker, in real time.

``epum-sim-provisioner [--config FILE] [--amqp-url URL] [--sysname NAME]``
(or ``python -m epum.sim.provisioner``) consumes the ``provisioner`` queue
(ops ``provision``, ``terminate_nodes``, ``dump_state``, ``describe_nodes``,
and the fault ops of ``epum.sim.faults``: ``fail``, ``silence``, ``zombie``,
``fail_contextualization``) with the messaging package's ``RpcServer`` and reports
every state change to EPUM as ``instance_info`` (arg ``record``) through an
``EPUManagementClient``.  A ticker thread steps the simulation on the wall
clock every ``tick`` seconds.  With ``--heartbeat-interval`` the instances'
agents heartbeat too (``ou_heartbeat``, each from its own address), and each
running node's agent consumes a queue of its own (``epum.messaging.agent_queues``):
EPUM's ``dump_state`` to it makes it heartbeat at the next step.

With ``--work-time S`` the instances work too: every running instance whose
launch vars name a ``work_queue`` (a domain's ``engine_conf.provisioner_vars``)
drains that queue on the service's broker and vhost, one message per ``S``
seconds (``epum.messaging.work_queues``), so a domain's size is its queue's
drain rate and the ``rabbitmq`` sensor source sees the load the instances
carry: its backlog, and one consumer per running instance.

``--config FILE`` is a YAML mapping of the options' long names with
underscores (``amqp_url``, ``sysname``, ``heartbeat_interval``, ``seed``,
``failure_rates: {SITE: P}`` ...); flags given on the command line win.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import yaml

from epum.errors import ConfigError
from epum.messaging.agent_queues import AgentQueues
from epum.messaging.client import RpcClient
from epum.messaging.clients import EPUManagementClient
from epum.messaging.connection import make_connection, mask_url
from epum.messaging.dispatch import Dispatcher
from epum.messaging.names import Names
from epum.messaging.server import RpcServer
from epum.messaging.work_queues import WorkQueueConsumers
from epum.sim.agents import SimAgents, agent_address
from epum.sim.cloud import Delays, NodeView, SimProvisioner
from epum.sim.faults import FaultOps
from epum.sim.wire import HeartbeatsOverWire, InstanceInfoOverWire, ProvisionerOps
from epum.states import InstanceState

log = logging.getLogger(__name__)

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
#: The launch var naming the queue a running instance drains (with a work time).
WORK_QUEUE_VAR = "work_queue"


class SimProvisionerService:
    """The simulated provisioner served on the broker until ``stop()``.

    ``start()`` returns once the RPC server consumes; ``stop()`` stops the
    ticker and the server, then closes every connection.  ``cloud`` (the
    ``SimProvisioner``), ``agents`` (None without heartbeats) and ``work``
    (the instances' work-queue workers, None without a ``work_time``) may be
    inspected and driven (``cloud.fail(id)``) while it runs.
    """

    def __init__(
        self,
        amqp_url: str,
        sysname: str | None = None,
        *,
        service_name: str = "provisioner",
        epum_service: str = "epu_management_service",
        delays: Delays | None = None,
        failure_rates: dict[str, float] | None = None,
        default_failure_rate: float = 0.0,
        seed: int = 0,
        heartbeat_interval: float | None = None,
        work_time: float | None = None,
        tick: float = 0.2,
        clock: Callable[[], float] = time.time,
    ):
        self.amqp_url = amqp_url
        self.names = Names(sysname)
        self.service_name = service_name
        self.tick = tick
        self.clock = clock
        self._rpc = RpcClient(
            make_connection(amqp_url, name=f"sim-{service_name}-client"), self.names, service_name
        )
        self.cloud = SimProvisioner(
            InstanceInfoOverWire(EPUManagementClient(self._rpc, epum_service)),
            name=service_name,
            delays=delays,
            failure_rates=failure_rates,
            default_failure_rate=default_failure_rate,
            seed=seed,
        )
        self._heartbeats: HeartbeatsOverWire | None = None
        self.agents: SimAgents | None = None
        self.agent_queues: AgentQueues | None = None
        if heartbeat_interval:
            self._heartbeats = HeartbeatsOverWire(
                lambda address: EPUManagementClient(
                    RpcClient(
                        make_connection(amqp_url, name=f"sim-agent-{address}"),
                        self.names,
                        address,
                        pool_limit=1,
                    ),
                    epum_service,
                )
            )
            self.agents = SimAgents(self._heartbeats, self.cloud, interval=heartbeat_interval)
            self.agent_queues = AgentQueues(
                make_connection(amqp_url, name=f"sim-{service_name}-agents"),
                self.names,
                self.agents.dump_state,
            )
        self.work: WorkQueueConsumers | None = None
        if work_time:
            self.work = WorkQueueConsumers(
                make_connection(amqp_url, name=f"sim-{service_name}-work"), work_time
            )
        self.server = RpcServer(
            make_connection(amqp_url, name=f"sim-{service_name}"),
            self.names,
            service_name,
            Dispatcher(
                ProvisionerOps(self.cloud).table() | FaultOps(self.cloud, self.agents).table()
            ),
        )
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, timeout: float = 30.0) -> SimProvisionerService:
        """Serve and tick in threads of their own; return once consuming."""
        self._threads = [
            threading.Thread(target=self.server.run, name="epum-sim-provisioner-rpc", daemon=True),
            threading.Thread(target=self._tick_loop, name="epum-sim-provisioner-tick", daemon=True),
        ]
        if self.agent_queues is not None:
            self._threads.append(
                threading.Thread(
                    target=self.agent_queues.run, name="epum-sim-agent-queues", daemon=True
                )
            )
        if self.work is not None:
            self._threads.append(
                threading.Thread(target=self.work.run, name="epum-sim-work-queues", daemon=True)
            )
        for thread in self._threads:
            thread.start()
        if (
            not self.server.ready.wait(timeout)
            or (self.agent_queues is not None and not self.agent_queues.ready.wait(timeout))
            or (self.work is not None and not self.work.ready.wait(timeout))
        ):
            self.stop()
            raise RuntimeError(f"the simulated provisioner did not start consuming in {timeout}s")
        log.info(
            "simulated provisioner serving %s on %s",
            self.names.qualify(self.service_name),
            mask_url(self.amqp_url),
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop ticking and serving, then close every connection."""
        self._stopped.set()
        self.server.stop()
        if self.agent_queues is not None:
            self.agent_queues.stop()
        if self.work is not None:
            self.work.stop()
        for thread in self._threads:
            thread.join(timeout)
        if self.work is not None:
            self.work.connection.release()
        if self.agent_queues is not None:
            self.agent_queues.connection.release()
        if self._heartbeats is not None:
            self._heartbeats.close()
        self._rpc.close()
        self.server.connection.release()

    def __enter__(self) -> SimProvisionerService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def step(self, now: float) -> None:
        """One step of the simulation at ``now`` (the ticker's work; a failing send is logged)."""
        try:
            self.cloud.step(now)
        except Exception:
            log.exception("reporting to EPUM failed; the records go again on dump_state")
        if self.work is not None:
            self.work.want(work_queues(self.cloud.nodes(InstanceState.RUNNING)))
        if self.agents is None or self._heartbeats is None:
            return
        try:
            self.agents.step(now)
        except Exception:
            log.exception("sending heartbeats failed")
        running = {agent_address(n.instance_id) for n in self.cloud.nodes(InstanceState.RUNNING)}
        self._heartbeats.forget(running)
        if self.agent_queues is not None:
            self.agent_queues.want(running)

    def _tick_loop(self) -> None:
        while not self._stopped.wait(self.tick):
            self.step(self.clock())


def work_queues(nodes: Iterable[NodeView]) -> dict[str, str]:
    """Instance id -> the work queue its launch vars name, for each of ``nodes`` naming one."""
    out = {}
    for node in nodes:
        queue = node.vars.get(WORK_QUEUE_VAR)
        if isinstance(queue, str) and queue:
            out[node.instance_id] = queue
    return out


def _rate(text: str) -> tuple[str, float]:
    site, _, value = text.partition("=")
    if not site or not value:
        raise argparse.ArgumentTypeError(f"expected SITE=PROBABILITY, got {text!r}")
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"a probability is between 0 and 1, got {rate}")
    return site, rate


#: The keys a ``--config`` file may hold, and their types.
CONFIG_KEYS: dict[str, type | tuple[type, ...]] = {
    "amqp_url": str,
    "sysname": str,
    "service_name": str,
    "epum_service": str,
    "pending": (int, float),
    "started": (int, float),
    "running": (int, float),
    "terminated": (int, float),
    "failure_rates": dict,
    "default_failure_rate": (int, float),
    "seed": int,
    "heartbeat_interval": (int, float),
    "work_time": (int, float),
    "tick": (int, float),
    "verbose": bool,
}


def read_config(path: str) -> dict[str, Any]:
    """The options in the YAML file ``path`` as argparse defaults; ``ConfigError``
    naming the file and key for an unknown key or a value of the wrong type."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping")
    out: dict[str, Any] = {}
    for key, value in data.items():
        kind = CONFIG_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(CONFIG_KEYS)})")
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ConfigError(f"{path}: {key} has the wrong type ({type(value).__name__})")
        out[key] = copy.deepcopy(value)
    rates = out.pop("failure_rates", {})
    try:
        out["failure_rate"] = [_rate(f"{site}={p}") for site, p in rates.items()]
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise ConfigError(f"{path}: failure_rates: {exc}") from None
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of the simulated provisioner service (over a ``--config`` file)."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config", metavar="FILE")
    known, _ = first.parse_known_args(argv)
    parser = argparse.ArgumentParser(
        prog="epum-sim-provisioner", description=__doc__.splitlines()[0], parents=[first]
    )
    parser.add_argument(
        "--amqp-url", default=os.environ.get("EPUM_AMQP_URL", DEFAULT_AMQP_URL), help="broker URL"
    )
    parser.add_argument(
        "--sysname",
        default=os.environ.get("EPUM_SYSNAME"),
        help="prefix of every queue and exchange (default: $EPUM_SYSNAME)",
    )
    parser.add_argument("--service-name", default="provisioner")
    parser.add_argument("--epum-service", default="epu_management_service")
    parser.add_argument("--pending", type=float, default=1.0, help="s to PENDING")
    parser.add_argument("--started", type=float, default=4.0, help="s from PENDING to STARTED")
    parser.add_argument("--running", type=float, default=2.0, help="s from STARTED to RUNNING")
    parser.add_argument("--terminated", type=float, default=2.0, help="s to TERMINATED")
    parser.add_argument("--failure-rate", type=_rate, action="append", default=[], metavar="SITE=P")
    parser.add_argument("--default-failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--heartbeat-interval", type=float, default=0.0, help="agents' heartbeat s (0: none)"
    )
    parser.add_argument(
        "--work-time",
        type=float,
        default=0.0,
        help="s each running instance spends on one message of its work_queue (0: no work)",
    )
    parser.add_argument("--tick", type=float, default=0.2, help="s between simulation steps")
    parser.add_argument("-v", "--verbose", action="store_true")
    if known.config:
        defaults = read_config(known.config)
        rates = defaults.pop("failure_rate")
        parser.set_defaults(**defaults)
        args = parser.parse_args(argv)
        given = {site for site, _ in args.failure_rate}
        args.failure_rate = [r for r in rates if r[0] not in given] + args.failure_rate
        return args
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, stop: threading.Event | None = None) -> int:
    """Run the service until SIGINT/SIGTERM (or until ``stop`` is set); 2 for a bad
    config file."""
    try:
        args = parse_args(argv)
    except ConfigError as exc:
        print(f"epum-sim-provisioner: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    options: dict[str, Any] = {
        "service_name": args.service_name,
        "epum_service": args.epum_service,
        "delays": Delays(
            pending=args.pending,
            started=args.started,
            running=args.running,
            terminated=args.terminated,
        ),
        "failure_rates": dict(args.failure_rate),
        "default_failure_rate": args.default_failure_rate,
        "seed": args.seed,
        "heartbeat_interval": args.heartbeat_interval or None,
        "work_time": args.work_time or None,
        "tick": args.tick,
    }
    with SimProvisionerService(args.amqp_url, args.sysname, **options):
        stop.wait()
    log.info("simulated provisioner stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
