"""Benchmark: one decider pass over D domains of N running instances, vs bare reads.

A steady-state pass (every domain at size, nothing to launch) is timed
through the facade's ``_run_decisions()``, and compared in the same run
with the bare reads of the same data:

- memory store: the store reads a pass makes (each domain's config,
  engine_conf, sensor data and records) in a bare loop, and a plain Python
  loop over the same records as dicts;
- ZooKeeper (when ``epum.store.zookeeper`` exists): bare sequential kazoo
  ``get`` of every znode under the store's ``domains`` subtree.

Run: ``.venv/bin/python -m bench.decider_pass [--domains D] [--instances N]``.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import (
    Figure,
    Timing,
    kazoo_client,
    ms,
    ratio,
    table,
    time_interleaved,
    unbounded_launches,
    unique_path,
    znodes_under,
    zookeeper,
    zookeeper_store_available,
)
from epum.sim.cloud import Delays
from epum.sim.world import Simulation
from epum.states import InstanceState
from epum.store.base import EPUMStore

OWNER = "bench"


def populated(domains: int, instances: int, store: EPUMStore | None = None) -> Simulation:
    """A started simulation with ``domains`` domains of ``instances`` RUNNING instances each."""
    conf = unbounded_launches(domains * instances)
    conf["limits"]["max_domains_per_caller"] = domains + 1  # one owner holds them all
    sim = Simulation(
        conf=conf,
        store=store,
        delays=Delays(pending=0, started=0, running=0),
    ).start()
    epum = sim.epum
    epum.msg_add_domain_definition(
        "bench", {"general": {"engine_class": "simplest"}, "engine_conf": {"epuworker_type": "dt"}}
    )
    for d in range(domains):
        epum.msg_add_domain(
            OWNER, f"dom{d:04d}", "bench", {"engine_conf": {"preserve_n": instances}}
        )
    sim.decide_now()
    sim.provisioner.step(sim.now)
    want = domains * instances
    running = len(sim.provisioner.nodes(InstanceState.RUNNING))
    if running != want:
        raise RuntimeError(f"expected {want} running instances, have {running}")
    return sim


def store_reads(store: EPUMStore) -> Callable[[], int]:
    """The reads of one decider pass, in a bare loop; returns how many records it read."""

    def run() -> int:
        count = 0
        for domain in store.get_all_domains():
            domain.is_removed()
            domain.get_all_config()
            domain.get_versioned_config("engine_conf")
            domain.get_domain_sensor_data()
            count += len(domain.get_instances())
        return count

    return run


def plain_loop(records: list[dict[str, Any]]) -> Callable[[], int]:
    """A plain Python loop over the records (as dicts), counting the live ones."""

    def run() -> int:
        return sum(1 for r in records if r["state"] < InstanceState.TERMINATING)

    return run


@dataclass
class MemoryFigures:
    """Median seconds per pass on the memory store."""

    decider: Timing
    reads: Timing
    plain: Timing


def measure_memory(domains: int, instances: int, passes: int) -> MemoryFigures:
    """Time decider passes, bare store reads and a plain loop over the same records."""
    with populated(domains, instances) as sim:
        store = sim.epum.store
        records = [r.to_dict() for d in store.get_all_domains() for r in d.get_instances()]
        timings = time_interleaved(
            {
                "decider": sim.epum._run_decisions,
                "reads": store_reads(store),
                "plain": plain_loop(records),
            },
            passes,
        )
        launched = len(sim.provisioner.requests)
    if launched != domains * instances:
        raise RuntimeError("a steady-state pass launched instances; the benchmark is wrong")
    return MemoryFigures(timings["decider"], timings["reads"], timings["plain"])


@dataclass
class ZooKeeperFigures:
    """Median seconds per pass on ZooKeeper, and the znodes read bare."""

    decider: Timing
    bare_gets: Timing
    znodes: int


def measure_zookeeper(hosts: str, domains: int, instances: int, passes: int) -> ZooKeeperFigures:
    """Time decider passes on a ZooKeeper store and bare kazoo gets of its znodes."""
    from epum.settings import ZooKeeperSettings
    from epum.store.zookeeper import ZooKeeperEPUMStore

    base = unique_path("decider")
    store = ZooKeeperEPUMStore(ZooKeeperSettings(hosts=hosts, path=base))
    store.initialize()
    client = kazoo_client(hosts)
    try:
        with populated(domains, instances, store=store) as sim:
            paths = znodes_under(client, f"{base}/domains")

            def bare() -> None:
                for path in paths:
                    client.get(path)

            timings = time_interleaved({"decider": sim.epum._run_decisions, "bare": bare}, passes)
    finally:
        store.shutdown()
        client.delete(base, recursive=True)
        client.stop()
        client.close()
    return ZooKeeperFigures(timings["decider"], timings["bare"], len(paths))


def figures(
    domains: int = 20,
    instances: int = 50,
    passes: int = 20,
    zk_domains: int = 20,
    zk_instances: int = 50,
    zk_passes: int = 10,
    *,
    server: Any = None,
) -> list[Figure]:
    """The median pass on both stores against its bare reads (ZooKeeper: on ``server``, a
    running test kit server, or a private one; skipped while the store is missing)."""
    mem = measure_memory(domains, instances, passes)
    found = [
        Figure(
            "decider pass, memory store",
            mem.decider.median * 1000,
            "ms",
            bare=mem.reads.median * 1000,
        ),
        Figure(
            "decider pass, memory store, vs a plain loop",
            mem.decider.median * 1000,
            "ms",
            bare=mem.plain.median * 1000,
        ),
    ]
    if zookeeper_store_available():
        with zookeeper(server) as zk:
            on_zk = measure_zookeeper(zk.hosts, zk_domains, zk_instances, zk_passes)
        found.append(
            Figure(
                "decider pass, ZooKeeper store",
                on_zk.decider.median * 1000,
                "ms",
                bare=on_zk.bare_gets.median * 1000,
            )
        )
    return found


#: Sizes small enough for the test suite (seconds, not minutes).
TINY = {
    "domains": 2,
    "instances": 2,
    "passes": 2,
    "zk_domains": 2,
    "zk_instances": 2,
    "zk_passes": 2,
}


def main(argv: list[str] | None = None) -> int:
    """Print the figures of both stores (ZooKeeper only when its store exists)."""
    parser = argparse.ArgumentParser(description="decider pass vs bare reads")
    parser.add_argument("--domains", type=int, default=20)
    parser.add_argument("--instances", type=int, default=50, help="per domain")
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--zk-domains", type=int, default=20)
    parser.add_argument("--zk-instances", type=int, default=50, help="per domain")
    parser.add_argument("--zk-passes", type=int, default=10)
    parser.add_argument("--no-zookeeper", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    started = time.monotonic()

    d, n = args.domains, args.instances
    mem = measure_memory(d, n, args.passes)
    print(f"decider pass, memory store: {d} domains x {n} instances, {args.passes} passes")
    print(
        table(
            [
                ("measured (median per pass)", "time", "ratio"),
                ("decider pass (_run_decisions)", ms(mem.decider.median), ""),
                (
                    "bare store reads of the same data",
                    ms(mem.reads.median),
                    ratio(mem.decider.median, mem.reads.median),
                ),
                (
                    "plain loop over the same records",
                    ms(mem.plain.median),
                    ratio(mem.decider.median, mem.plain.median),
                ),
            ]
        )
    )
    print(f"per instance: {mem.decider.median / (d * n) * 1e6:.1f} us in the decider\n")

    if args.no_zookeeper:
        pass
    elif not zookeeper_store_available():
        print("ZooKeeper: skipped (epum.store.zookeeper is not in this tree yet)")
    else:
        d, n = args.zk_domains, args.zk_instances
        with zookeeper() as server:
            zk = measure_zookeeper(server.hosts, d, n, args.zk_passes)
        print(
            f"decider pass, ZooKeeper store: {d} domains x {n} instances, {args.zk_passes} passes"
        )
        print(
            table(
                [
                    ("measured (median per pass)", "time", "ratio"),
                    ("decider pass (_run_decisions)", ms(zk.decider.median), ""),
                    (
                        f"bare kazoo get of the {zk.znodes} znodes",
                        ms(zk.bare_gets.median),
                        ratio(zk.decider.median, zk.bare_gets.median),
                    ),
                ]
            )
        )
    print(f"\n(benchmark took {time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
