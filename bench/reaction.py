"""Benchmark: how fast epum replaces a failed instance, next to what it stands on.

One domain of one instance, kept by the simplest engine, on two workers that
share a ZooKeeper store with their timed loops running (decider pass every
``--interval`` seconds).  Each round the provisioner's report that the
instance FAILED reaches the worker that is *not* the decider; the clock runs
until the decider, woken through the store's watches, asks the provisioner
for the replacement.  Printed, with the bare infrastructure measured in the
same run:

- reaction time (report -> replacement requested) vs a bare ZooKeeper watch
  round trip (``set`` on one kazoo client -> data watch fires on another),
  the least any cross-worker reaction can cost;
- the same reaction time against the timed pass interval, which is what a
  decider that only polled would cost on average (half the interval).

Run: ``.venv/bin/python -m bench.reaction [--rounds N] [--interval S]``.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

from bench.common import Figure, kazoo_client, ms, ratio, table, unique_path, zookeeper
from epum.management import EPUManagement
from epum.states import InstanceState
from tests.fakes import FakeDTRS, FakeNotifier, FakeProvisioner


class SignallingProvisioner(FakeProvisioner):
    """A FakeProvisioner that notes when each provision request arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Condition()

    def provision(self, *args: Any, **kwargs: Any) -> None:
        super().provision(*args, **kwargs)
        with self.arrived:
            self.arrived.notify_all()

    def wait_for_requests(self, count: int, timeout: float) -> float:
        """Block until ``count`` requests arrived; returns the monotonic time then."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.provisioned) >= count, timeout):
                raise RuntimeError(f"no provision request #{count} within {timeout} s")
        return time.monotonic()


def watch_round_trips(hosts: str, rounds: int) -> list[float]:
    """Seconds from a ``set`` on one client until another client's data watch fires."""
    writer, watcher = kazoo_client(hosts), kazoo_client(hosts)
    path = unique_path("watch")
    writer.create(path, b"0", makepath=True)
    changed = threading.Event()
    seen: list[bytes] = []

    @watcher.DataWatch(path)
    def _on_change(data: bytes | None, stat: Any) -> None:
        seen.append(data or b"")
        changed.set()

    times = []
    try:
        for i in range(rounds):
            changed.clear()
            started = time.monotonic()
            writer.set(path, str(i + 1).encode())
            if not changed.wait(10):
                raise RuntimeError("the data watch never fired")
            times.append(time.monotonic() - started)
    finally:
        for client in (writer, watcher):
            client.stop()
            client.close()
    return times


def reaction_times(hosts: str, rounds: int, interval: float, wait: float = 30.0) -> list[float]:
    """Seconds from a FAILED report (to the non-deciding worker) to the replacement request.

    Raises RuntimeError if a replacement takes longer than ``wait`` seconds.
    """
    from epum.settings import ZooKeeperSettings
    from epum.store.zookeeper import ZooKeeperEPUMStore

    base = unique_path("reaction")
    provisioner = SignallingProvisioner()
    conf = {"decider_loop_interval": interval, "doctor_loop_interval": 3600}
    workers = []
    for name in ("a", "b"):
        store = ZooKeeperEPUMStore(ZooKeeperSettings(hosts=hosts, path=base), worker_name=name)
        store.initialize()
        epum = EPUManagement(conf, FakeNotifier(), provisioner, None, FakeDTRS(), store=store)
        epum.initialize()
        workers.append(epum)
    try:
        deadline = time.monotonic() + 10
        while not any(w.decider.is_leader for w in workers):
            if time.monotonic() > deadline:
                raise RuntimeError("no decider was elected")
            threading.Event().wait(0.01)
        reporter = next(w for w in workers if not w.decider.is_leader)
        reporter.msg_add_domain_definition("one", {"general": {"engine_class": "simplest"}})
        reporter.msg_add_domain("bench", "dom", "one", {"engine_conf": {"preserve_n": 1}})
        provisioner.wait_for_requests(1, 10)
        times = []
        for i in range(rounds):
            victim = provisioner.provisioned[-1]["instance_ids"][0]
            reporter.msg_instance_info("prov", {"node_id": victim, "state": InstanceState.RUNNING})
            started = time.monotonic()
            reporter.msg_instance_info("prov", {"node_id": victim, "state": InstanceState.FAILED})
            times.append(provisioner.wait_for_requests(i + 2, wait) - started)
        return times
    finally:
        for epum in workers:
            epum.shutdown()


def figures(rounds: int = 30, interval: float = 5.0, *, server: Any = None) -> list[Figure]:
    """The median reaction against a bare watch round trip and against polling (on
    ``server``, a running test kit server, or a private one)."""
    with zookeeper(server) as zk:
        bare = statistics.median(watch_round_trips(zk.hosts, rounds))
        reaction = reaction_times(zk.hosts, rounds, interval, wait=10 + 2 * min(interval, 60))
    median = statistics.median(reaction) * 1000
    return [
        Figure(
            "FAILED report to replacement, two facades on ZooKeeper",
            median,
            "ms",
            bare=bare * 1000,
        ),
        Figure(
            "FAILED report to replacement, vs a polling decider",
            median,
            "ms",
            bare=interval / 2 * 1000,
        ),
    ]


#: Sizes small enough for the test suite: with an hour between timed passes only
#: the wake path can replace within the wait.
TINY = {"rounds": 2, "interval": 3600.0}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--interval", type=float, default=5.0, help="decider pass interval, s")
    args = parser.parse_args(argv)
    began = time.monotonic()
    with zookeeper() as server:
        bare = statistics.median(watch_round_trips(server.hosts, args.rounds))
        reaction = reaction_times(
            server.hosts, args.rounds, args.interval, wait=10 + 2 * args.interval
        )
    median = statistics.median(reaction)
    polled = args.interval / 2
    print(f"replacing a failed instance, two workers on ZooKeeper, {args.rounds} rounds")
    print(
        table(
            [
                ("measured (median)", "time", "ratio"),
                ("report -> replacement requested", ms(median), ""),
                ("bare ZooKeeper watch round trip", ms(bare), ratio(median, bare)),
                ("a polling decider (half the interval)", ms(polled), ratio(median, polled)),
            ]
        )
    )
    print(f"worst reaction: {ms(max(reaction))}")
    print(f"\n(benchmark took {time.monotonic() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
