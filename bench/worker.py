"""Benchmark: one ``epum-worker`` on ZooKeeper over AMQP, next to the bare infrastructure.

The worker (a process of its own, ``bench.worker_rig``) runs on a private
ZooKeeper with a provisioner and a DTRS double on the broker
(``bench.doubles``).  Its store is seeded with D domains of N RUNNING
instances each (simplest engine, health monitored, ``missing_timeout``
3600 s), healthy and heard from, before it starts; every instance then
heartbeats once through it, untimed.
Then, with the bare consumer (``bench.bare``: kombu, same prefetch, JSON
decode + ack, a process of its own) measured in the same run:

- steady heartbeats drained per second: the worker is paused (SIGSTOP), H
  heartbeats that change nothing are queued, then a call; the clock runs
  from the resume (SIGCONT) until the call's reply, i.e. until the queue
  is drained.  The bare consumer drains the same messages the same way,
  round by round in turns with the worker; so does a bare consumer that
  reads the socket in chunks as the worker does (``--chunked``), which
  shows what the worker's handling costs apart from that gain;
- ZooKeeper requests per steady heartbeat: the worker's own sessions'
  request counters (``bench.probes``) over those drains; and the write
  transactions (the server's zxid);
- ``describe_domain`` round trip p50 against the bare consumer's echo,
  both replying through direct reply-to, call by call in turns;
- ``add_domain`` p50, each with its DTRS checks (two calls to the double,
  whose answers the worker keeps for ``dtrs_cache_seconds``);
- a FAILED report (fired as the provisioner does) until the worker's
  decider asks the provisioner for the replacement, p50;
- the worker's resident memory with the D x N instances, against the same
  worker just started with an empty store;
- the CPU each steady heartbeat cost the worker, against what each message
  cost the bare consumer (``/proc``, user + system, every thread);
- record-changing reports (``instance_info``, each a ZooKeeper write)
  drained by the worker with its default handler threads, against a worker
  with one (started, drained and stopped before the main worker starts):
  what overlapping the reports' store round trips gains;
- the steady-heartbeat drains again, by W workers sharing the service
  queue and the store, against the one worker alone (the speed-up), with
  the CPU per heartbeat of the W workers together against the one's, the
  broker's CPU per heartbeat, and the model's rate for three workers with a
  core each: three times what one core of worker drains (1 / its CPU per
  heartbeat), capped by what one core of broker passes (1 / the broker's).

Run: ``.venv/bin/python -m bench.worker [--domains D] [--instances N]``
(``--help`` lists every size; RabbitMQ at ``EPUM_TEST_AMQP_URL``).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import itertools
import logging
import random
import statistics
import time
from typing import Any

from bench.common import (
    Figure,
    Target,
    broker_url,
    figures_table,
    time_interleaved,
    time_runs,
    unique_path,
    zookeeper,
)
from bench.doubles import ProvisionerDouble
from bench.drains import (
    SHARD_MARKERS,
    measure_drains,
    report_drain_rate,
    shared_drains,
    wait_watches,
    warm_up,
)
from bench.probes import zookeeper_monitor
from bench.worker_rig import (
    BARE,
    OWNER,
    SERVICE,
    Fleet,
    Rig,
    WorkerProcess,
    rig,
    seed,
)
from epum.messaging import EPUManagementClient, envelope
from epum.settings import AmqpSettings
from epum.states import InstanceHealthState

MB = 1024 * 1024
#: The worker's handler threads (its default).
HANDLERS = AmqpSettings.handlers
#: The worker count the performance model predicts for (the issue's 3 workers).
MODEL_WORKERS = 3
#: The size the issue states the memory target for.
RSS_TARGET_INSTANCES = 10_000


def wait_first_pass(
    client: EPUManagementClient, fleet: Fleet, since: float, timeout: float = 120.0
) -> None:
    """Return once a decider started at wall time ``since`` has made its first pass over
    every domain (a first pass writes a ``started`` entry to each domain's decision log,
    in domain order), so those writes are not counted against the heartbeats;
    RuntimeError after ``timeout``."""
    last = sorted(fleet.instances)[-1]
    deadline = time.monotonic() + timeout
    while not any(
        e.get("event") == "started" and e.get("time", 0) >= since
        for e in client.describe_domain_history(last, caller=OWNER)
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the decider made no first pass within {timeout:g} s")
        time.sleep(0.05)


def check_health(client: EPUManagementClient, fleet: Fleet) -> None:
    """RuntimeError unless every instance's health is OK (the heartbeats were handled)."""
    for name in fleet.instances:
        for record in client.describe_domain(name, caller=OWNER)["instances"]:
            if record["health"] != InstanceHealthState.OK:
                raise RuntimeError(f"{record['instance_id']} of {name} is {record['health']}")


