"""Draining a worker's queue: what the worker benchmark times.

The consumers are paused (SIGSTOP), the messages are queued behind their
backs, and the clock runs from their resume until the replies to marker
calls queued behind the messages: the time to work through a full queue.
A marker call is handled alone, after every message delivered before it
(see ``epum.messaging.server``); with several consumers one may answer two
markers while another still holds the last messages of its share (at most
its prefetch).  ``measure_drains`` and ``shared_drains`` add the CPU the
consumers (and the broker) used, from ``/proc``.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.bare import BareConsumer
from bench.common import zxid
from bench.probes import (
    broker_pid,
    cpu_seconds,
    paused,
    requests_between,
    zookeeper_monitor,
    zookeeper_requests,
)
from bench.wire import Wire
from bench.worker_rig import BARE, BARE_CHUNKED, MARKER, SERVICE, Fleet, WorkerProcess
from epum.messaging import envelope
from epum.sim.agents import agent_address
from epum.states import InstanceHealthState, InstanceState

#: Marker calls behind a drain through queue shards: from as many senders, so every
#: shard (dealt by a hash of the sender) holds one with near certainty (a shard of
#: two misses all 32 with a chance of 2 ** -32).
SHARD_MARKERS = 32

#: The first update counter of each drain of reports: above any the seeding or the
#: provisioner double gave, and above every earlier drain's.
REPORT_COUNTERS = itertools.count(10**9, 10**7)


def heartbeat_messages(ids: list[str], count: int) -> list[tuple[str, str]]:
    """``count`` OK heartbeats as (body, sender), cycling over the instances ``ids``."""
    beats = []
    for instance_id in itertools.islice(itertools.cycle(ids), count):
        body = envelope.request(
            "ou_heartbeat",
            {"heartbeat": {"node_id": instance_id, "state": InstanceHealthState.OK}},
        )
        beats.append((body, agent_address(instance_id)))
    return beats


def report_messages(ids: list[str], count: int, first_counter: int) -> list[tuple[str, str]]:
    """``count`` ``instance_info`` reports as (body, sender), cycling over the instances
    ``ids``, each RUNNING again with a higher update counter (from ``first_counter``):
    every one changes its record, so each costs a ZooKeeper write."""
    reports = []
    for n, instance_id in enumerate(itertools.islice(itertools.cycle(ids), count)):
        record = {
            "node_id": instance_id,
            "state": InstanceState.RUNNING,
            "update_counter": first_counter + n,
        }
        reports.append((envelope.request("instance_info", {"record": record}), "provisioner"))
    return reports


def report_drain_rate(wire: Wire, worker: WorkerProcess, fleet: Fleet, reports: int) -> float:
    """Record-changing reports per second ``worker`` works through (see
    ``report_messages``), queued while it was paused."""
    queue = worker.names.qualify(SERVICE)
    first = next(REPORT_COUNTERS)
    return reports / drain(wire, [worker.pid], queue, report_messages(fleet.ids, reports, first))


def queue_behind(
    wire: Wire, queue: str, messages: list[tuple[str, str]], markers: int = 1
) -> list[str]:
    """Publish ``messages`` to ``queue``, then ``markers`` marker calls, each from a sender
    of its own (so that queue shards, which deal by sender, each get some); their
    correlation ids."""
    for body, sender in messages:
        wire.publish(queue, body, sender)
    return [wire.send_call(queue, MARKER, sender=f"bench-marker-{n}") for n in range(markers)]


def drain(
    wire: Wire,
    pids: list[int],
    queue: str,
    messages: list[tuple[str, str]],
    markers: int | None = None,
) -> float:
    """Seconds the consumers of ``queue`` (processes ``pids``) take to work through
    ``messages`` queued while they were paused: from their resume to the replies to
    ``markers`` marker calls (default: one per consumer) queued behind them.  A consumer
    answers a marker after what it was given before it from the marker's queue; with
    several consumers, one may answer two markers while another still holds the last
    messages of its share (at most its prefetch).  Queue shards need markers enough
    that every shard holds one (``SHARD_MARKERS``)."""
    with contextlib.ExitStack() as stack:
        for pid in pids:
            stack.enter_context(paused(pid))
        markers = queue_behind(wire, queue, messages, markers=markers or len(pids))
    started = time.perf_counter()
    for marker in markers:
        wire.wait_reply(marker, timeout=60 + len(messages) / 100)
    return time.perf_counter() - started


@dataclass
class Drains:
    """What the steady-heartbeat drains came to, over every round (CPU in seconds)."""

    heartbeats: int = 0
    worker_seconds: float = 0.0
    bare_seconds: float = 0.0
    zk_requests: int = 0
    zk_writes: int = 0
    worker_cpu: float = 0.0
    bare_cpu: float = 0.0
    chunked_seconds: float = 0.0


def cpu_of(pids: list[int]) -> float:
    """The CPU seconds the processes ``pids`` have used so far, together."""
    return sum(cpu_seconds(pid) for pid in pids)


def measure_drains(
    wire: Wire,
    worker: WorkerProcess,
    bares: tuple[BareConsumer, BareConsumer],
    server: Any,
    fleet: Fleet,
    per_drain: int,
    rounds: int,
) -> Drains:
    """Steady heartbeats drained by the worker and by the bare consumers (kombu's reads,
    then chunked ones), in turns.

    The instances are seeded healthy and heard from, so no heartbeat changes
    anything; every instance heartbeats once first, untimed (the worker's
    first touch of each record is not the steady state).  ZooKeeper is read
    only around the worker's drains, when the worker is idle.
    """
    bare, chunked = bares
    queue, bare_name = worker.names.qualify(SERVICE), worker.names.qualify(BARE)
    chunked_name = worker.names.qualify(BARE_CHUNKED)
    first = heartbeat_messages(fleet.ids, len(fleet.ids))
    wire.wait_reply(queue_behind(wire, queue, first)[0], timeout=60 + len(first) / 100)
    messages = heartbeat_messages(fleet.ids, per_drain)
    drains = Drains()
    for _ in range(rounds):
        requests, writes = zookeeper_requests(server, worker.pid), zxid(server)
        cpu = cpu_seconds(worker.pid)
        drains.worker_seconds += drain(wire, [worker.pid], queue, messages)
        drains.worker_cpu += cpu_seconds(worker.pid) - cpu
        drains.zk_requests += requests_between(requests, zookeeper_requests(server, worker.pid))
        drains.zk_writes += zxid(server) - writes
        cpu = cpu_seconds(bare.pid)
        drains.bare_seconds += drain(wire, [bare.pid], bare_name, messages)
        drains.bare_cpu += cpu_seconds(bare.pid) - cpu
        drains.chunked_seconds += drain(wire, [chunked.pid], chunked_name, messages)
        drains.heartbeats += len(messages)
    return drains


@dataclass(frozen=True)
class SharedDrains:
    """Steady-heartbeat drains by workers sharing the queue: the rate, and the CPU
    (seconds) each heartbeat cost the workers together and the broker."""

    per_second: float
    worker_cpu: float
    broker_cpu: float | None


def shared_drains(
    wire: Wire,
    workers: list[WorkerProcess],
    fleet: Fleet,
    per_drain: int,
    rounds: int,
    markers: int | None = None,
) -> SharedDrains:
    """Steady heartbeats drained by ``workers`` sharing the service queue or its shards
    (and the store), over ``rounds`` drains (``markers`` as ``drain`` takes them), and
    what they cost in CPU."""
    queue = workers[0].names.qualify(SERVICE)
    messages = heartbeat_messages(fleet.ids, per_drain)
    pids, broker = [w.pid for w in workers], broker_pid()
    cpu, broker_cpu = cpu_of(pids), cpu_seconds(broker) if broker else 0.0
    seconds = sum(drain(wire, pids, queue, messages, markers) for _ in range(rounds))
    count = per_drain * rounds
    return SharedDrains(
        count / seconds,
        (cpu_of(pids) - cpu) / count,
        (cpu_seconds(broker) - broker_cpu) / count if broker else None,
    )


def warm_up(
    wire: Wire,
    server: Any,
    workers: list[WorkerProcess],
    fleet: Fleet,
    watches: int,
    markers: int | None = None,
    timeout: float = 300.0,
) -> None:
    """Bring workers just started to the steady state the drains measure: wait until
    ZooKeeper holds ``watches`` (their caches full: no read goes to the server), then
    drain, untimed, three heartbeats per instance through them (each record decoded once
    by the worker that gets it)."""
    wait_watches(server, lambda count: count >= watches, timeout, "the workers' caches to fill")
    queue = workers[0].names.qualify(SERVICE)
    pids = [w.pid for w in workers]
    drain(wire, pids, queue, heartbeat_messages(fleet.ids, 3 * len(fleet.ids)), markers)


def wait_watches(server: Any, enough: Callable[[int], bool], timeout: float, what: str) -> None:
    """Wait until ZooKeeper's watch count is ``enough``; RuntimeError naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not enough(zookeeper_monitor(server)["zk_watch_count"]):
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited {timeout:g} s for {what}")
        time.sleep(0.2)
