"""``epumctl``: command groups derived from the operations, output modes, exit codes.

``epumctl domain list|describe|add|remove|reconfigure|subscribe|unsubscribe``
and ``epumctl definition list|describe|add|update|remove`` are derived from
``epum.operations.OPERATIONS`` (``command_groups``): an operation whose name
mentions ``definition`` goes to ``definition``, any other on the command line
to ``domain``, its verb the rest of its name (``group_and_verb``).  The flat commands of the
previous release (``list-domains`` ...) stay as aliases, printing JSON as
they did.  ``epumctl status`` shows the service's workers (consumers), its
queues' depths and, with a ZooKeeper store configured, who leads each role.

Output: human text by default (tables cut to the terminal's width), ``-o
json`` or ``-o yaml`` for scripts.  ``domain describe ID --watch`` redraws
every ``--interval`` seconds until interrupted.  Files holding a mapping
may be YAML or JSON, or ``-`` for stdin.  ``--caller`` defaults to
``$EPUM_CALLER``; the broker and sysname come from the flags, then
``EPUM_AMQP_URL`` / ``EPUM_SYSNAME``, then the ``--config`` files.

Exit codes (``EXIT_CODES``): 0 done, 1 any other error, 2 a bad command
line, 3 not found, 4 bad request (a bad file included), 5 conflict, 6
timeout, 7 cannot connect (no broker, or no worker serving the queue).
Every error is one line on stderr naming what was wrong.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from epum import ctl_output
from epum.config import load_config
from epum.ctl_commands import (
    DEST_PREFIX,
    HISTORY_OP,
    add_export_command,
    add_history_command,
    add_operation_command,
    add_wait_command,
    command_line_operations,
    run_operation,
)
from epum.errors import (
    BadRequestError,
    ConfigError,
    EpumError,
    NotFoundError,
    UnknownOperationError,
    WriteConflictError,
)
from epum.operations import OPERATIONS, Operation

#: Exit code -> what it means (the README's table is this one).
EXIT_CODES: dict[int, str] = {
    0: "done",
    1: "any other error",
    2: "a bad command line",
    3: "not found",
    4: "bad request (a bad file included)",
    5: "conflict",
    6: "timeout",
    7: "cannot connect (no broker, or no worker serving the queue)",
}


def exit_code(exc: BaseException) -> int:
    """The exit code of an error (see ``EXIT_CODES``)."""
    from epum.messaging import BrokerUnavailableError, NoSuchServiceError, RpcTimeoutError

    for kinds, code in (
        ((NotFoundError,), 3),
        ((BadRequestError, ConfigError, UnknownOperationError), 4),
        ((WriteConflictError,), 5),
        ((RpcTimeoutError, TimeoutError), 6),
        ((BrokerUnavailableError, NoSuchServiceError, ConnectionError), 7),
    ):
        if isinstance(exc, kinds):
            return code
    return 1


def group_and_verb(op: Operation) -> tuple[str, str]:
    """``(group, verb)`` of an operation: ``definition`` if its name mentions one, else
    ``domain``; the verb is the other words of its name (``list_domain_definitions``
    -> ``definition list``), a leading ``describe`` dropped when a noun follows
    (``describe_domain_history`` -> ``domain history``)."""
    group = "definition" if "definition" in op.name else "domain"
    words = [w for w in op.name.split("_") if w.rstrip("s") not in ("domain", "definition")]
    if len(words) > 1 and words[0] == "describe":
        words = words[1:]
    return group, "-".join(words)


def command_groups(
    operations: Iterable[Operation] = OPERATIONS,
) -> dict[str, dict[str, Operation]]:
    """group -> verb -> operation, for every operation on the command line."""
    groups: dict[str, dict[str, Operation]] = {}
    for op in command_line_operations(operations).values():
        group, verb = group_and_verb(op)
        if verb in groups.setdefault(group, {}):
            raise ValueError(f"epumctl {group} {verb} would run two operations")
        groups[group][verb] = op
    return groups


def _leaf_options() -> argparse.ArgumentParser:
    """Options every command also takes after its name (``domain list -o json``)."""
    leaf = argparse.ArgumentParser(add_help=False)
    leaf.add_argument("-o", "--output", choices=ctl_output.OUTPUT_MODES, default=argparse.SUPPRESS)
    leaf.add_argument("--caller", default=argparse.SUPPRESS, help="domain owner")
    return leaf


def ctl_parser(operations: Iterable[Operation] = OPERATIONS) -> argparse.ArgumentParser:
    """epumctl's parser: global options, the groups, ``status``, the flat aliases.

    The parsed namespace's ``operation`` is the operation to run (None for
    ``status``), ``group``/``verb`` name it for the output.
    """
    ops = tuple(operations)
    parser = argparse.ArgumentParser(
        prog="epumctl",
        description="Operate an epum service over AMQP.",
        epilog="exit codes: " + "; ".join(f"{c} {m}" for c, m in EXIT_CODES.items()),
    )
    parser.add_argument("--config", action="append", metavar="FILE", help="worker config file(s)")
    parser.add_argument("--amqp-url", help="broker URL (default: $EPUM_AMQP_URL or the config)")
    parser.add_argument("--sysname", help="system namespace (default: $EPUM_SYSNAME or the config)")
    parser.add_argument("--service", help="EPUM service name (overrides the config)")
    parser.add_argument(
        "--caller",
        default=os.environ.get("EPUM_CALLER"),
        help="domain owner (default: $EPUM_CALLER, else the service's default_user)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument(
        "-o", "--output", choices=ctl_output.OUTPUT_MODES, default=None, help="default: table"
    )
    leaf = _leaf_options()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group, verbs in command_groups(ops).items():
        group_parser = sub.add_parser(group, help=f"{group} commands")
        verb_sub = group_parser.add_subparsers(dest="verb", required=True, metavar="VERB")
        for verb, op in verbs.items():
            if op.name == HISTORY_OP:  # plain words, --follow; and its trace export
                cmd = add_history_command(verb_sub, op)
                export = add_export_command(verb_sub, op)
                export.set_defaults(group=group, verb="export", flat=False)
            else:
                cmd = add_operation_command(verb_sub, verb, op)
            for action in leaf._actions:
                cmd._add_action(action)
            cmd.set_defaults(group=group, verb=verb, flat=False)
            if (group, verb) == ("domain", "describe"):
                cmd.add_argument("--watch", action="store_true", help="redraw until interrupted")
                cmd.add_argument("--interval", type=float, default=2.0, help="seconds (default 2)")
                waiting = add_wait_command(verb_sub, op)
                for action in leaf._actions:
                    waiting._add_action(action)
                waiting.set_defaults(group=group, verb="wait", flat=False)
    status = sub.add_parser("status", parents=[leaf], help="workers, leaders, queue depths")
    status.set_defaults(operation=None, group="status", verb="status", flat=False)
    for name, op in command_line_operations(ops).items():
        group, verb = group_and_verb(op)
        alias = add_operation_command(sub, name, op)
        alias.set_defaults(group=group, verb=verb, flat=True)
    return parser


def _rpc(config: Any, args: argparse.Namespace) -> Any:
    from epum.messaging import Names, RpcClient, connection_from_settings

    amqp = config.amqp
    if args.amqp_url:
        amqp = dataclasses.replace(amqp, url=args.amqp_url)
    if args.sysname:
        amqp = dataclasses.replace(amqp, sysname=args.sysname)
    names = Names(amqp.sysname, amqp.exchange)
    rpc = RpcClient(
        connection_from_settings(amqp, name="epumctl", heartbeat=False),
        names,
        sender="epumctl",
        timeout=args.timeout,
        connect_retries=1,
    )
    return rpc, names, amqp


def _subject(op: Operation | None, args: argparse.Namespace) -> str | None:
    if op is None or not op.args or not op.args[0].required:
        return None
    return getattr(args, DEST_PREFIX + op.args[0].name, None)


def _status(config: Any, amqp: Any, names: Any, service: str) -> dict[str, Any]:
    from epum.messaging import connection_from_settings
    from epum.messaging.queue_stats import service_queue_stats

    with connection_from_settings(amqp, name="epumctl:status", heartbeat=False) as conn:
        queues = service_queue_stats(conn, names, service, amqp.queue_shards)
    workers = next((q["consumers"] for q in queues if q["queue"] == service), 0)
    return {"service": service, "workers": workers, "leaders": _leaders(config), "queues": queues}


def _leaders(config: Any) -> dict[str, str | None] | None:
    """Each role's leader, from the ZooKeeper store when one is configured."""
    if config.epum.persistence_type != "zookeeper":
        return None
    from epum.store import get_epum_store

    store = get_epum_store(config)
    store.initialize()
    try:
        return {
            role: next(iter(store.election_contenders(role)), None)
            for role in ("decider", "doctor", "reaper")
        }
    finally:
        store.shutdown()


