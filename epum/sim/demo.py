"""The demo: one EPUM keeps a domain of simulated instances at size, in simulated time.

Run ``epum demo`` (or ``python -m epum.sim.demo``, or ``scripts/demo``).  On the in-memory
store, in one process with no servers, it adds a definition and a domain of
3 with health monitoring on, then: brings the 3 up; has the cloud fail one;
has one's agent report a process error; has one's agent go silent until the
doctor finds it MISSING; scales the domain to 5; removes it.  EPUM replaces
each lost instance on its own.  On a terminal the domain's instances
are a live table redrawn in place with the timeline below it
(``epum.sim.live``); otherwise (CI, a pipe, ``--plain``) the timeline is
printed line by line.  A final table and a summary follow; the exit status
is 0 when every stage finished.  ``epum demo --amqp URL --zookeeper HOSTS``
tells the story on real servers instead (``epum.sim.demo_servers``), and
``epum demo --story sensor --amqp URL`` another story on the broker: a sensor
domain grown by a work queue's backlog and shrunk once its simulated
instances drained it (``epum.sim.demo_sensor``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from epum.errors import NotFoundError
from epum.history_words import describe_entry
from epum.sim.live import LiveScreen
from epum.sim.story import DEFINITION, DOMAIN, OWNER
from epum.sim.timeline import Timeline
from epum.sim.world import Simulation
from epum.states import InstanceHealthState, InstanceState

SUBSCRIBER = ("demo-subscriber", "instance_changed")

#: Health timeouts short enough to watch, in simulated seconds.
HEALTH = {
    "monitor_health": True,
    "boot_timeout": 30,
    "missing_timeout": 10,
    "really_missing_timeout": 5,
    "zombie_seconds": 60,
}

#: Longest any stage may take (simulated seconds) before the demo gives up on it.
STAGE_LIMIT = 120.0


@dataclass
class DemoResult:
    """What the demo saw: per-stage success, counts, the timeline and the final table."""

    stages: dict[str, bool] = field(default_factory=dict)
    launched: int = 0
    peak_running: int = 0
    final_states: dict[str, int] = field(default_factory=dict)
    domains_left: list[str] = field(default_factory=list)
    notifications: int = 0
    simulated_seconds: float = 0.0
    lines: list[str] = field(default_factory=list)
    table: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)  # the decision log, before removal

    @property
    def ok(self) -> bool:
        """True when every stage finished."""
        return bool(self.stages) and all(self.stages.values())


class Demo:
    """The demo's stages over one ``Simulation``; ``run()`` plays them all."""

    def __init__(self, out: Callable[[str], None] = print, seed: int = 0):
        self.out = out
        self.sim = Simulation(seed=seed, heartbeat_interval=5.0)
        self.timeline = Timeline(
            self.sim.epum.store, OWNER, self.sim.clock, self.sim.notifier, out=out
        )
        self.sim.observers.append(self.timeline)
        self.result = DemoResult()

    # what the demo looks at ---------------------------------------------------
    def records(self) -> list[dict]:
        """The domain's instance records (empty once it is removed)."""
        try:
            return self.sim.epum.msg_describe_domain(OWNER, DOMAIN)["instances"]
        except NotFoundError:
            return []

    def healthy_running(self) -> list[dict]:
        """Records RUNNING with health OK."""
        return [
            r
            for r in self.records()
            if r["state"] == InstanceState.RUNNING and r["health"] == InstanceHealthState.OK
        ]

    def settled(self, size: int) -> Callable[[], bool]:
        """A condition: exactly ``size`` live instances, all RUNNING and healthy."""

        def check() -> bool:
            live = [r for r in self.records() if r["state"] < InstanceState.TERMINATING]
            return len(live) == size and len(self.healthy_running()) == size

        return check

    def lost_contact(self, instance_id: str) -> Callable[[], bool]:
        """A condition: the doctor has judged ``instance_id`` MISSING (after OUT_OF_CONTACT)."""

        def check() -> bool:
            seen = self.timeline.instances.get(instance_id)
            return seen is not None and InstanceHealthState.MISSING in seen.healths

        return check

    def stage(self, name: str, until: Callable[[], bool]) -> bool:
        """Run the simulation until ``until()``; record and announce whether it got there."""
        done = self.sim.run(STAGE_LIMIT, until=until)
        self.result.stages[name] = done
        if not done:
            self.timeline.say(f"!! stage '{name}' did not finish in {STAGE_LIMIT:g}s")
        self.result.peak_running = max(self.result.peak_running, len(self.healthy_running()))
        return done

    def pick(self) -> dict:
        """The healthy running record that appeared first."""
        order = {i: n for n, i in enumerate(self.timeline.instances)}
        return min(self.healthy_running(), key=lambda r: order.get(r["instance_id"], 0))

    # the stages ------------------------------------------------------------------
    def run(self) -> DemoResult:
        """Play every stage (stopping at the first that fails); return what was seen."""
        epum = self.sim.epum
        with self.sim:
            say = self.timeline.say
            epum.msg_add_domain_definition(
                DEFINITION,
                {
                    "general": {"engine_class": "simplest"},
                    "engine_conf": {"epuworker_type": "sim-worker", "force_site": "sim-site"},
                },
            )
            epum.msg_add_domain(
                OWNER,
                DOMAIN,
                DEFINITION,
                {"engine_conf": {"preserve_n": 3}, "health": dict(HEALTH)},
                subscriber_name=SUBSCRIBER[0],
                subscriber_op=SUBSCRIBER[1],
            )
            say(f"{DOMAIN}: domain added (preserve_n=3, health monitoring on)")
            steps = [self._grow, self._cloud_failure, self._process_error, self._silence]
            steps += [self._scale_up, self._remove]
            for step in steps:
                if not step():
                    break
            self._finish()
        return self.result

    def _grow(self) -> bool:
        return self.stage("three running", self.settled(3))

    def _cloud_failure(self) -> bool:
        victim = self.pick()
        self.timeline.say(
            f"{DOMAIN}: >> the cloud fails {self.timeline.name(victim['instance_id'])}"
        )
        self.sim.provisioner.fail(victim["instance_id"], "simulated hardware failure")
        return self.stage("failed instance replaced", self._replaced(victim, 3))

    def _process_error(self) -> bool:
        victim = self.pick()
        name = self.timeline.name(victim["instance_id"])
        self.timeline.say(f"{DOMAIN}: >> the worker process on {name} crashes")
        self.sim.agents.report_error(victim["instance_id"], "worker exited with status 1")
        return self.stage("process error replaced", self._replaced(victim, 3))

    def _silence(self) -> bool:
        victim = self.pick()
        name = self.timeline.name(victim["instance_id"])
        self.timeline.say(f"{DOMAIN}: >> the agent on {name} goes silent")
        self.sim.agents.go_silent(victim["instance_id"])
        found = self.stage("silent instance found", self.lost_contact(victim["instance_id"]))
        return found and self.stage("silent instance replaced", self._replaced(victim, 3))

    def _scale_up(self) -> bool:
        self.sim.epum.msg_reconfigure_domain(OWNER, DOMAIN, {"engine_conf": {"preserve_n": 5}})
        self.timeline.say(f"{DOMAIN}: >> reconfigured to preserve_n=5")
        return self.stage("scaled to five", self.settled(5))

    def _remove(self) -> bool:
        log = self.sim.epum.msg_describe_domain_history(OWNER, DOMAIN)
        self.result.history = [describe_entry(e) for e in log]
        self.sim.epum.msg_remove_domain(OWNER, DOMAIN)
        self.timeline.say(f"{DOMAIN}: >> domain removal requested")
        store = self.sim.epum.store
        return self.stage("domain removed", lambda: store.get_domain(OWNER, DOMAIN) is None)

    def _replaced(self, victim: dict, size: int) -> Callable[[], bool]:
        settled = self.settled(size)

        def check() -> bool:
            live = {r["instance_id"] for r in self.records() if r["state"] < "700"}
            return victim["instance_id"] not in live and settled()

        return check

    def _finish(self) -> None:
        result = self.result
        result.launched = len(self.sim.provisioner.requests)
        for seen in self.timeline.instances.values():
            result.final_states[seen.state] = result.final_states.get(seen.state, 0) + 1
        result.domains_left = self.sim.epum.msg_list_domains(OWNER)
        result.notifications = len(self.sim.notifier.sent)
        result.simulated_seconds = self.sim.clock.elapsed
        result.lines = list(self.timeline.lines)
        result.table = self.timeline.table()