def replacement_times(
    provisioner: ProvisionerDouble, fleet: Fleet, rounds: int, timeout: float = 30.0
) -> list[float]:
    """Seconds from a FAILED report of one instance until the replacement is asked for.

    Round by round a different domain loses its oldest instance; the
    replacement (reported RUNNING by the double at once) joins the fleet.
    """
    names = sorted(fleet.instances)
    times = []
    for i in range(rounds):
        name = names[i % len(names)]
        asked = len(provisioner.requests)
        started = provisioner.fail(fleet.instances[name].pop(0))
        replacement = provisioner.wait_for(asked + 1, timeout)
        times.append(replacement.arrived - started)
        fleet.instances[name].append(replacement.instance_id)
    return times


def add_domain_times(client: EPUManagementClient, adds: int) -> list[float]:
    """Seconds of each of ``adds`` ``add_domain`` calls (empty domains, DTRS checked)."""
    counter = itertools.count()

    def add() -> None:
        client.add_domain(
            f"added{next(counter):05d}", "bench", {"engine_conf": {"preserve_n": 0}}, caller=OWNER
        )

    return list(time_runs(add, adds, warmup=1).samples)


def measure(
    r: Rig,
    worker: WorkerProcess,
    fleet: Fleet,
    empty_rss: int,
    heartbeats: int,
    rounds: int,
    calls: int,
    adds: int,
    failures: int,
) -> list[Figure]:
    """Every figure, measured on a rig and its worker, whose store holds ``fleet``
    (see ``figures``); ``empty_rss`` is the memory of a worker on an empty store."""
    total = len(fleet.ids)
    bares = (r.bare, r.bare_chunked)
    drains = measure_drains(r.wire, worker, bares, r.server, fleet, heartbeats, rounds)
    check_health(r.client, fleet)
    names = sorted(fleet.instances)
    pick = random.Random(0)
    bare_name, queue = r.names.qualify(BARE), r.names.qualify(SERVICE)
    bodies = {
        name: envelope.request("describe_domain", {"domain_id": name, "caller": OWNER})
        for name in names
    }
    echo_body = bodies[names[0]]
    timings = time_interleaved(
        {
            "describe": lambda: r.wire.call(queue, bodies[pick.choice(names)]),
            "client": lambda: r.client.describe_domain(pick.choice(names), caller=OWNER),
            "echo": lambda: r.wire.call(bare_name, echo_body),
        },
        calls,
        warmup=min(20, calls),
    )
    echo = timings["echo"].median
    added = add_domain_times(r.client, adds)
    replaced = replacement_times(r.provisioner, fleet, failures)
    full_rss = worker.rss()
    return [
        Figure(
            "worker: steady heartbeats drained",
            drains.heartbeats / drains.worker_seconds,
            "/s",
            bare=drains.heartbeats / drains.bare_seconds,
            target=Target(">=", 0.8),
        ),
        Figure(
            "worker: steady heartbeats drained, vs a bare consumer reading in chunks too",
            drains.heartbeats / drains.worker_seconds,
            "/s",
            bare=drains.heartbeats / drains.chunked_seconds,
        ),
        Figure(
            "worker: CPU per steady heartbeat",
            drains.worker_cpu / drains.heartbeats * 1e6,
            "us",
            bare=drains.bare_cpu / drains.heartbeats * 1e6 or None,  # 0: under a clock tick
        ),
        Figure(
            "worker: ZooKeeper requests per steady heartbeat",
            drains.zk_requests / drains.heartbeats,
            "requests",
            target=Target("=", 0, "requests"),
        ),
        Figure(
            "worker: ZooKeeper writes per steady heartbeat",
            drains.zk_writes / drains.heartbeats,
            "writes",
        ),
        Figure(
            "worker: describe_domain p50",
            timings["describe"].median * 1000,
            "ms",
            bare=echo * 1000,
            target=Target("<=", 1.5),
        ),
        Figure(
            "worker: describe_domain p50 through EPUManagementClient",
            timings["client"].median * 1000,
            "ms",
            bare=echo * 1000,
        ),
        Figure(
            "worker: add_domain p50, DTRS checked",
            statistics.median(added) * 1000,
            "ms",
            bare=echo * 1000,
            target=Target("<", 10, "ms"),
        ),
        Figure(
            "worker: FAILED report to replacement provision p50",
            statistics.median(replaced) * 1000,
            "ms",
            bare=echo * 1000,
            target=Target("<", 100, "ms"),
        ),
        Figure(
            f"worker: RSS with {total:,} instances",
            full_rss / MB,
            "MB",
            bare=empty_rss / MB,
            target=Target("<", 200, "MB"),
            judged=total >= RSS_TARGET_INSTANCES,
        ),
    ]


