"""How ``epumctl`` shows a result: tables for people, JSON or YAML for scripts.

Pure functions of the result (and the time, and the terminal width, given
as arguments), so each rendering is tested without a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

#: The output modes of ``-o``.
OUTPUT_MODES = ("table", "json", "yaml")

#: The columns of a domain's instance table.
INSTANCE_COLUMNS = ("INSTANCE", "STATE", "HEALTH", "SITE", "ADDRESS", "AGE")


def machine(result: Any, mode: str) -> str:
    """``result`` as JSON or YAML text (ends with a newline)."""
    if mode == "json":
        return json.dumps(result, indent=2, sort_keys=True) + "\n"
    if mode == "yaml":
        return yaml.safe_dump(result, sort_keys=True, default_flow_style=False)
    raise ValueError(f"output mode must be one of {', '.join(OUTPUT_MODES)}, not {mode!r}")


def age(seconds: float) -> str:
    """A short age, kubectl-style: ``42s``, ``5m``, ``3h``, ``2d`` (never negative)."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], width: int = 120) -> str:
    """Left-aligned columns two spaces apart, cut to ``width``: the widest column is
    shortened (ending in ``~``) until the table fits or no column is over 8."""
    cells = [list(header), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    while sum(widths) + 2 * (len(widths) - 1) > width and max(widths) > 8:
        widest = widths.index(max(widths))
        widths[widest] -= 1

    def cut(text: str, size: int) -> str:
        return text if len(text) <= size else text[: size - 1] + "~"

    lines = [
        "  ".join(cut(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines) + "\n"


def instance_rows(instances: Sequence[dict[str, Any]], now: float) -> list[list[str]]:
    """One row per instance record (sorted by id), in ``INSTANCE_COLUMNS`` order."""
    rows = []
    for rec in sorted(instances, key=lambda r: str(r.get("instance_id"))):
        address = rec.get("public_ip") or rec.get("hostname") or rec.get("private_ip") or "-"
        state_time = rec.get("state_time")
        rows.append(
            [
                str(rec.get("instance_id", "?")),
                str(rec.get("state", "?")),
                str(rec.get("health", "?")),
                str(rec.get("site") or "-"),
                str(address),
                age(now - state_time) if isinstance(state_time, int | float) else "-",
            ]
        )
    return rows


def describe_domain(result: dict[str, Any], now: float, width: int = 120) -> str:
    """A domain: its name, engine and instance count, then its instance table."""
    config = result.get("config") or {}
    engine = (config.get("general") or {}).get("engine_class") or "simplest"
    instances = result.get("instances") or []
    head = f"Domain:    {result.get('name')}\nEngine:    {engine}\n"
    head += f"Instances: {len(instances)}\n"
    if not instances:
        return head
    return head + "\n" + table(INSTANCE_COLUMNS, instance_rows(instances, now), width)


def human(group: str, verb: str, result: Any, subject: str | None, now: float, width: int) -> str:
    """What a person sees after ``epumctl <group> <verb>``."""
    if verb == "list":
        return "".join(f"{item}\n" for item in result or [])
    if verb == "describe" and group == "domain" and isinstance(result, dict):
        return describe_domain(result, now, width)
    if verb == "describe":
        return yaml.safe_dump(result, sort_keys=True, default_flow_style=False)
    done = verb + ("d" if verb.endswith("e") else "ed")
    return f"{group} {subject} {done}\n" if subject else f"{group} {done}\n"


def status_text(status: dict[str, Any], width: int = 120) -> str:
    """``epumctl status`` for people: workers, leaders, then a table of queue depths."""
    lines = [f"Service:  {status['service']}", f"Workers:  {status['workers']}"]
    leaders = status.get("leaders")
    if leaders is None:
        lines.append("Leaders:  unknown (no ZooKeeper store configured)")
    else:
        for role, who in sorted(leaders.items()):
            lines.append(f"Leader:   {role} = {who or '-'}")
    rows = [[q["queue"], str(q["messages"]), str(q["consumers"])] for q in status["queues"]]
    return "\n".join(lines) + "\n\n" + table(("QUEUE", "MESSAGES", "CONSUMERS"), rows, width)
