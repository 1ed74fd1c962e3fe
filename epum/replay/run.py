"""Replaying a trace on the simulator, and comparing what happened with the replay.

``simulate`` runs one domain on ``epum.sim.Simulation`` (the real facade,
decider, doctor and engines, with the simulated provisioner and agents, in
simulated time, no servers) from ``start`` to ``end``: at each tick, before
the roles act, the latest reading at or before that time is given to every
live instance (``sensor_data[metric][statistic]``, so the engine's average is
that value) and the config changes due are applied.  It returns the trace of
that run.  ``replay`` simulates a recorded trace again, with its config or
with ``overrides`` of engine_conf keys (a what-if).  ``summarize`` reads a
decision log into the comparison figures, the same way for both sides.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from epum.engines.scaling import statistic_name
from epum.instances import Instance
from epum.replay.trace import Trace
from epum.sim.world import Simulation
from epum.states import InstanceState
from epum.store.base import update_instance_with_retry

DEFINITION = "replayed"
#: The simulator's step, in simulated seconds.
TICK = 1.0


def simulate(
    owner: str,
    domain_id: str,
    config: dict[str, Any],
    readings: Sequence[tuple[float, float]],
    start: float,
    end: float,
    decide_every: float = 5.0,
    config_changes: Sequence[tuple[float, dict[str, Any]]] = (),
    seed: int = 0,
) -> Trace:
    """Run the domain on the simulator; the trace of that run (its log as history)."""
    readings = sorted(readings)
    changes = sorted(config_changes, key=lambda c: c[0])
    sim = Simulation(
        {"decision_log_entries": 100_000, "decision_log_max_age": 1e9},
        seed=seed,
        decide_every=decide_every,
        start=start - TICK,
        tick_seconds=TICK,
    )
    engine_conf = config.get("engine_conf") or {}
    metric = engine_conf.get("metric")
    raw_stat = engine_conf.get("sample_function")
    statistic = statistic_name(raw_stat) if raw_stat else None
    with sim:
        sim.epum.msg_add_domain_definition(DEFINITION, {})
        sim.epum.msg_add_domain(owner, domain_id, DEFINITION, copy.deepcopy(config))
        domain = sim.epum.store.get_domain(owner, domain_id)
        pending = list(changes)

        def feed(now: float) -> None:
            while pending and pending[0][0] <= now:
                _, change = pending.pop(0)
                sim.epum.msg_reconfigure_domain(owner, domain_id, {"engine_conf": change})
            value = _latest(readings, now)
            if metric and statistic and value is not None:
                _give_reading(domain.get_instances(), domain, metric, statistic, value)

        sim.observers.append(feed)
        while sim.now + TICK <= end + 1e-9:
            sim.tick()
        history = sim.epum.msg_describe_domain_history(owner, domain_id)
    return Trace(
        owner,
        domain_id,
        copy.deepcopy(config),
        start,
        end,
        decide_every,
        list(readings),
        [(t, dict(c)) for t, c in changes],
        history,
    )


def _latest(readings: Sequence[tuple[float, float]], now: float) -> float | None:
    value = None
    for t, v in readings:
        if t > now:
            break
        value = v
    return value


def _give_reading(
    instances: list[Instance], domain: Any, metric: str, statistic: str, value: float
) -> None:
    wanted = {metric: {statistic: value}}
    for inst in instances:
        if inst.state >= InstanceState.TERMINATING or inst.sensor_data == wanted:
            continue
        update_instance_with_retry(
            domain, inst.instance_id, lambda r: r.replace(sensor_data=dict(wanted))
        )


def replay(trace: Trace, overrides: Mapping[str, Any] | None = None, seed: int = 0) -> Trace:
    """Simulate ``trace`` again: with its own config, or engine_conf ``overrides`` over it.

    The replay runs to the trace's end, and at least one pass interval past
    its last recorded decision: a service decides on a change at once, the
    replay at its next pass, so a decision made just before the recording
    stopped still gets its replayed pass.
    """
    config = copy.deepcopy(trace.config)
    if overrides:
        config["engine_conf"] = {**(config.get("engine_conf") or {}), **overrides}
    made = decisions_of(trace.history)
    end = max(trace.end, made[-1][0] + trace.decide_every + TICK) if made else trace.end
    return simulate(
        trace.owner or "replay",
        trace.domain_id,
        config,
        trace.readings,
        trace.start,
        end,
        trace.decide_every,
        trace.config_changes,
        seed,
    )


def decisions_of(history: Sequence[Mapping[str, Any]]) -> list[tuple[float, str, Any, Any]]:
    """The decisions of a log as ``(time, do, count or ids count, site)``, in order."""
    out = []
    for entry in history:
        if entry.get("kind") != "decision":
            continue
        for action in entry.get("actions") or []:
            count = action.get("count", len(action.get("instance_ids") or []))
            out.append((float(entry["time"]), action["do"], count, action.get("site")))
    return out


def same_decisions(
    recorded: Sequence[Mapping[str, Any]],
    replayed: Sequence[Mapping[str, Any]],
    tolerance: float,
) -> bool:
    """Whether two logs made the same decisions: the same actions (what, how many,
    where) in the same order, each at most ``tolerance`` seconds from the other.

    A recorded service decides as soon as something changes, the replay at its
    passes ``decide_every`` apart, so a tolerance of one pass interval (and
    the simulator's tick) is what "the same" can mean for a live trace; a
    simulated trace replays to the second.
    """
    mine, theirs = decisions_of(recorded), decisions_of(replayed)
    return len(mine) == len(theirs) and all(
        a[1:] == b[1:] and abs(a[0] - b[0]) <= tolerance for a, b in zip(mine, theirs, strict=True)
    )


@dataclass
class Summary:
    """The comparison figures of one run, read from its decision log."""

    launches: int = 0
    terminations: int = 0
    seconds_below_target: float = 0.0
    instance_hours: float = 0.0
    series: list[tuple[float, int, int | None]] = field(default_factory=list)


def summarize(history: Sequence[Mapping[str, Any]], start: float, end: float) -> Summary:
    """Instances over time (launched less terminated or failed), launches, terminations,
    time below target and instance-hours, from a decision log."""
    out = Summary()
    live, target = 0, None
    points: list[tuple[float, int, int | None]] = [(start, 0, None)]
    for entry in history:
        t = float(entry.get("time", start))
        if entry.get("kind") == "decision":
            if entry.get("dry_run"):
                continue
            target = (entry.get("inputs") or {}).get("target", target)
            for action in entry.get("actions") or []:
                n = action.get("count", len(action.get("instance_ids") or []))
                if action["do"] == "launch":
                    out.launches += n
                    live += n
                else:
                    out.terminations += n
                    live -= n
        elif entry.get("event") == "failed" and entry.get("state") != InstanceState.RUNNING_FAILED:
            live -= 1
        points.append((t, max(live, 0), target))
    points.append((end, points[-1][1], points[-1][2]))
    for (t0, n, tgt), (t1, _, _) in itertools.pairwise(points):
        span = max(0.0, t1 - t0)
        out.instance_hours += n * span / 3600.0
        if tgt is not None and n < tgt:
            out.seconds_below_target += span
    out.series = points
    return out


def comparison(actual: Summary, replayed: Summary) -> list[str]:
    """The comparison table, as lines."""
    rows = [
        ("launches", actual.launches, replayed.launches),
        ("terminations", actual.terminations, replayed.terminations),
        ("seconds below target", actual.seconds_below_target, replayed.seconds_below_target),
        ("instance-hours", actual.instance_hours, replayed.instance_hours),
    ]
    lines = [f"{'':22}{'actual':>12}{'replayed':>12}"]
    for name, a, r in rows:
        lines.append(f"{name:22}{a:>12.4g}{r:>12.4g}")
    return lines
