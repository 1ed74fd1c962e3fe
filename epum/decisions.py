"""The decision log: why a domain did (or did not) scale, one bounded log per domain.

The decider writes it.  During a pass the domain's control collects a
``PassNotes``: the engine's reasons (``explain``), the launches and
terminations it asked for (or, in dry-run, would have asked for) and the
target it aimed at (``aim``).  After the pass the decider turns the notes,
the inputs it saw and the lifecycle events since the last pass into log
entries and stores them in one write (``DomainStore.append_history``).

An entry is a JSON mapping with ``time``, ``kind`` and the rest by kind:

- ``"decision"``: ``leader``, ``term``, ``inputs`` (``instances`` by state,
  ``health`` counts, ``sensor`` readings and their ``reading_age``,
  ``target``), ``actions`` (``{"do": "launch", "count", "site", "why",
  "instance_ids"}`` or ``{"do": "destroy", "instance_ids", "why"}``),
  ``reasons`` (``{"code", "text"}``, the engine's words for what it did not
  do), ``dry_run`` (bool);
- ``"event"``: ``event`` (one of ``EVENTS``), ``instance_id``, ``site``,
  ``state``; or a domain event (``DOMAIN_EVENTS``): ``reading`` with
  ``metric`` and ``value``, ``started`` and ``reconfigured`` with the
  ``engine_conf`` the engine runs from then on.

Lifecycle events come from comparing the records with what the decider saw
at its previous pass (none on a term's first pass): ``running``, ``failed``,
``terminated``, ``missing`` (health turned MISSING), ``reaped`` (the record
is gone), ``launched`` for a record the decider did not launch itself (its
own launches are the decision's actions), and ``replaced`` for an unhealthy
instance terminated in a pass that launched.

A decision entry is written for a pass that did something, or did nothing
while the domain was not at its target (the engine said why, or its state
was not STABLE); a quiet pass at its target writes none.  ``bounded`` keeps
the last ``max_entries`` entries and none older than ``max_age`` seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from epum.errors import BadRequestError
from epum.instances import Instance
from epum.states import DecisionEngineState, InstanceHealthState, InstanceState

#: The reason codes the built-in engines give for not acting (or acting less).
REASONS = (
    "cooldown",  # a scaling step is due but the cooldown is not over
    "at_maximum",  # the metric asks for more, the domain is at its maximum
    "at_minimum",  # the metric asks for fewer, the domain is at its minimum
    "no_reading",  # scaling is configured but no fresh reading is there
    "retry_pacing",  # launches held back while recent ones keep failing
    "site_full",  # no site has room for the instances wanted
    "no_values",  # unique values ran out
    "dry_run",  # the decider ran the engine and sent nothing
)

#: The lifecycle events logged for instances.
EVENTS = ("launched", "running", "failed", "missing", "replaced", "terminated", "reaped")

#: The domain's events: the metric's value changed (logged when no decision entry
#: carries it), the engine started (at a domain's first pass in a term) or took a
#: new config, each with the engine_conf it runs; what ``epum replay`` reads.
DOMAIN_EVENTS = ("reading", "started", "reconfigured")


@dataclass
class PassNotes:
    """What one decision pass of one domain did and why (collected by its control)."""

    reasons: list[dict[str, str]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    target: int | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    why: str | None = None

    def explain(self, code: str, text: str) -> None:
        """Record a reason for inaction (a code of ``REASONS``), or, for any other code,
        a part of the ``why`` of the next launch or termination."""
        if not isinstance(code, str) or not code:
            raise BadRequestError(f"reason code must be a non-empty string, not {code!r}")
        if code in REASONS:
            self.reasons.append({"code": code, "text": str(text)})
        else:
            self.why = str(text) if self.why is None else f"{self.why}; {text}"

    def launched(self, count: int, site: str | None, ids: Sequence[str]) -> None:
        """Record a launch of ``count`` instances at ``site``."""
        self.actions.append(
            {
                "do": "launch",
                "count": count,
                "site": site,
                "instance_ids": list(ids),
                "why": self._take_why(),
            }
        )

    def destroyed(self, ids: Sequence[str]) -> None:
        """Record the termination of ``ids``."""
        self.actions.append({"do": "destroy", "instance_ids": list(ids), "why": self._take_why()})

    def _take_why(self) -> str | None:
        why, self.why = self.why, None
        return why


def domain_inputs(
    instances: Iterable[Instance], sensor_data: Mapping[str, Any], now: float
) -> dict[str, Any]:
    """The inputs that matter: instances by state and health, readings and their age."""
    instances = list(instances)
    live = [i for i in instances if i.state < InstanceState.TERMINATING]
    inputs: dict[str, Any] = {
        "instances": dict(sorted(Counter(i.state for i in instances).items())),
        "health": dict(sorted(Counter(i.health for i in live).items())),
        "live": len(live),
    }
    if sensor_data:
        inputs["sensor"] = {k: _reading_summary(v) for k, v in sensor_data.items()}
        times = [
            v.get("time")
            for v in sensor_data.values()
            if isinstance(v, Mapping) and isinstance(v.get("time"), (int, float))
        ]
        if times:
            inputs["reading_age"] = round(now - max(times), 3)
    return inputs


_FAILED = (InstanceState.FAILED, InstanceState.REJECTED, InstanceState.RUNNING_FAILED)


def _reading_summary(value: Any) -> Any:
    """A reading as logged: a series is cut to its last sample (entries stay small)."""
    if isinstance(value, Mapping) and isinstance(value.get("Series"), list):
        series = value["Series"]
        short = {k: v for k, v in value.items() if k != "Series"}
        short["last"] = series[-1] if series else None
        short["samples"] = len(series)
        return short
    return value


#: An instance as the decider last saw it: (state, health, site).
Seen = tuple[str, str, str | None]


def snapshot(instances: Iterable[Instance]) -> dict[str, Seen]:
    """What ``lifecycle_events`` compares between passes."""
    return {i.instance_id: (i.state, i.health, i.site) for i in instances}


def seen_after(seen: dict[str, Seen], actions: Iterable[Mapping[str, Any]]) -> dict[str, Seen]:
    """``seen`` as it stands once ``actions`` (a pass's launches and terminations) are
    carried out: each launched instance REQUESTING, each destroyed live one TERMINATING;
    the next pass's lifecycle events are judged against it."""
    after = dict(seen)
    for action in actions:
        for iid in action["instance_ids"]:
            old = after.get(iid)
            if action["do"] == "launch":
                after[iid] = (InstanceState.REQUESTING, InstanceHealthState.UNKNOWN, action["site"])
            elif old is not None and old[0] < InstanceState.TERMINATING:
                after[iid] = (InstanceState.TERMINATING, InstanceHealthState.UNKNOWN, old[2])
    return after


def lifecycle_events(
    before: Mapping[str, Seen] | None, after: Mapping[str, Seen], now: float
) -> list[dict[str, Any]]:
    """The events between two snapshots (none on the first pass: ``before`` None)."""
    if before is None:
        return []
    events = []

    def event(name: str, iid: str, seen: Seen) -> None:
        events.append(
            {
                "time": now,
                "kind": "event",
                "event": name,
                "instance_id": iid,
                "site": seen[2],
                "state": seen[0],
            }
        )

    for iid, seen in after.items():
        old = before.get(iid)
        state, health = seen[0], seen[1]
        if old is None:
            if state >= InstanceState.TERMINATED:
                continue
            event("launched", iid, seen)  # launched by another worker or before us
            continue
        if state != old[0]:
            if state == InstanceState.RUNNING:
                event("running", iid, seen)
            elif state in _FAILED:
                event("failed", iid, seen)
            elif state == InstanceState.TERMINATED:
                event("terminated", iid, seen)
        if health == InstanceHealthState.MISSING and old[1] != health:
            event("missing", iid, seen)
    for iid, seen in before.items():
        if iid not in after:
            event("reaped", iid, seen)
    return events


def bounded(
    entries: Sequence[Mapping[str, Any]], max_entries: int, max_age: float, now: float
) -> list[Mapping[str, Any]]:
    """The last ``max_entries`` of ``entries`` that are at most ``max_age`` seconds old."""
    kept = [e for e in entries if now - float(e.get("time", now)) <= max_age]
    return list(kept[-max_entries:]) if max_entries > 0 else []


def select(
    entries: Sequence[Mapping[str, Any]], since: float | None, limit: int | None
) -> list[Mapping[str, Any]]:
    """Entries at or after ``since``, the last ``limit`` of them, oldest first."""
    if since is not None and (isinstance(since, bool) or not isinstance(since, (int, float))):
        raise BadRequestError(f"since must be a number of seconds, not {since!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise BadRequestError(f"limit must be an integer >= 0, not {limit!r}")
    out = [e for e in entries if since is None or float(e.get("time", 0)) >= since]
    if limit is not None:
        out = out[-limit:] if limit else []
    return out


def decision_entry(
    notes: PassNotes,
    inputs: Mapping[str, Any],
    now: float,
    leader: str,
    term: int,
    engine_state: str | None,
    dry_run: bool,
) -> dict[str, Any] | None:
    """The decision entry of one pass, or None for a quiet pass at its target.

    At its target means: the engine gave a target and as many instances
    count (live and healthy), or, for an engine that gives none, its state
    is STABLE.
    """
    inputs = {**inputs, **notes.inputs}
    if notes.target is not None:
        inputs["target"] = notes.target
        off_target = inputs.get("counted", inputs.get("live")) != notes.target
    else:
        off_target = engine_state != DecisionEngineState.STABLE
    if not (notes.actions or notes.reasons or off_target):
        return None
    reasons = list(notes.reasons)
    if dry_run:
        reasons.append({"code": "dry_run", "text": "dry-run: the actions above were not sent"})
    return {
        "time": now,
        "kind": "decision",
        "leader": leader,
        "term": term,
        "inputs": inputs,
        "actions": list(notes.actions),
        "reasons": reasons,
        "engine_state": engine_state,
        "dry_run": dry_run,
    }


def replaced_events(notes: PassNotes, now: float) -> list[dict[str, Any]]:
    """``replaced`` events: unhealthy instances destroyed in a pass that also launched."""
    launched = [i for a in notes.actions if a["do"] == "launch" for i in a["instance_ids"]]
    if not launched:
        return []
    return [
        {"time": now, "kind": "event", "event": "replaced", "instance_id": iid, "by": launched}
        for a in notes.actions
        if a["do"] == "destroy" and (a.get("why") or "").startswith("unhealthy")
        for iid in a["instance_ids"]
    ]


def domain_event(now: float, event: str, **fields: Any) -> dict[str, Any]:
    """A domain event entry (``DOMAIN_EVENTS``)."""
    return {"time": now, "kind": "event", "event": event, **fields}