def figures(
    domains: int = 1000,
    instances: int = 10,
    heartbeats: int = 10_000,
    rounds: int = 2,
    calls: int = 1000,
    adds: int = 50,
    failures: int = 30,
    prefetch: int = 16,
    workers: int = 2,
    reports: int = 2000,
    *,
    amqp_url: str | None = None,
    server: Any = None,
) -> list[Figure]:
    """Every figure of the benchmark (see the module's docstring), from one worker.

    ``domains`` x ``instances`` live instances; ``heartbeats`` queued per
    drain (cycling over the instances) in ``rounds`` drains each;
    ``calls`` ``describe_domain`` round trips; ``adds`` domains added;
    ``failures`` instances failed; the worker's and the bare consumer's
    ``prefetch`` (the worker's default); ``reports`` record-changing reports
    drained by the worker and, before it starts, by one with a single handler
    thread; then the same drains by ``workers`` workers sharing the queue and
    the store, against one (1: not measured).
    ``server`` is a running ZooKeeper of the test kit (else a private one is
    started), ``amqp_url`` the broker (else
    ``EPUM_TEST_AMQP_URL``, the local broker started if none answers).
    """
    sizes = (domains, instances, heartbeats, rounds, calls, adds, failures, prefetch, workers)
    if min(*sizes, reports) < 1:
        raise ValueError("every size of bench.worker must be at least 1")
    url = broker_url(amqp_url)
    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(zookeeper())
        r = stack.enter_context(rig(url, server, prefetch))
        with r.worker(unique_path("empty")) as empty:
            empty_rss = empty.rss()
        zk_path = unique_path("worker")
        fleet = seed(server.hosts, zk_path, domains, instances)
        started = time.time()
        with r.worker(zk_path, name="serial", handlers=1) as serial:
            wait_first_pass(r.client, fleet, started)
            one_handler = report_drain_rate(r.wire, serial, fleet, reports)
        started = time.time()
        worker = stack.enter_context(r.worker(zk_path))
        try:
            wait_first_pass(r.client, fleet, started)
            found = measure(r, worker, fleet, empty_rss, heartbeats, rounds, calls, adds, failures)
            found.append(
                Figure(
                    f"worker: record-changing reports drained, {HANDLERS} handlers vs 1",
                    report_drain_rate(r.wire, worker, fleet, reports),
                    "/s",
                    bare=one_handler,
                )
            )
            if workers > 1:
                found += scaling_figures(r, worker, zk_path, fleet, heartbeats, rounds, workers)
            return found
        except Exception as exc:
            raise RuntimeError(f"{exc}\n--- the worker's log ---\n{worker.log_tail()}") from exc


