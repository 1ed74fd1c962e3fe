"""Benchmark: heartbeats handled per second by the facade, and the writes they cost.

N running instances of a health-monitored domain heartbeat OK every
``interval`` simulated seconds for ``rounds`` rounds; the facade's
``msg_heartbeat`` handles them one after another (the path an RPC worker
takes, without the broker).  Printed, with the bare infrastructure measured
in the same run:

- memory store: heartbeats/s vs a bare loop doing the least a heartbeat
  needs (find the instance's domain through the index, read its record);
- ZooKeeper (when ``epum.store.zookeeper`` exists): heartbeats/s vs bare
  sequential kazoo ``set``/s (and ``get``/s) of record-sized znodes, and
  ZooKeeper write transactions per heartbeat (from the server's zxid).

Record writes per heartbeat (from the records' versions) are printed for
both: with the reactor's bounded writes they should be near
``interval / (0.25 * missing_timeout)``, not 1.

Run: ``.venv/bin/python -m bench.heartbeats [--instances N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import (
    Figure,
    kazoo_client,
    ratio,
    table,
    unbounded_launches,
    unique_path,
    zookeeper,
    zookeeper_store_available,
    zxid,
)
from epum.sim.agents import agent_address
from epum.sim.cloud import Delays
from epum.sim.world import Simulation
from epum.states import InstanceHealthState, InstanceState
from epum.store.base import EPUMStore

OWNER = "bench"
MISSING_TIMEOUT = 120.0


def populated(instances: int, store: EPUMStore | None = None) -> Simulation:
    """A started simulation with one monitored domain of ``instances`` RUNNING instances."""
    sim = Simulation(
        conf=unbounded_launches(instances),
        store=store,
        delays=Delays(pending=0, started=0, running=0),
    ).start()
    epum = sim.epum
    epum.msg_add_domain_definition(
        "bench", {"general": {"engine_class": "simplest"}, "engine_conf": {"epuworker_type": "dt"}}
    )
    epum.msg_add_domain(
        OWNER,
        "dom",
        "bench",
        {
            "engine_conf": {"preserve_n": instances},
            "health": {"monitor_health": True, "missing_timeout": MISSING_TIMEOUT},
        },
    )
    sim.decide_now()
    sim.provisioner.step(sim.now)
    if len(sim.provisioner.nodes(InstanceState.RUNNING)) != instances:
        raise RuntimeError("the instances did not all reach RUNNING")
    return sim


def node_ids(sim: Simulation) -> list[str]:
    """The ids of every running instance."""
    return sorted(n.instance_id for n in sim.provisioner.nodes(InstanceState.RUNNING))


def record_versions(store: EPUMStore) -> int:
    """The sum of every record's store version (rises by one per record write)."""
    return sum(r.version or 0 for d in store.get_all_domains() for r in d.get_instances())


@dataclass
class HeartbeatFigures:
    """What one run of heartbeats cost."""

    heartbeats: int
    seconds: float
    record_writes: int

    @property
    def per_second(self) -> float:
        """Heartbeats handled per wall-clock second."""
        return self.heartbeats / self.seconds

    @property
    def writes_per_heartbeat(self) -> float:
        """Record writes per heartbeat."""
        return self.record_writes / self.heartbeats


def run_heartbeats(
    sim: Simulation,
    rounds: int,
    interval: float,
    between: Callable[[], None] | None = None,
) -> HeartbeatFigures:
    """Send ``rounds`` rounds of OK heartbeats from every instance; time them.

    One untimed round first, so the agents' addresses and first health are
    already written and the timed rounds show the steady state.  ``between``
    runs after each timed round (outside the timing): the bare measurements
    take turns with the heartbeats that way.
    """
    epum = sim.epum
    ids = node_ids(sim)
    beats = [(agent_address(i), {"node_id": i, "state": InstanceHealthState.OK}) for i in ids]
    now = sim.now
    for address, content in beats:
        epum.msg_heartbeat(address, content, timestamp=now)
    versions = record_versions(epum.store)
    seconds = 0.0
    for _ in range(rounds):
        now += interval
        started = time.perf_counter()
        for address, content in beats:
            epum.msg_heartbeat(address, content, timestamp=now)
        seconds += time.perf_counter() - started
        if between is not None:
            between()
    writes = record_versions(epum.store) - versions
    return HeartbeatFigures(rounds * len(beats), seconds, writes)


