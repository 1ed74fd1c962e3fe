"""Command lines: ``epum-worker`` (the daemon) and ``epumctl`` (an operator's client).

``epum-worker --config FILE [--config FILE ...]`` runs a worker until
SIGTERM/SIGINT; ``epum demo``, ``epum replay`` and ``epum fault`` are
``epum``'s tools.  ``epumctl`` is in ``epum.ctl`` (groups, output modes,
exit codes), with the commands it derives from the operations in
``epum.ctl_commands``; ``ctl_main`` here is its entry point.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from epum.config import ConfigError, load_config
from epum.settings import Settings


def _load(paths: Sequence[str] | None) -> Settings:
    return load_config(paths or [])


def worker_main(argv: Sequence[str] | None = None) -> int:
    """``epum-worker``: run one worker with the given config files."""
    parser = argparse.ArgumentParser(prog="epum-worker", description="Run an epum worker.")
    parser.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help="YAML config file; repeat to merge several (later wins)",
    )
    args = parser.parse_args(argv)
    try:
        config = _load(args.config)
    except ConfigError as exc:
        print(f"epum-worker: {exc}", file=sys.stderr)
        return 2
    from epum.service import run_worker

    try:
        return run_worker(config)
    except Exception as exc:
        print(f"epum-worker: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def epum_main(argv: Sequence[str] | None = None) -> int:
    """``epum <command>``: ``epum demo [--seed N] [--plain] [-v]`` plays the demo;
    ``epum replay TRACE ...`` replays a recorded trace (``epum.replay.cli``);
    ``epum fault OP NODE_ID`` breaks a simulated instance (``epum.sim.faults``)."""
    parser = argparse.ArgumentParser(prog="epum", description="epum's own tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # each command parses its own options (and its own --help)
    sub.add_parser("demo", add_help=False, help="the demo, in memory and simulated time")
    sub.add_parser("replay", add_help=False, help="replay a recorded trace offline")
    sub.add_parser("fault", add_help=False, help="break a simulated instance (over AMQP)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "fault":
        from epum.sim.faults import main as fault_main

        return fault_main(rest)
    if args.command == "replay":
        from epum.replay.cli import main as replay_main

        return replay_main(["replay", *rest])
    from epum.sim.demo import main as demo_main

    return demo_main(rest)


def ctl_main(argv: Sequence[str] | None = None) -> int:
    """``epumctl`` (``epum.ctl.ctl_main``): run one command; the exit code says how."""
    from epum import ctl

    return ctl.ctl_main(argv)
