"""A recorded trace of one domain: what ``epum replay`` reads.

A trace file is JSON::

    {"format": "epum-trace/1", "owner": ..., "domain_id": ...,
     "config": {"general": {...}, "engine_conf": {...}, "health": {...}},
     "start": t0, "end": t1, "decide_every": 5.0,
     "readings": [[t, value], ...],          # the metric's value over time
     "config_changes": [[t, {engine_conf keys}], ...],
     "history": [decision-log entries]}      # what happened (epum.decisions)

``epumctl domain export NAME --since T`` writes one from a live service:
the engine_conf is the one the decision log says was running at the start
(``started`` and ``reconfigured`` events carry it), the config changes are
the later such events, and the readings are those the log recorded
(``reading`` events and the values seen by logged decisions).  ``epum.replay.run.simulate`` writes
one from the simulator.  A bad file is a ``BadRequestError`` naming what is
wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from epum.errors import BadRequestError

FORMAT = "epum-trace/1"


@dataclass
class Trace:
    """One domain's recorded run; see the module doc for each field."""

    owner: str
    domain_id: str
    config: dict[str, Any]
    start: float
    end: float
    decide_every: float = 5.0
    readings: list[tuple[float, float]] = field(default_factory=list)
    config_changes: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The file form."""
        return {
            "format": FORMAT,
            "owner": self.owner,
            "domain_id": self.domain_id,
            "config": self.config,
            "start": self.start,
            "end": self.end,
            "decide_every": self.decide_every,
            "readings": [list(r) for r in self.readings],
            "config_changes": [list(c) for c in self.config_changes],
            "history": self.history,
        }

    @classmethod
    def from_json(cls, data: Any) -> Trace:
        """A trace from its file form; ``BadRequestError`` naming the first bad field."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise BadRequestError(f"not an epum trace: format must be {FORMAT!r}")
        for key, kind in (("owner", str), ("domain_id", str), ("config", dict)):
            if not isinstance(data.get(key), kind):
                raise BadRequestError(f"trace field {key} must be {kind.__name__}")
        start, end = _number(data, "start"), _number(data, "end")
        if end < start:
            raise BadRequestError(f"trace end {end} is before its start {start}")
        return cls(
            owner=data["owner"],
            domain_id=data["domain_id"],
            config=dict(data["config"]),
            start=start,
            end=end,
            decide_every=_number(data, "decide_every", 5.0),
            readings=[(float(t), float(v)) for t, v in _pairs(data, "readings")],
            config_changes=[(float(t), dict(c)) for t, c in _pairs(data, "config_changes")],
            history=list(data.get("history") or []),
        )

    def save(self, path: str) -> None:
        """Write the trace file."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=1, sort_keys=True)

    @classmethod
    def load(cls, path: str) -> Trace:
        """Read a trace file; ``BadRequestError`` if it is no trace."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise BadRequestError(f"cannot read trace {path}: {exc}") from None
        return cls.from_json(data)


def _number(data: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequestError(f"trace field {key} must be a number, not {value!r}")
    return float(value)


def _pairs(data: Mapping[str, Any], key: str) -> Sequence[Sequence[Any]]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(
        isinstance(p, list) and len(p) == 2 and isinstance(p[0], (int, float)) for p in value
    ):
        raise BadRequestError(f"trace field {key} must be a list of [time, value] pairs")
    return value


#: The log events that carry the engine_conf the engine runs from then on.
CONFIG_EVENTS = ("started", "reconfigured")


def trace_from_history(
    owner: str,
    domain_id: str,
    config: dict[str, Any],
    history: list[dict[str, Any]],
    end: float,
    decide_every: float = 5.0,
    since: float | None = None,
) -> Trace:
    """The trace a decision log allows, from ``since`` (or its first entry) to ``end``.

    ``history`` is the whole log, so the config in effect at the start is
    known: the trace's engine_conf is the one of the last ``started`` or
    ``reconfigured`` event at or before the start (``config``, the domain's
    current one, where the log has none), and each later event that changed
    it is a config change, at its time.  Readings are the ``reading``
    events' values and the values logged decisions saw.
    """
    window = [e for e in history if since is None or float(e.get("time", 0.0)) >= since]
    start = float(window[0]["time"]) if window else end
    running = dict(config.get("engine_conf") or {})
    readings: list[tuple[float, float]] = []
    changes: list[tuple[float, dict[str, Any]]] = []
    for entry in history:
        t = float(entry.get("time", 0.0))
        if entry.get("event") in CONFIG_EVENTS:
            conf = dict(entry.get("engine_conf") or {})
            if t > start and conf != running:
                changes.append((t, conf))
            running = conf
            if t <= start:
                config = {**config, "engine_conf": conf}
            continue
        value = entry.get("value") if entry.get("event") == "reading" else None
        if entry.get("kind") == "decision":
            value = (entry.get("inputs") or {}).get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if t < start:  # the value in effect at the start
                readings[:] = [(start, float(value))]
            else:
                readings.append((t, float(value)))
    return Trace(owner, domain_id, config, start, end, decide_every, readings, changes, window)