class BareRate:
    """Accumulates timed rounds of a bare operation into a rate per second."""

    def __init__(self, op: Callable[[str], Any], keys: list[str]):
        self.op = op
        self.keys = keys
        self.count = 0
        self.seconds = 0.0

    def round(self) -> None:
        """Apply the operation to every key once, timed."""
        started = time.perf_counter()
        for key in self.keys:
            self.op(key)
        self.seconds += time.perf_counter() - started
        self.count += len(self.keys)

    @property
    def per_second(self) -> float:
        """Operations per wall-clock second so far."""
        return self.count / self.seconds if self.seconds else 0.0


def measure_memory(instances: int, rounds: int, interval: float) -> tuple[HeartbeatFigures, float]:
    """Facade heartbeats on the memory store, and bare lookups/s of the same records.

    The bare lookup is the least a heartbeat needs: the index, then the record.
    """
    with populated(instances) as sim:
        store = sim.epum.store

        def lookup(instance_id: str) -> None:
            store.get_domain_for_instance_id(instance_id).get_instance(instance_id)

        bare = BareRate(lookup, node_ids(sim))
        figures = run_heartbeats(sim, rounds, interval, bare.round)
    return figures, bare.per_second


@dataclass
class ZooKeeperFigures:
    """Facade heartbeats on ZooKeeper, the write transactions they cost, bare kazoo rates."""

    heartbeats: HeartbeatFigures
    zk_writes: int
    bare_sets_per_second: float
    bare_gets_per_second: float

    @property
    def zk_writes_per_heartbeat(self) -> float:
        """ZooKeeper write transactions per heartbeat (every znode the store wrote)."""
        return self.zk_writes / self.heartbeats.heartbeats


def measure_zookeeper(
    server: Any, instances: int, rounds: int, interval: float
) -> ZooKeeperFigures:
    """Facade heartbeats on a ZooKeeper store, the zxids they cost, and bare kazoo rates.

    After each round of heartbeats, a round of bare sets and one of bare gets
    of as many record-sized znodes; the sets' own transactions are taken off
    the zxid count.
    """
    from epum.settings import ZooKeeperSettings
    from epum.store.zookeeper import ZooKeeperEPUMStore

    base = unique_path("heartbeats")
    store = ZooKeeperEPUMStore(ZooKeeperSettings(hosts=server.hosts, path=base))
    store.initialize()
    client = kazoo_client(server.hosts)
    record = {"instance_id": "x" * 36, "state": InstanceState.RUNNING, "pad": "y" * 400}
    data = json.dumps(record).encode()
    paths = [f"{base}/bare/n{i:05d}" for i in range(instances)]
    try:
        for path in paths:
            client.create(path, data, makepath=True)
        sets = BareRate(lambda path: client.set(path, data), paths)
        gets = BareRate(client.get, paths)

        def bare_round() -> None:
            sets.round()
            gets.round()

        with populated(instances, store=store) as sim:
            before = zxid(server)
            figures = run_heartbeats(sim, rounds, interval, bare_round)
            # the untimed first round wrote every record once
            zk_writes = zxid(server) - before - sets.count - instances
    finally:
        store.shutdown()
        client.delete(base, recursive=True)
        client.stop()
        client.close()
    return ZooKeeperFigures(figures, zk_writes, sets.per_second, gets.per_second)


