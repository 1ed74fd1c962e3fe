"""``epum replay TRACE``: run any engine and config over a recorded trace, offline.

``epum replay TRACE [--set KEY=VALUE ...] [--engine NAME] [--plot FILE.png]``
replays the trace in simulated time (no servers), prints the replayed
decisions in plain words and the comparison with what happened; ``--set``
changes an engine_conf key for a what-if (the value is YAML:
``--set cooldown_period=30``).  ``--plot`` saves a PNG of the size over
time, the target and the metric, actual against replayed (needs
matplotlib, which is optional: without it ``--plot`` fails with a clear
message and nothing else changes).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from epum.errors import EpumError
from epum.history_words import describe_entry
from epum.replay.run import TICK, Summary, comparison, replay, same_decisions, summarize
from epum.replay.trace import Trace


def parse_sets(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs to engine_conf keys (the values read as YAML)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise EpumError(f"--set takes KEY=VALUE, not {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def plot(path: str, trace: Trace, actual: Summary, replayed: Summary) -> None:
    """Save a PNG: size over time and target, actual against replayed, and the metric."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EpumError("--plot needs matplotlib (pip install matplotlib)") from None
    fig, ax = plt.subplots(figsize=(10, 4))
    for summary, label in ((actual, "actual"), (replayed, "replayed")):
        ts = [t - trace.start for t, _, _ in summary.series]
        ax.step(ts, [n for _, n, _ in summary.series], where="post", label=f"{label} size")
    targets = [(t - trace.start, g) for t, _, g in replayed.series if g is not None]
    if targets:
        ax.step(*zip(*targets, strict=True), where="post", linestyle=":", label="replayed target")
    ax.set_xlabel("seconds")
    ax.set_ylabel("instances")
    if trace.readings:
        metric = ax.twinx()
        metric.step(
            [t - trace.start for t, _ in trace.readings],
            [v for _, v in trace.readings],
            where="post",
            color="grey",
            alpha=0.5,
        )
        metric.set_ylabel((trace.config.get("engine_conf") or {}).get("metric") or "metric")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def main(argv: Sequence[str] | None = None, out: Any = None) -> int:
    """``epum replay``; returns the exit status."""
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="epum", description="epum's offline tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("replay", help="replay a recorded trace with any engine and config")
    cmd.add_argument("trace", metavar="TRACE", help="trace file (epumctl domain export)")
    cmd.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    cmd.add_argument("--engine", help="another engine_class for the what-if")
    cmd.add_argument("--plot", metavar="FILE", help="save a PNG plot (needs matplotlib)")
    cmd.add_argument("--quiet", action="store_true", help="print only the comparison")
    args = parser.parse_args(argv)
    try:
        trace = Trace.load(args.trace)
        if args.engine:
            trace.config.setdefault("general", {})["engine_class"] = args.engine
        replayed = replay(trace, parse_sets(args.set))
        actual = summarize(trace.history, trace.start, trace.end)
        mine = summarize(replayed.history, trace.start, trace.end)
        if not args.quiet:
            for entry in replayed.history:
                print(describe_entry(entry), file=out)
        same = same_decisions(trace.history, replayed.history, trace.decide_every + TICK)
        print("the replay made the same decisions" if same else "the decisions differ", file=out)
        for line in comparison(actual, mine):
            print(line, file=out)
        if args.plot:
            plot(args.plot, trace, actual, mine)
    except EpumError as exc:
        print(f"epum: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
