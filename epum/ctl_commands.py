"""epumctl's commands derived from the operations, and the ones built on them.

epumctl's sub-commands are derived from ``epum.operations.OPERATIONS``: one
per operation on the command line, named ``Operation.command_name`` (the
flat names ``list-domains``, ``add-definition`` ...), its arguments built from
each ``Arg`` and its ``CliSpec``, run through the ``EPUManagementClient``
method of the same name (``run_operation``).  Command groups (``domain
list``, in ``epum.ctl``) reuse ``add_operation_command`` and
``run_operation``; ``history``, ``export`` and ``wait`` are built on the
arguments of ``describe_domain_history`` and ``describe_domain``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

import yaml

from epum.errors import ConfigError, NotFoundError
from epum.history_words import follow, parse_since
from epum.operations import CALLER_ARG, OPERATIONS, Arg, Operation


def _read_mapping(path: str) -> dict[str, Any]:
    """A YAML (or JSON) file holding a mapping; ``-`` reads stdin."""
    try:
        if path == "-":
            data = yaml.safe_load(sys.stdin)
        else:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping")
    return data


#: Where epumctl keeps an operation's argument on the parsed namespace (apart from
#: the global options, so ``add-domain --config`` is not the worker ``--config``).
DEST_PREFIX = "op_"


def command_line_operations(operations: Iterable[Operation] = OPERATIONS) -> dict[str, Operation]:
    """epumctl's flat sub-commands: command name -> operation, for every declared
    operation that is on the command line."""
    return {op.command_name: op for op in operations if op.on_command_line}


def add_operation_command(
    subparsers: argparse._SubParsersAction, name: str, op: Operation
) -> argparse.ArgumentParser:
    """Add sub-command ``name`` running ``op``: its arguments come from the declaration
    (``Arg.cli``), and ``run_operation`` runs it.  Command groups can call this too."""
    cmd = subparsers.add_parser(name, help=op.help, description=op.help)
    for arg in op.args:
        flags, options = _argument_options(arg)
        cmd.add_argument(*flags, **options)
    cmd.set_defaults(operation=op)
    return cmd


def _argument_options(arg: Arg) -> tuple[list[str], dict[str, Any]]:
    """The ``add_argument`` flags and options of one declared argument."""
    cli = arg.cli
    metavar = cli.metavar or arg.name.upper()
    options: dict[str, Any] = {"metavar": metavar, "help": arg.help}
    if arg.type in (int, float) and not _from_file(arg):
        options["type"] = arg.type
    flag = cli.flag or (None if arg.required else "--" + arg.name.replace("_", "-"))
    if flag is None:
        return [DEST_PREFIX + arg.name], options
    options["dest"] = DEST_PREFIX + arg.name
    options["required"] = arg.required and cli.absent is None
    return [flag], options


def _from_file(arg: Arg) -> bool:
    return arg.cli.from_file if arg.cli.from_file is not None else arg.type is dict


def _argument_value(arg: Arg, given: Any) -> Any:
    """The value sent for ``arg``: the given text (a file's mapping, or YAML for a
    list or bool), or the declared ``absent`` value when the flag was not given."""
    if given is None:
        return copy.deepcopy(arg.cli.absent)
    if _from_file(arg):
        return _read_mapping(given)
    if arg.type in (list, bool, dict):
        return yaml.safe_load(given)
    return given


def run_operation(client: Any, op: Operation, args: argparse.Namespace) -> Any:
    """Run ``op`` on an ``EPUManagementClient`` with the parsed command line;
    domain operations act for ``--caller``."""
    values = {a.name: _argument_value(a, getattr(args, DEST_PREFIX + a.name)) for a in op.args}
    if op.is_domain_op:
        values[CALLER_ARG] = args.caller
    return getattr(client, op.name)(**values)


#: The operation ``epumctl domain history`` runs.
HISTORY_OP = "describe_domain_history"


def add_history_command(
    subparsers: argparse._SubParsersAction, op: Operation
) -> argparse.ArgumentParser:
    """``history NAME [--since T] [--limit N] [--follow]``: the decision log in plain
    words, one line per entry (``epum.history_words``); its arguments are the
    operation's, ``--since`` also takes a time ago (``10m``)."""
    cmd = add_operation_command(subparsers, "history", op)
    for action in cmd._actions:
        if action.dest == DEST_PREFIX + "since":
            action.type = str
            action.help = "entries at or after this time: epoch seconds, or ago (90s, 10m, 2h)"
    cmd.add_argument("--follow", action="store_true", help="keep printing new entries")
    cmd.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    cmd.set_defaults(print_lines=print_history)
    return cmd


