"""Command lines: ``epum-worker`` (the daemon) and ``epumctl`` (an operator's client).

``epum-worker --config FILE [--config FILE ...]`` runs a worker until
SIGTERM/SIGINT.  ``epumctl [--config FILE | --amqp-url URL] [--sysname S]
[--caller C] <command> ...`` runs one EPUM operation and prints its result
as JSON; errors go to stderr with exit code 1.

epumctl's sub-commands are derived from ``epum.operations.OPERATIONS``: one
per operation on the command line, named ``Operation.command_name`` (the
flat names ``list-domains``, ``add-definition`` ...), its arguments built from
each ``Arg`` and its ``CliSpec``, run through the ``EPUManagementClient``
method of the same name.  Other layouts (command groups such as ``domain
list``) can reuse ``add_operation_command`` and ``run_operation``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from epum.config import ConfigError, load_config
from epum.errors import EpumError
from epum.history_words import follow, parse_since
from epum.operations import CALLER_ARG, OPERATIONS, Arg, Operation, by_name
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


def _read_mapping(path: str) -> dict[str, Any]:
    """A YAML (or JSON) file holding a mapping."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping")
    return data


#: Where epumctl keeps an operation's argument on the parsed namespace (apart from
#: the global options, so ``add-domain --config`` is not the worker ``--config``).
_DEST_PREFIX = "op_"


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
        return [_DEST_PREFIX + arg.name], options
    options["dest"] = _DEST_PREFIX + arg.name
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
    values = {a.name: _argument_value(a, getattr(args, _DEST_PREFIX + a.name)) for a in op.args}
    if op.is_domain_op:
        values[CALLER_ARG] = args.caller
    return getattr(client, op.name)(**values)


def ctl_parser(operations: Iterable[Operation] = OPERATIONS) -> argparse.ArgumentParser:
    """epumctl's parser: the global options, then one sub-command per operation on
    the command line (``command_line_operations``); the parsed namespace's
    ``operation`` is the one to run."""
    parser = argparse.ArgumentParser(
        prog="epumctl", description="Operate an epum service over AMQP; prints JSON."
    )
    parser.add_argument("--config", action="append", metavar="FILE", help="worker config file(s)")
    parser.add_argument("--amqp-url", help="broker URL (overrides the config)")
    parser.add_argument("--sysname", help="system namespace (overrides the config)")
    parser.add_argument("--service", help="EPUM service name (overrides the config)")
    parser.add_argument("--caller", help="domain owner (default: the service's default_user)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, op in command_line_operations(operations).items():
        add_operation_command(sub, name, op)
    history = by_name(operations).get(HISTORY_OP)
    if history is not None:
        domain = sub.add_parser("domain", help="domain commands")
        group = domain.add_subparsers(dest="domain_command", required=True)
        add_history_command(group, history)
        add_export_command(group, history)
    return parser


def ctl_main(argv: Sequence[str] | None = None) -> int:
    """``epumctl``: run one EPUM operation, print its result as JSON."""
    from epum.messaging import EPUManagementClient, Names, RpcClient, connection_from_settings

    args = ctl_parser().parse_args(argv)
    try:
        config = _load(args.config)
        amqp = config.amqp
        if args.amqp_url:
            amqp = dataclasses.replace(amqp, url=args.amqp_url)
        if args.sysname:
            amqp = dataclasses.replace(amqp, sysname=args.sysname)
        rpc = RpcClient(
            connection_from_settings(amqp, name="epumctl", heartbeat=False),
            Names(amqp.sysname, amqp.exchange),
            sender="epumctl",
            timeout=args.timeout,
            connect_retries=1,
        )
    except ValueError as exc:  # ConfigError, or a broker URL kombu cannot use
        print(f"epumctl: {exc}", file=sys.stderr)
        return 1
    try:
        client = EPUManagementClient(rpc, args.service or config.epum.service_name)
        if getattr(args, "print_lines", None) is not None:  # epumctl domain history
            return args.print_lines(client, args)
        result = run_operation(client, args.operation, args)
    except (EpumError, ConfigError) as exc:
        print(f"epumctl: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        rpc.close()
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


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
        if action.dest == _DEST_PREFIX + "since":
            action.type = str
            action.help = "entries at or after this time: epoch seconds, or ago (90s, 10m, 2h)"
    cmd.add_argument("--follow", action="store_true", help="keep printing new entries")
    cmd.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    cmd.set_defaults(print_lines=print_history)
    return cmd


def print_history(client: Any, args: argparse.Namespace, out: Any = None, wait: Any = None) -> int:
    """Print the log of ``args``' domain; with ``--follow`` poll until interrupted."""
    out = out or sys.stdout
    since = parse_since(getattr(args, _DEST_PREFIX + "since"), time.time())
    limit = getattr(args, _DEST_PREFIX + "limit")
    name = getattr(args, _DEST_PREFIX + "domain_id")

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
    cmd.add_argument(_DEST_PREFIX + "domain_id", metavar="ID", help="the domain's id")
    cmd.add_argument("--since", dest=_DEST_PREFIX + "since", help="as for history")
    cmd.set_defaults(operation=op, print_lines=print_export, **{_DEST_PREFIX + "limit": None})
    return cmd


def print_export(client: Any, args: argparse.Namespace, out: Any = None) -> int:
    """Print the trace (``epum.replay.trace``) of ``args``' domain."""
    from epum.replay.trace import trace_from_history

    now = time.time()
    name = getattr(args, _DEST_PREFIX + "domain_id")
    since = parse_since(getattr(args, _DEST_PREFIX + "since"), now)
    config = client.describe_domain(name, caller=args.caller)["config"]
    log = client.describe_domain_history(name, since=since, caller=args.caller)
    trace = trace_from_history(args.caller or "", name, config, log, now)
    print(json.dumps(trace.to_json(), indent=1, sort_keys=True), file=out or sys.stdout)
    return 0
