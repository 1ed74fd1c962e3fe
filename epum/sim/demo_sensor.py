"""``epum demo --story sensor --amqp URL``: a sensor domain sized by the load it carries.

An ``epum-worker`` process (on the memory store, or on ZooKeeper with
``--zookeeper HOSTS``) and the simulated provisioner
(``epum-sim-provisioner --work-time``) run on the broker.  The domain is a
sensor domain on the ``rabbitmq`` source whose launch vars name a work
queue, so every instance the simulator runs drains that queue, one job per
``WORK_TIME`` seconds.  The demo publishes a backlog and prints a line each
time the domain's size or reading changes: the domain grows to its maximum,
the grown domain drains the queue faster, and it shrinks back to one
instance once the queue is empty; then the domain is removed.  Each stage
must finish within ``STAGE_LIMIT`` seconds (about 40 s in all).

Each line shows the domain's size, the queue as it is now and the reading
epum decides on.  epum reads the queue through the RabbitMQ management API
when it answers (``rabbitmq_management_url``: ``MANAGEMENT_URL`` on the
broker's host unless another is given),
whose figures lag the queue by up to ten seconds, else over AMQP (ready
and consumers, current).  Everything lives
in a namespace of the demo's own (sysname, work queue and ZooKeeper path
``epum-demo-<hex>``), deleted at the end with the processes it started.
The exit status is 0 when every stage finished.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import requests
import yaml

from epum.errors import NotFoundError
from epum.history_words import describe_entry
from epum.messaging import EPUManagementClient, RpcClient
from epum.messaging.connection import Connection, make_connection
from epum.messaging.names import Names
from epum.messaging.retry import RetryPolicy, delete_namespace
from epum.messaging.work_queues import (
    declare_work_queue,
    delete_work_queue,
    publish_work,
    queue_depth,
)
from epum.settings import ZooKeeperSettings
from epum.sim.story import OWNER, StagedStory
from epum.states import InstanceState
from epum.store.zk_session import remove_tree

#: The domain and its definition.
DOMAIN = "jobs"
DEFINITION = "sim-queue-workers"
#: Seconds one simulated instance spends on one job.
WORK_TIME = 0.25
#: Jobs published at once: about 40 s of work for one instance.
JOBS = 160
#: The domain's bounds.
MINIMUM, MAXIMUM = 1, 4
#: Longest any stage may take, in seconds.
STAGE_LIMIT = 60.0
#: The management API the rabbitmq source asks first: on the broker's host.
MANAGEMENT_URL = "http://{host}:15672"
SERVICES = ("epu_management_service", "provisioner")


def engine_conf(queue: str, management_url: str) -> dict[str, Any]:
    """The domain's ``engine_conf``: scale on the queue's backlog between the bounds;
    its instances are launched with ``work_queue: queue``."""
    return {
        "minimum_vms": MINIMUM,
        "maximum_vms": MAXIMUM,
        "metric": "backlog",
        "sample_function": "Average",
        "scale_up_threshold": 10,
        "scale_up_n_vms": 1,
        "scale_down_threshold": 1,
        "scale_down_n_vms": 1,
        "cooldown_period": 1,
        "sensor_type": "rabbitmq",
        "rabbitmq_queue": queue,
        "rabbitmq_management_url": management_url,
        "sample_period": 0.5,
        "deployable_type": "sim-worker",
        "iaas_site": "sim-site",
        "iaas_allocation": "small",
        "provisioner_vars": {"work_queue": queue},
    }


class SensorDemo(StagedStory):
    """The sensor story on the broker; ``run()`` starts the processes, plays it, cleans up.

    ``sizes`` is every live size seen in turn; ``stages`` whether each stage
    finished; ``history`` the domain's decision log in words (before removal).
    """

    stage_limit = STAGE_LIMIT

    def __init__(
        self,
        amqp_url: str,
        out: TextIO,
        zk_hosts: str | None = None,
        management_url: str | None = None,
    ):
        self.amqp_url = amqp_url
        self.out = out
        self.zk_hosts = zk_hosts
        parts = urlsplit(amqp_url)
        #: The management API's user: the broker URL's (the worker is given it too).
        self.auth = (parts.username or "guest", parts.password or "guest")
        self.management_url = management_url or MANAGEMENT_URL.format(
            host=parts.hostname or "127.0.0.1"
        )
        self.names = Names(f"epum-demo-{uuid.uuid4().hex[:8]}")
        self.queue = f"{self.names.sysname}.jobs"
        self.folder = Path(tempfile.mkdtemp(prefix="epum-demo-"))
        self.procs: list[subprocess.Popen] = []
        super().__init__()
        self.sizes: list[int] = []
        self.history: list[str] = []
        self.rpc: RpcClient | None = None
        self.client: EPUManagementClient | None = None
        self.conn: Connection | None = None
        self._shown: tuple[Any, ...] | None = None

    # processes ------------------------------------------------------------------
    def _start(self) -> None:
        self.conn = make_connection(self.amqp_url, name=f"{self.names.sysname}-demo")
        declare_work_queue(self.conn, self.queue)
        config: dict[str, Any] = {
            "server": {
                "amqp": {"url": self.amqp_url, "sysname": self.names.sysname, "dtrs_timeout": 0.5},
                # a demo polls every half second; a deployment keeps the 10 s minimum
                "sensors": {
                    "min_sample_period": 0.5,
                    "query_timeout": 2,
                    "rabbitmq_username": self.auth[0],
                    "rabbitmq_password": self.auth[1],
                },
            },
            "epumanagement": {"decider_loop_interval": 0.5},
            "worker_name": f"{self.names.sysname}-w1",
        }
        if self.zk_hosts:
            config["server"]["zookeeper"] = {"hosts": self.zk_hosts, "path": self._zk_path()}
            config["epumanagement"]["persistence_type"] = "zookeeper"
        path = self.folder / "epum.yaml"
        path.write_text(yaml.safe_dump(config))
        bin_dir = Path(sys.executable).parent
        self._spawn("worker", str(bin_dir / "epum-worker"), "--config", str(path))
        self._spawn(
            "provisioner",
            sys.executable,
            *("-m", "epum.sim.provisioner", "--amqp-url", self.amqp_url),
            *("--sysname", self.names.sysname, "--work-time", str(WORK_TIME)),
            *("--pending", "0.2", "--started", "0.3", "--running", "0.2", "--terminated", "0.2"),
        )
        self.rpc = RpcClient(make_connection(self.amqp_url), self.names, "epum-demo", timeout=10)
        self.client = EPUManagementClient(self.rpc)

    def _zk_path(self) -> str:
        return f"/{self.names.sysname}"

    def _spawn(self, name: str, *argv: str) -> None:
        with open(self.folder / f"{name}.log", "w") as log:
            self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))

    def _cleanup(self) -> None:
        if self.rpc is not None:
            self.rpc.close()
        if self.conn is not None:
            self.conn.release()
        self.stop_processes(self.procs)
        with contextlib.suppress(Exception), make_connection(self.amqp_url) as conn:
            delete_work_queue(conn, self.queue)
        with contextlib.suppress(Exception), make_connection(self.amqp_url) as conn:
            delete_namespace(conn, self.names, SERVICES, RetryPolicy())
        if self.zk_hosts:
            with contextlib.suppress(Exception):
                remove_tree(ZooKeeperSettings(hosts=self.zk_hosts, path=self._zk_path()))
        shutil.rmtree(self.folder, ignore_errors=True)

    # what the demo looks at ------------------------------------------------------
    def look(self) -> tuple[int, int, dict[str, Any]]:
        """(live instances, running instances, epum's readings of the queue); a line
        is printed when any of them changed, with the queue as it is now."""
        assert self.client is not None
        try:
            described = self.client.describe_domain(DOMAIN, caller=OWNER)
        except NotFoundError:
            return 0, 0, {}
        states = [i["state"] for i in described["instances"]]
        live = sum(s < InstanceState.TERMINATING for s in states)
        running = sum(s == InstanceState.RUNNING for s in states)
        readings = {
            name: (reading.get("Series") or [None])[-1]
            for name, reading in (described.get("sensor_data") or {}).items()
            if isinstance(reading, dict) and name in ("backlog", "consumers")
        }
        if not self.sizes or self.sizes[-1] != live:
            self.sizes.append(live)
        shown = (live, running, readings.get("backlog"), readings.get("consumers"))
        if shown != self._shown:
            self._shown = shown
            ready, consumers = self.queue_now()
            self.say(
                f"{DOMAIN}: {live} instance{'s' * (live != 1)} ({running} running)"
                f" | queue now: {ready} ready, {consumers} consumers"
                f" | epum's reading: backlog {_number(shown[2])}, consumers {_number(shown[3])}"
            )
        return live, running, readings

    def queue_now(self) -> tuple[int, int]:
        """(ready jobs, consumers) of the work queue now."""
        assert self.conn is not None
        return queue_depth(self.conn, self.queue)

    def settled(self, size: int) -> Callable[[], bool]:
        """A condition: exactly ``size`` live instances, all RUNNING."""

        def check() -> bool:
            live, running, _ = self.look()
            return live == running == size

        return check

    def say(self, text: str) -> None:
        """Print one line of the story."""
        self.out.write(f"{time.strftime('%H:%M:%S')} {text}\n")
        self.out.flush()

    def _drained(self) -> bool:
        return self.settled(MINIMUM)() and self.queue_now() == (0, MINIMUM)

    def _play(self) -> bool:
        client = self.client
        assert client is not None
        if not self.stage("the worker serves", lambda: client.list_domain_definitions() == []):
            return False
        client.add_domain_definition(DEFINITION, {"general": {"engine_class": "sensor"}})
        conf = {"engine_conf": engine_conf(self.queue, self.management_url)}
        client.add_domain(DOMAIN, DEFINITION, conf, caller=OWNER)
        self.say(
            f"{DOMAIN}: domain added: {MINIMUM} to {MAXIMUM} instances on the backlog of"
            f" {self.queue}, +1 above 10, -1 below 1; each instance drains it"
            f" ({WORK_TIME:g} s a job)"
        )
        idle = self.settled(MINIMUM)
        if not self.stage(
            "one instance, consuming the empty queue",
            lambda: (
                idle()
                and self.look()[2].get("consumers") == MINIMUM
                and management_has_stats(self.management_url, self.queue, self.auth)
            ),
        ):
            return False
        assert self.conn is not None
        publish_work(self.conn, self.queue, JOBS)
        self.say(f"{DOMAIN}: >> {JOBS} jobs published")
        if not self.stage(f"grown to {MAXIMUM} under the backlog", self.settled(MAXIMUM)):
            return False
        if not self.stage("the queue drained, back to one instance", self._drained):
            return False
        log = client.describe_domain_history(DOMAIN, caller=OWNER)
        self.history = [describe_entry(e) for e in log]
        client.remove_domain(DOMAIN, caller=OWNER)
        self.say(f"{DOMAIN}: >> domain removal requested")
        return self.stage("domain removed", lambda: DOMAIN not in client.list_domains(OWNER))


def management_has_stats(url: str, queue: str, auth: tuple[str, str]) -> bool:
    """Whether the rabbitmq source will read ``queue`` consistently: the management
    API at ``url`` has statistics of it, or does not answer at all (then every
    reading is over AMQP).  A queue the API knows without statistics yet (its
    first seconds) would be read over AMQP now and through the API's older
    figures a moment later."""
    try:
        resp = requests.get(f"{url}/api/queues/%2F/{quote(queue, safe='')}", auth=auth, timeout=2)
    except requests.RequestException:
        return True
    if resp.status_code == 404:
        return False
    if resp.status_code != 200:
        return True
    try:
        return "messages_ready" in resp.json()
    except ValueError:
        return True


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def run_sensor_demo(amqp_url: str, zk_hosts: str | None, out: TextIO, history: bool) -> int:
    """Play the sensor story; print the stages, the sizes seen (and the decision log);
    0 if every stage finished."""
    where = f"{amqp_url.split('@')[-1]}" + (f" and {zk_hosts}" if zk_hosts else "")
    out.write(f"epum demo --story sensor on {where}: a domain sized by its work queue\n\n")
    demo = SensorDemo(amqp_url, out, zk_hosts)
    started = time.monotonic()
    ok = demo.run()
    out.write(
        f"\nthe sensor story took {time.monotonic() - started:.1f} s;"
        f" sizes seen: {' -> '.join(map(str, demo.sizes))}\n"
    )
    demo.report(out, demo.history if history else None)
    return 0 if ok else 1