def run_demo(out: Callable[[str], None] = print, seed: int = 0) -> DemoResult:
    """Play the demo, writing the timeline to ``out``; return what it saw."""
    return Demo(out=out, seed=seed).run()


def run_live_demo(stream: Any, seed: int = 0, pace: float = 0.0) -> DemoResult:
    """Play the demo as a live screen on ``stream`` (a terminal), ``pace`` real seconds
    between changed frames; return what it saw."""
    demo = Demo(out=lambda line: None, seed=seed)
    screen = LiveScreen(
        demo.timeline,
        stream,
        "epum demo: one domain of simulated instances, in simulated time",
        size=lambda: tuple(shutil.get_terminal_size((100, 30))),
        pace=pace,
    )
    demo.sim.observers.append(screen)
    demo.timeline.out = lambda line: screen.draw()  # announcements show at once
    result = demo.run()
    screen.draw()
    return result


def main(argv: list[str] | None = None, stream: Any = None) -> int:
    """The command line: play the demo (live on a terminal, plain otherwise), then print
    the table of every instance and a summary."""
    parser = argparse.ArgumentParser(prog="epum demo", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show epum's own log")
    parser.add_argument("--plain", action="store_true", help="no live table, even on a terminal")
    parser.add_argument(
        "--pace", type=float, default=0.05, help="live mode: real seconds per change (0.05)"
    )
    parser.add_argument(
        "--history", action="store_true", help="print the domain's decision log at the end"
    )
    parser.add_argument(
        "--story",
        choices=("instances", "sensor"),
        default="instances",
        help="instances (the default): a domain kept at size through failures;"
        " sensor (needs --amqp): a domain grown and shrunk by the work queue it drains",
    )
    parser.add_argument("--amqp", metavar="URL", help="tell the story on this broker ...")
    parser.add_argument("--zookeeper", metavar="HOSTS", help="... and this ZooKeeper")
    args = parser.parse_args(argv)
    stream = stream or sys.stdout
    live = not args.plain and stream.isatty()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.story == "sensor":
        if not args.amqp:
            parser.error("--story sensor needs --amqp URL (its instances drain a real queue)")
        from epum.sim.demo_sensor import run_sensor_demo

        return run_sensor_demo(args.amqp, args.zookeeper, stream, args.history)
    if args.amqp or args.zookeeper:
        if not (args.amqp and args.zookeeper):
            parser.error("--amqp and --zookeeper go together")
        from epum.sim.demo_servers import run_server_demo

        return run_server_demo(args.amqp, args.zookeeper, stream, live, args.history)
    started = time.monotonic()

    def say(text: str = "") -> None:
        stream.write(text + "\n")

    if live:
        result = run_live_demo(stream, seed=args.seed, pace=args.pace)
    else:
        say("epum demo: one domain of simulated instances, in simulated time\n")
        result = run_demo(out=say, seed=args.seed)
    say("\nEvery instance the domain had:\n")
    for row in result.table:
        say("  " + row)
    states = ", ".join(f"{n} {s.split('-', 1)[-1]}" for s, n in sorted(result.final_states.items()))
    say(
        f"\n{result.launched} launched; ended {states}; peak {result.peak_running} running;"
        f" {result.notifications} subscriber notifications;"
        f" {result.simulated_seconds:.0f} simulated seconds in"
        f" {time.monotonic() - started:.2f} s"
    )
    for name, done in result.stages.items():
        say(f"  [{'ok' if done else 'FAILED'}] {name}")
    if args.history:
        say("\nWhy it did (not) scale (the decision log, before the removal):\n")
        for line in result.history:
            say("  " + line)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
