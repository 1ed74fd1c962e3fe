"""``epumctl domain history``: the decision log in plain words, --since, --follow."""

from __future__ import annotations

import calendar
import io

import pytest

from epum.ctl import ctl_parser
from epum.ctl_commands import print_history
from epum.errors import BadRequestError
from epum.history_words import describe_entry, follow, parse_since

T = calendar.timegm((2026, 12, 2, 12, 4, 5))


def decision(**over):
    entry = {
        "time": T,
        "kind": "decision",
        "inputs": {"counted": 2, "target": 2},
        "actions": [],
        "reasons": [],
        "engine_state": "STABLE_DE",
        "dry_run": False,
    }
    entry.update(over)
    return entry


def test_reasons_actions_events_and_dry_run_in_plain_words():
    text = "no scale-down: in cooldown for 140 s more (last step 12:01:45)"
    cooling = decision(reasons=[{"code": "cooldown", "text": text}])
    assert describe_entry(cooling) == f"12:04:05 {text}"
    launch = {"do": "launch", "count": 2, "site": "hotel", "instance_ids": ["a", "b"]}
    launch["why"] = "0 instances, 2 wanted"
    assert describe_entry(decision(actions=[launch])) == (
        "12:04:05 launch 2 at hotel: 0 instances, 2 wanted"
    )
    planned = decision(
        actions=[{"do": "destroy", "instance_ids": ["a"], "why": "unhealthy"}],
        reasons=[{"code": "dry_run", "text": "dry-run"}],
        dry_run=True,
    )
    assert describe_entry(planned) == (
        "12:04:05 would terminate a: unhealthy [dry-run: nothing sent]"
    )
    idle = decision(inputs={"counted": 1, "target": 2}, engine_state="PENDING_DE")
    assert describe_entry(idle) == "12:04:05 no action: 1 of 2 counted (engine PENDING_DE)"
    event = {"time": T, "kind": "event", "event": "missing", "instance_id": "i1", "site": "s"}
    assert describe_entry(event) == "12:04:05 instance i1 found missing by the doctor at s"
    reading = {"time": T, "kind": "event", "event": "reading", "metric": "load", "value": 0.5}
    assert describe_entry(reading) == "12:04:05 load is now 0.5"
    conf = {"time": T, "kind": "event", "event": "reconfigured", "engine_conf": {"a": 1}}
    assert describe_entry(conf) == "12:04:05 reconfigured: a=1"


def test_since_takes_epoch_seconds_or_a_time_ago():
    assert parse_since(None, 1000.0) is None
    assert parse_since("12.5", 1000.0) == 12.5
    assert parse_since("10m", 1000.0) == 400.0
    assert parse_since("2h", 10000.0) == 2800.0
    with pytest.raises(BadRequestError, match="--since"):
        parse_since("yesterday", 1000.0)


def test_follow_prints_each_entry_once_as_it_comes():
    log = [decision(time=T), decision(time=T + 1, inputs={"counted": 0, "target": 1})]
    shown = [log[:1], log, [*log, decision(time=T + 1, engine_state="X")]]
    asked = []

    def fetch(since):
        asked.append(since)
        return [e for e in shown[len(asked) - 1] if since is None or e["time"] >= since]

    lines = []
    polls = iter([True, True, False])
    follow(fetch, lines.append, None, lambda: next(polls))
    assert asked == [None, T, T + 1]
    assert len(lines) == 3 and lines[1].startswith("12:04:06 no action: 0 of 1")


class HistoryClient:
    def __init__(self, entries):
        self.entries = entries
        self.calls = []

    def describe_domain_history(self, domain_id, since=None, limit=None, caller=None):
        self.calls.append((domain_id, since, limit, caller))
        return self.entries


def test_epumctl_domain_history_prints_one_line_per_entry():
    args = ctl_parser().parse_args(
        ["--caller", "alice", "domain", "history", "pool", "--since", "100", "--limit", "5"]
    )
    client = HistoryClient([decision(), decision(time=T + 60)])
    out = io.StringIO()
    assert args.print_lines(client, args, out=out) == 0
    assert client.calls == [("pool", 100.0, 5, "alice")]
    assert out.getvalue().splitlines() == [
        "12:04:05 no action: 2 of 2 counted (engine STABLE_DE)",
        "12:05:05 no action: 2 of 2 counted (engine STABLE_DE)",
    ]
    assert args.print_lines is print_history
    follow_args = ctl_parser().parse_args(["domain", "history", "pool", "--follow"])
    assert follow_args.follow is True
