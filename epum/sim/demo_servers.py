"""``epum demo --amqp URL --zookeeper HOSTS``: the demo's story on real servers.

Two ``epum-worker`` processes share a ZooKeeper store, the simulated
provisioner (``epum-sim-provisioner``, its agents heartbeating every
second) runs as a third process, and the demo drives them over AMQP as any
client would, in real time: a domain of 3 with health monitoring comes up;
the cloud fails one; one's agent goes silent until the doctor finds it
missing; the worker leading the decider is killed (SIGKILL) and the other
takes over and scales the domain to 5; the domain is removed.  Each stage
must finish within ``STAGE_LIMIT`` seconds.

Everything lives in a namespace of the demo's own: a fresh sysname
(``epum-demo-<hex>``) on the broker and a fresh path (``/<sysname>``) in
ZooKeeper, both deleted at the end with the processes it started, so a
deployment on the same servers is never touched.  On a terminal the
domain's instances are a table redrawn in place with the timeline below;
otherwise the timeline is printed line by line.  The exit status is 0 when
every stage finished.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import yaml

from epum.ctl_output import INSTANCE_COLUMNS, instance_rows, table
from epum.errors import NotFoundError
from epum.history_words import describe_entry
from epum.messaging import EPUManagementClient, RpcClient
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from epum.messaging.retry import RetryPolicy, delete_namespace
from epum.settings import ZooKeeperSettings
from epum.sim.live import HOME_AND_CLEAR
from epum.sim.story import DEFINITION, DOMAIN, OWNER, StagedStory
from epum.states import InstanceHealthState, InstanceState
from epum.store.zk_session import remove_tree
from epum.store.zookeeper import ZooKeeperEPUMStore

#: Health timeouts in real seconds: short enough to watch.
HEALTH = {
    "monitor_health": True,
    "boot_timeout": 60,
    "missing_timeout": 3,
    "really_missing_timeout": 2,
}
#: Longest any stage may take, in seconds.
STAGE_LIMIT = 60.0
#: The workers' ZooKeeper session: a killed leader's roles move after it.
SESSION_TIMEOUT = 4.0
WORKERS = ("w1", "w2")
SERVICES = ("epu_management_service", "provisioner")


class ServerDemo(StagedStory):
    """The story on real servers; ``run()`` starts the processes, plays it, cleans up."""

    stage_limit = STAGE_LIMIT

    def __init__(self, amqp_url: str, zk_hosts: str, out: TextIO, live: bool):
        self.amqp_url = amqp_url
        self.zk_hosts = zk_hosts
        self.out = out
        self.live = live
        self.names = Names(f"epum-demo-{uuid.uuid4().hex[:8]}")
        self.base_path = f"/{self.names.sysname}"
        self.zk_settings = ZooKeeperSettings(hosts=zk_hosts, path=self.base_path, timeout=10.0)
        self.folder = Path(tempfile.mkdtemp(prefix="epum-demo-"))
        self.workers: dict[str, subprocess.Popen] = {}
        self.others: list[subprocess.Popen] = []
        self.lines: list[str] = []
        super().__init__()
        self.history: list[str] = []
        self.rpc: RpcClient | None = None
        self.client: EPUManagementClient | None = None

    # processes ------------------------------------------------------------------
    def _start(self) -> None:
        bin_dir = Path(sys.executable).parent
        config = self.folder / "epum.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "server": {
                        "amqp": {"url": self.amqp_url, "sysname": self.names.sysname},
                        "zookeeper": {
                            "hosts": self.zk_hosts,
                            "path": self.base_path,
                            "timeout": SESSION_TIMEOUT,
                        },
                    },
                    "epumanagement": {
                        "persistence_type": "zookeeper",
                        "decider_loop_interval": 1.0,
                        "doctor_loop_interval": 1.0,
                    },
                }
            )
        )
        for name in WORKERS:
            own = self.folder / f"{name}.yaml"
            own.write_text(f"worker_name: {self.names.sysname}-{name}\n")
            self.workers[name] = self._spawn(
                name, str(bin_dir / "epum-worker"), "--config", str(config), "--config", str(own)
            )
        self.others.append(
            self._spawn(
                "provisioner",
                sys.executable,
                *("-m", "epum.sim.provisioner", "--amqp-url", self.amqp_url),
                *("--sysname", self.names.sysname, "--heartbeat-interval", "1"),
                *("--pending", "0.5", "--started", "1", "--running", "0.5"),
                *("--terminated", "0.5"),
            )
        )
        self.rpc = RpcClient(make_connection(self.amqp_url), self.names, "epum-demo", timeout=10)
        self.client = EPUManagementClient(self.rpc)

    def _spawn(self, name: str, *argv: str) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "w") as log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def _cleanup(self) -> None:
        if self.rpc is not None:
            self.rpc.close()
        self.stop_processes([*self.workers.values(), *self.others])
        with contextlib.suppress(Exception), make_connection(self.amqp_url) as conn:
            delete_namespace(conn, self.names, SERVICES, RetryPolicy())
        with contextlib.suppress(Exception):
            remove_tree(self.zk_settings)
        shutil.rmtree(self.folder, ignore_errors=True)

    # what the demo looks at ------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """The domain's instance records (empty once it is gone)."""
        assert self.client is not None
        try:
            return self.client.describe_domain(DOMAIN, caller=OWNER)["instances"]
        except NotFoundError:
            return []

    def healthy_running(self) -> list[dict[str, Any]]:
        """Records RUNNING with health OK."""
        return [
            r
            for r in self.records()
            if r["state"] == InstanceState.RUNNING and r["health"] == InstanceHealthState.OK
        ]

    def settled(self, size: int, without: str | None = None) -> Callable[[], bool]:
        """A condition: exactly ``size`` live instances, all RUNNING and healthy (and
        ``without`` not among the live)."""

        def check() -> bool:
            live = [r for r in self.records() if r["state"] < InstanceState.TERMINATING]
            ids = {r["instance_id"] for r in live}
            return len(live) == size == len(self.healthy_running()) and without not in ids

        return check

    def say(self, text: str) -> None:
        """Add a line to the timeline."""
        self.lines.append(f"{time.strftime('%H:%M:%S')} {text}")
        if not self.live:
            self.out.write(self.lines[-1] + "\n")
            self.out.flush()

    def on_poll(self) -> None:
        """Redraw the screen at each look at a stage."""
        self.draw()

    def draw(self) -> None:
        """On a terminal: the instance table and the timeline's latest lines, in place."""
        if not self.live:
            return
        width, rows = shutil.get_terminal_size((100, 30))
        try:
            records = self.records()
        except Exception:  # the workers not serving yet, or one coming back
            records = []
        shown = table(INSTANCE_COLUMNS, instance_rows(records, time.time()), width)
        screen = [f"epum demo on {self.amqp_url.split('@')[-1]} and {self.zk_hosts}", ""]
        screen += shown.splitlines()
        room = max(5, rows - len(screen) - 3)
        screen += ["", "Timeline:", *self.lines[-room:]]
        self.out.write(HOME_AND_CLEAR + "\n".join(line[:width] for line in screen) + "\n")
        self.out.flush()

    def _play(self) -> bool:
        client = self.client
        assert client is not None and self.rpc is not None
        if not self.stage("the workers serve", lambda: client.list_domain_definitions() == []):
            return False
        client.add_domain_definition(
            DEFINITION,
            {
                "general": {"engine_class": "simplest"},
                "engine_conf": {"epuworker_type": "sim-worker", "force_site": "sim-site"},
            },
        )
        conf = {"engine_conf": {"preserve_n": 3}, "health": dict(HEALTH)}
        client.add_domain(DOMAIN, DEFINITION, conf, caller=OWNER)
        self.say(f"{DOMAIN}: domain added (preserve_n=3, health monitoring on)")
        if not self.stage("three running", self.settled(3)):
            return False
        victim = self.healthy_running()[0]["instance_id"]
        self.say(f"{DOMAIN}: >> the cloud fails {victim[:8]}")
        self.rpc.call("provisioner", "fail", node_id=victim, reason="simulated hardware failure")
        if not self.stage("failed instance replaced", self.settled(3, without=victim)):
            return False
        victim = self.healthy_running()[0]["instance_id"]
        self.say(f"{DOMAIN}: >> the agent on {victim[:8]} goes silent")
        self.rpc.call("provisioner", "silence", node_id=victim)
        if not self.stage("silent instance replaced", self.settled(3, without=victim)):
            return False
        leader = self._decider()
        self.say(f"{DOMAIN}: >> the deciding worker ({leader}) is killed")
        self.workers[leader].send_signal(signal.SIGKILL)
        self.workers[leader].wait(10)
        client.reconfigure_domain(DOMAIN, {"engine_conf": {"preserve_n": 5}}, caller=OWNER)
        self.say(f"{DOMAIN}: >> reconfigured to preserve_n=5")
        if not self.stage("the other worker scaled it to five", self.settled(5)):
            return False
        log = client.describe_domain_history(DOMAIN, caller=OWNER)
        self.history = [describe_entry(e) for e in log]
        client.remove_domain(DOMAIN, caller=OWNER)
        self.say(f"{DOMAIN}: >> domain removal requested")
        return self.stage("domain removed", lambda: DOMAIN not in client.list_domains(OWNER))

    def _decider(self) -> str:
        store = ZooKeeperEPUMStore(self.zk_settings, worker_name="epum-demo")
        store.initialize()
        try:
            seats = store.election_contenders("decider")
        finally:
            store.shutdown()
        for name in WORKERS:
            if seats and seats[0].startswith(f"{self.names.sysname}-{name}@"):
                return name
        raise RuntimeError("no worker leads the decider")


def run_server_demo(amqp_url: str, zk_hosts: str, out: TextIO, live: bool, history: bool) -> int:
    """Play the story on the servers; print the stages (and the decision log); 0 if all
    finished."""
    demo = ServerDemo(amqp_url, zk_hosts, out, live)
    started = time.monotonic()
    ok = demo.run()
    out.write(f"\nthe story on real servers took {time.monotonic() - started:.1f} s\n")
    demo.report(out, demo.history if history else None)
    return 0 if ok else 1
