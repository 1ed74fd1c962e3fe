"""The decision log in plain words: one line per entry, for ``epumctl domain history``.

``describe_entry`` turns an entry of ``epum.decisions`` into a line such as
``12:04:05 no scale-down: in cooldown for 140 s more (last step 12:01:45)``;
``parse_since`` reads the ``--since`` option; ``follow`` prints the entries
of a log as they come.  Times are shown in UTC.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from epum.errors import BadRequestError

_EVENT_WORDS = {
    "launched": "launched",
    "running": "is running",
    "failed": "failed",
    "missing": "found missing by the doctor",
    "replaced": "replaced",
    "terminated": "terminated",
    "reaped": "reaped",
}

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def clock(t: float) -> str:
    """``HH:MM:SS`` in UTC."""
    return time.strftime("%H:%M:%S", time.gmtime(t))


def _action(action: Mapping[str, Any], dry_run: bool) -> str:
    ids = action.get("instance_ids") or []
    if action.get("do") == "launch":
        what = f"launch {action.get('count', len(ids))} at {action.get('site')}"
    else:
        what = f"terminate {', '.join(ids)}"
    if dry_run:
        what = f"would {what}"
    why = action.get("why")
    return f"{what}: {why}" if why else what


def describe_entry(entry: Mapping[str, Any]) -> str:
    """One line of plain words for one log entry."""
    when = clock(float(entry.get("time", 0.0)))
    if entry.get("event") == "reading":
        return f"{when} {entry.get('metric')} is now {entry.get('value'):g}"
    if entry.get("event") in ("started", "reconfigured"):
        conf = entry.get("engine_conf") or {}
        verb = "engine started with" if entry["event"] == "started" else "reconfigured:"
        return f"{when} {verb} " + ", ".join(f"{k}={v}" for k, v in sorted(conf.items()))
    if entry.get("kind") == "event":
        words = _EVENT_WORDS.get(entry.get("event"), str(entry.get("event")))
        line = f"{when} instance {entry.get('instance_id')} {words}"
        if entry.get("site"):
            line += f" at {entry['site']}"
        if entry.get("by"):
            line += f" by {', '.join(entry['by'])}"
        return line
    dry_run = bool(entry.get("dry_run"))
    parts = [_action(a, dry_run) for a in entry.get("actions") or []]
    parts += [r["text"] for r in entry.get("reasons") or [] if r.get("code") != "dry_run"]
    if not parts:
        inputs = entry.get("inputs") or {}
        counted = inputs.get("counted", inputs.get("live"))
        target = inputs.get("target")
        size = f"{counted} of {target} counted" if target is not None else f"{counted} live"
        parts.append(f"no action: {size} (engine {entry.get('engine_state')})")
    line = f"{when} {'; '.join(parts)}"
    return f"{line} [dry-run: nothing sent]" if dry_run else line


def parse_since(text: str | None, now: float) -> float | None:
    """``--since``: seconds since the epoch, or a time ago (``90s``, ``10m``, ``2h``, ``1d``)."""
    if text is None:
        return None
    ago = _AGO.match(text.strip())
    if ago:
        return now - float(ago.group(1)) * _UNITS[ago.group(2)]
    try:
        return float(text)
    except ValueError:
        raise BadRequestError(
            f"--since must be seconds since the epoch or a time ago like 10m, not {text!r}"
        ) from None


def follow(
    fetch: Callable[[float | None], list[dict[str, Any]]],
    emit: Callable[[str], None],
    since: float | None,
    wait: Callable[[], bool],
) -> None:
    """Print the log's entries from ``since`` on, then the new ones each time ``wait()``
    returns True (False stops); each entry is printed once."""
    at_last: set[str] = set()  # the entries printed whose time is ``since``
    while True:
        for entry in fetch(since):
            t = float(entry.get("time", 0.0))
            key = json.dumps(entry, sort_keys=True)
            if since is not None and t <= since and key in at_last:
                continue
            if since is None or t > since:
                since, at_last = t, set()
            at_last.add(key)
            emit(describe_entry(entry))
        if not wait():
            return