def figures(
    instances: int = 200,
    rounds: int = 30,
    interval: float = 5.0,
    zk_instances: int = 50,
    zk_rounds: int = 30,
    *,
    server: Any = None,
) -> list[Figure]:
    """Facade heartbeats/s against the bare reads and writes on both stores, and the writes
    they cost (ZooKeeper: on ``server``, a running test kit server, or a private one;
    skipped while the store is missing)."""
    mem, bare_lookups = measure_memory(instances, rounds, interval)
    found = [
        Figure("facade heartbeats, memory store", mem.per_second, "/s", bare=bare_lookups),
        Figure(
            "facade record writes per heartbeat, memory store", mem.writes_per_heartbeat, "writes"
        ),
    ]
    if zookeeper_store_available():
        with zookeeper(server) as zk_server:
            zk = measure_zookeeper(zk_server, zk_instances, zk_rounds, interval)
        rate = zk.heartbeats.per_second
        found += [
            Figure(
                "facade heartbeats, ZooKeeper store, vs kazoo set",
                rate,
                "/s",
                bare=zk.bare_sets_per_second,
            ),
            Figure(
                "facade heartbeats, ZooKeeper store, vs kazoo get",
                rate,
                "/s",
                bare=zk.bare_gets_per_second,
            ),
            Figure(
                "facade ZooKeeper writes per heartbeat",
                zk.zk_writes_per_heartbeat,
                "writes",
            ),
        ]
    return found


#: Sizes small enough for the test suite (seconds, not minutes).
TINY = {"instances": 3, "rounds": 2, "zk_instances": 3, "zk_rounds": 2}


def main(argv: list[str] | None = None) -> int:
    """Print heartbeat rates and write costs on both stores."""
    parser = argparse.ArgumentParser(description="heartbeats/s vs bare infrastructure")
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--interval", type=float, default=5.0, help="simulated s between beats")
    parser.add_argument("--zk-instances", type=int, default=50)
    parser.add_argument("--zk-rounds", type=int, default=30)
    parser.add_argument("--no-zookeeper", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    started = time.monotonic()
    expected = args.interval / (0.25 * MISSING_TIMEOUT)

    mem, bare_lookups = measure_memory(args.instances, args.rounds, args.interval)
    print(
        f"heartbeats, memory store: {args.instances} instances x {args.rounds} rounds,"
        f" one every {args.interval:g} simulated s, missing_timeout {MISSING_TIMEOUT:g} s"
    )
    print(
        table(
            [
                ("measured", "rate", "ratio"),
                ("facade msg_heartbeat", f"{mem.per_second:10.0f} /s", ""),
                (
                    "bare index + record read",
                    f"{bare_lookups:10.0f} /s",
                    ratio(bare_lookups, mem.per_second),
                ),
            ]
        )
    )
    print(
        f"record writes per heartbeat: {mem.writes_per_heartbeat:.3f}"
        f" (bound: about {expected:.3f})\n"
    )

    if args.no_zookeeper:
        pass
    elif not zookeeper_store_available():
        print("ZooKeeper: skipped (epum.store.zookeeper is not in this tree yet)")
    else:
        with zookeeper() as server:
            zk = measure_zookeeper(server, args.zk_instances, args.zk_rounds, args.interval)
        hb = zk.heartbeats
        sizes = f"{args.zk_instances} instances x {args.zk_rounds} rounds"
        print(f"heartbeats, ZooKeeper store: {sizes}")
        print(
            table(
                [
                    ("measured", "rate", "ratio"),
                    ("facade msg_heartbeat", f"{hb.per_second:10.0f} /s", ""),
                    (
                        "bare kazoo set",
                        f"{zk.bare_sets_per_second:10.0f} /s",
                        ratio(zk.bare_sets_per_second, hb.per_second),
                    ),
                    (
                        "bare kazoo get",
                        f"{zk.bare_gets_per_second:10.0f} /s",
                        ratio(zk.bare_gets_per_second, hb.per_second),
                    ),
                ]
            )
        )
        print(
            f"record writes per heartbeat: {hb.writes_per_heartbeat:.3f};"
            f" ZooKeeper write transactions per heartbeat: {zk.zk_writes_per_heartbeat:.3f}"
            f" (bound: about {expected:.3f})"
        )
    print(
        "\n(ratio = how many times faster the bare infrastructure is than the facade)"
        f"\n(benchmark took {time.monotonic() - started:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