def ctl_main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """``epumctl``: run one command, print its result; the exit code says how it went."""
    out = out or sys.stdout
    args = ctl_parser().parse_args(argv)
    mode = args.output or ("json" if args.flat else "table")
    width = shutil.get_terminal_size((120, 24)).columns
    try:
        config = load_config(args.config or [])
        rpc, names, amqp = _rpc(config, args)
    except (ValueError, EpumError) as exc:
        return _fail(exc)
    stop = threading.Event()
    try:
        from epum.messaging import EPUManagementClient

        service = args.service or config.epum.service_name
        client = EPUManagementClient(rpc, service)
        op = args.operation
        print_lines = getattr(args, "print_lines", None)  # domain history / export
        if print_lines is not None and (mode == "table" or args.verb in ("export", "wait")):
            return print_lines(client, args, out)
        while True:
            if op is None:
                result = _status(config, amqp, names, service)
            else:
                result = run_operation(client, op, args)
                if result is None and args.verb == "describe":
                    raise NotFoundError(f"{args.group} {_subject(op, args)} not found")
            if mode != "table":
                text = ctl_output.machine(result, mode)
            elif op is None:
                text = ctl_output.status_text(result, width)
            else:
                text = ctl_output.human(
                    args.group, args.verb, result, _subject(op, args), clock(), width
                )
            if not getattr(args, "watch", False):
                out.write(text)
                break
            out.write("\x1b[H\x1b[2J" + text)
            out.flush()
            if stop.wait(args.interval):
                break
    except KeyboardInterrupt:
        return 0
    except (EpumError, ValueError, OSError) as exc:
        return _fail(exc)
    finally:
        rpc.close()
    return 0


def _fail(exc: BaseException) -> int:
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"epumctl: {type(exc).__name__}: {message}", file=sys.stderr)
    return exit_code(exc)