def scaling_figures(
    r: Rig,
    worker: WorkerProcess,
    zk_path: str,
    fleet: Fleet,
    heartbeats: int,
    rounds: int,
    workers: int,
) -> list[Figure]:
    """The steady drains by ``workers`` workers sharing the service queue, and then by
    as many on as many queue shards, against ``worker`` alone; what each heartbeat
    costs them and the broker in CPU; and what that predicts for workers that each
    have a core of their own (see the README's performance model)."""
    one = shared_drains(r.wire, [worker], fleet, heartbeats, rounds)
    watches = zookeeper_monitor(r.server)["zk_watch_count"]  # one worker's caches
    with contextlib.ExitStack() as stack:
        others = [
            stack.enter_context(r.worker(zk_path, name=f"worker{n}")) for n in range(2, workers + 1)
        ]
        warm_up(r.wire, r.server, [worker, *others], fleet, watches * workers)
        shared = shared_drains(r.wire, [worker, *others], fleet, heartbeats, rounds)
    # the stopped workers' watches go with their sessions: until then a count of them
    # would pass for the sharded workers' full caches
    wait_watches(r.server, lambda n: n <= watches * 1.05, 60, "the stopped workers' watches")
    with contextlib.ExitStack() as stack:  # the first worker stays, idle on the bare queue
        sharded = [
            stack.enter_context(r.worker(zk_path, name=f"sharded{n}", queue_shards=workers))
            for n in range(1, workers + 1)
        ]
        warm_up(r.wire, r.server, sharded, fleet, watches * (workers + 1), SHARD_MARKERS)
        spread = shared_drains(r.wire, sharded, fleet, heartbeats, rounds, SHARD_MARKERS)
    found = [
        Figure(
            f"worker: steady heartbeats drained, {workers} workers vs 1",
            shared.per_second,
            "/s",
            bare=one.per_second,
        ),
        Figure(
            f"worker: CPU per steady heartbeat, {workers} workers vs 1",
            shared.worker_cpu * 1e6,
            "us",
            bare=one.worker_cpu * 1e6 or None,  # 0: under a clock tick (a tiny run)
        ),
        Figure(
            f"worker: steady heartbeats drained, {workers} workers on {workers} queue shards vs 1",
            spread.per_second,
            "/s",
            bare=one.per_second,
        ),
        Figure(
            f"worker: CPU per steady heartbeat, {workers} workers on {workers} queue shards vs 1",
            spread.worker_cpu * 1e6,
            "us",
            bare=one.worker_cpu * 1e6 or None,
        ),
    ]
    if shared.broker_cpu and shared.worker_cpu:  # the local broker was found, and measurable
        found.append(Figure("broker: CPU per steady heartbeat", shared.broker_cpu * 1e6, "us"))
        # a core per worker: each drains 1 / CPU per heartbeat, until the broker is the
        # limit: one core for one queue, a core per shard with as many shards as workers
        one_queue = min(MODEL_WORKERS / shared.worker_cpu, 1 / shared.broker_cpu)
        found.append(
            Figure(
                f"model: steady heartbeats, {MODEL_WORKERS} workers with a core each, vs 1",
                one_queue,
                "/s",
                bare=one.per_second,
            )
        )
    if spread.broker_cpu and spread.worker_cpu:
        shards = MODEL_WORKERS / spread.worker_cpu, MODEL_WORKERS / spread.broker_cpu
        found.append(
            Figure(
                f"model: steady heartbeats, {MODEL_WORKERS} workers with a core each on "
                f"{MODEL_WORKERS} queue shards and a broker core each, vs 1",
                min(shards),
                "/s",
                bare=one.per_second,
            )
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in SIZES.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    began = time.monotonic()
    found = figures(**{name: getattr(args, name) for name in SIZES})
    print(f"one epum-worker on ZooKeeper over AMQP: {args.domains} domains x {args.instances}")
    print(figures_table(found))
    print(f"\n(benchmark took {time.monotonic() - began:.1f} s)")
    return 0


#: Sizes small enough for the test suite (seconds, not minutes).
TINY = {
    "domains": 3,
    "instances": 2,
    "heartbeats": 60,
    "rounds": 1,
    "calls": 10,
    "adds": 2,
    "failures": 2,
    "reports": 20,
}

#: The sizes ``figures`` takes, with their defaults (the command line's options).
SIZES = {
    name: param.default
    for name, param in inspect.signature(figures).parameters.items()
    if param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
}


if __name__ == "__main__":
    raise SystemExit(main())
