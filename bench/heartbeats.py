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
    kazoo_client,
    ratio,
    table,
    time_runs,
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
    sim = Simulation(store=store, delays=Delays(pending=0, started=0, running=0)).start()
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
    warmed: Callable[[], None] | None = None,
) -> HeartbeatFigures:
    """Send ``rounds`` rounds of OK heartbeats from every instance; time them.

    One untimed round first, so the agents' addresses and first health are
    already written and the timed rounds show the steady state; ``warmed``
    is called between the two.
    """
    epum = sim.epum
    ids = node_ids(sim)
    beats = [(agent_address(i), {"node_id": i, "state": InstanceHealthState.OK}) for i in ids]
    now = sim.now
    for address, content in beats:
        epum.msg_heartbeat(address, content, timestamp=now)
    versions = record_versions(epum.store)
    if warmed is not None:
        warmed()
    started = time.perf_counter()
    for _ in range(rounds):
        now += interval
        for address, content in beats:
            epum.msg_heartbeat(address, content, timestamp=now)
    seconds = time.perf_counter() - started
    writes = record_versions(epum.store) - versions
    return HeartbeatFigures(rounds * len(beats), seconds, writes)


def bare_memory_lookups(store: EPUMStore, ids: list[str]) -> Callable[[], None]:
    """The least a heartbeat needs, in a bare loop: the index, then the record."""

    def run() -> None:
        for instance_id in ids:
            domain = store.get_domain_for_instance_id(instance_id)
            domain.get_instance(instance_id)

    return run


def measure_memory(instances: int, rounds: int, interval: float) -> tuple[HeartbeatFigures, float]:
    """Facade heartbeats on the memory store, and bare lookups/s of the same records."""
    with populated(instances) as sim:
        figures = run_heartbeats(sim, rounds, interval)
        ids = node_ids(sim)
        bare = time_runs(bare_memory_lookups(sim.epum.store, ids), max(1, rounds // 4))
    return figures, len(ids) / bare.median


@dataclass
class ZooKeeperFigures:
    """Facade heartbeats on ZooKeeper and the bare kazoo set rate."""

    heartbeats: HeartbeatFigures
    zk_writes: int
    bare_sets_per_second: float
    bare_gets_per_second: float

    @property
    def zk_writes_per_heartbeat(self) -> float:
        """ZooKeeper write transactions per heartbeat (every znode the store wrote)."""
        return self.zk_writes / self.heartbeats.heartbeats


def bare_rates(client: Any, base: str, znodes: int, ops: int) -> tuple[float, float]:
    """Sequential kazoo ``set``/s and ``get``/s over ``znodes`` record-sized znodes."""
    record = {"instance_id": "x" * 36, "state": InstanceState.RUNNING, "pad": "y" * 400}
    data = json.dumps(record).encode()
    paths = [f"{base}/bare/n{i:05d}" for i in range(znodes)]
    for path in paths:
        client.create(path, data, makepath=True)
    started = time.perf_counter()
    for i in range(ops):
        client.set(paths[i % znodes], data)
    sets = ops / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(ops):
        client.get(paths[i % znodes])
    gets = ops / (time.perf_counter() - started)
    return sets, gets


def measure_zookeeper(
    server: Any, instances: int, rounds: int, interval: float, ops: int
) -> ZooKeeperFigures:
    """Facade heartbeats on a ZooKeeper store, the zxids they cost, and bare kazoo rates."""
    from epum.store.zookeeper import ZooKeeperEPUMStore

    base = unique_path("heartbeats")
    store = ZooKeeperEPUMStore(hosts=server.hosts, base_path=base)
    store.initialize()
    client = kazoo_client(server.hosts)
    try:
        marks: list[int] = []
        with populated(instances, store=store) as sim:
            figures = run_heartbeats(sim, rounds, interval, lambda: marks.append(zxid(server)))
            zk_writes = zxid(server) - marks[0]
        sets_rate, gets_rate = bare_rates(client, base, instances, ops)
    finally:
        store.shutdown()
        client.delete(base, recursive=True)
        client.stop()
        client.close()
    return ZooKeeperFigures(figures, zk_writes, sets_rate, gets_rate)


def main(argv: list[str] | None = None) -> int:
    """Print heartbeat rates and write costs on both stores."""
    parser = argparse.ArgumentParser(description="heartbeats/s vs bare infrastructure")
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--interval", type=float, default=5.0, help="simulated s between beats")
    parser.add_argument("--zk-instances", type=int, default=50)
    parser.add_argument("--zk-rounds", type=int, default=30)
    parser.add_argument("--zk-ops", type=int, default=2000, help="bare sets and gets")
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
            zk = measure_zookeeper(
                server, args.zk_instances, args.zk_rounds, args.interval, args.zk_ops
            )
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