def print_history(client: Any, args: argparse.Namespace, out: Any = None, wait: Any = None) -> int:
    """Print the log of ``args``' domain; with ``--follow`` poll until interrupted."""
    out = out or sys.stdout
    since = parse_since(getattr(args, DEST_PREFIX + "since"), time.time())
    limit = getattr(args, DEST_PREFIX + "limit")
    name = getattr(args, DEST_PREFIX + "domain_id")

    def fetch(after: float | None) -> list:
        return client.describe_domain_history(name, since=after, limit=limit, caller=args.caller)

    stop = threading.Event()
    if wait is None:
        wait = (lambda: not stop.wait(args.interval)) if args.follow else (lambda: False)
    with contextlib.suppress(KeyboardInterrupt):
        follow(fetch, lambda line: print(line, file=out, flush=True), since, wait)
    return 0


def add_export_command(
    subparsers: argparse._SubParsersAction, op: Operation
) -> argparse.ArgumentParser:
    """``export NAME [--since T]``: the domain's trace for ``epum replay``, as JSON."""
    cmd = subparsers.add_parser("export", help="write a domain's trace for epum replay")
    cmd.add_argument(DEST_PREFIX + "domain_id", metavar="ID", help="the domain's id")
    cmd.add_argument("--since", dest=DEST_PREFIX + "since", help="as for history")
    cmd.add_argument(
        "--decide-every",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between the replay's passes: the workers' decider_loop_interval",
    )
    cmd.set_defaults(operation=op, print_lines=print_export, **{DEST_PREFIX + "limit": None})
    return cmd


def print_export(client: Any, args: argparse.Namespace, out: Any = None) -> int:
    """Print the trace (``epum.replay.trace``) of ``args``' domain."""
    from epum.replay.trace import trace_from_history

    now = time.time()
    name = getattr(args, DEST_PREFIX + "domain_id")
    since = parse_since(getattr(args, DEST_PREFIX + "since"), now)
    config = client.describe_domain(name, caller=args.caller)["config"]
    log = client.describe_domain_history(name, caller=args.caller)  # whole: the config at since
    trace = trace_from_history(
        args.caller or "", name, config, log, now, args.decide_every, since=since
    )
    print(json.dumps(trace.to_json(), indent=1, sort_keys=True), file=out or sys.stdout)
    return 0


def add_wait_command(
    subparsers: argparse._SubParsersAction, op: Operation
) -> argparse.ArgumentParser:
    """``wait NAME --running N [--for S]``: return once the domain has exactly N live
    instances, every one RUNNING (as ``kubectl wait`` does for a condition); exit
    code 6 (timeout) if it has not within S seconds.  Its arguments are those
    of ``describe`` (``op``)."""
    cmd = add_operation_command(subparsers, "wait", op)
    cmd.description = "Wait until a domain has exactly N live instances, all RUNNING."
    cmd.add_argument("--running", type=int, required=True, metavar="N", help="instances wanted")
    cmd.add_argument("--for", dest="wait_for", type=float, default=120.0, metavar="S")
    cmd.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    cmd.set_defaults(print_lines=print_wait)
    return cmd


def print_wait(client: Any, args: argparse.Namespace, out: Any = None) -> int:
    """Poll the domain of ``args`` until it holds ``--running`` RUNNING instances and
    nothing else live; print the count; TimeoutError past ``--for`` seconds."""
    from epum.states import InstanceState

    out = out or sys.stdout
    name = getattr(args, DEST_PREFIX + "domain_id")
    deadline = time.monotonic() + args.wait_for
    stop = threading.Event()
    while True:
        described = client.describe_domain(name, caller=args.caller)
        if described is None:
            raise NotFoundError(f"domain {name} not found")
        live = [i for i in described["instances"] if i["state"] < InstanceState.TERMINATING]
        running = sum(i["state"] == InstanceState.RUNNING for i in live)
        if running == len(live) == args.running:
            print(f"domain {name}: {running} running", file=out)
            return 0
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"domain {name} has {running} of {len(live)} live instances running after "
                f"{args.wait_for:g} s, not {args.running}"
            )
        stop.wait(args.interval)
