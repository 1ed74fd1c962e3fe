"""Command lines: ``epum-worker`` (the daemon) and ``epumctl`` (an operator's client).

``epum-worker --config FILE [--config FILE ...]`` runs a worker until
SIGTERM/SIGINT.  ``epumctl [--config FILE | --amqp-url URL] [--sysname S]
[--caller C] <command> ...`` runs one EPUM operation and prints its result
as JSON; errors go to stderr with exit code 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from epum.config import ConfigError, load_config
from epum.errors import EpumError
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


#: command -> (arguments, how to run it on an EPUManagementClient)
Command = tuple[list[tuple[str, dict[str, Any]]], Callable[[Any, argparse.Namespace], Any]]

COMMANDS: dict[str, Command] = {
    "list-definitions": ([], lambda c, a: c.list_domain_definitions()),
    "describe-definition": (
        [("id", {})],
        lambda c, a: c.describe_domain_definition(a.id),
    ),
    "add-definition": (
        [("id", {}), ("file", {"help": "YAML file with the definition"})],
        lambda c, a: c.add_domain_definition(a.id, _read_mapping(a.file)),
    ),
    "update-definition": (
        [("id", {}), ("file", {"help": "YAML file with the definition"})],
        lambda c, a: c.update_domain_definition(a.id, _read_mapping(a.file)),
    ),
    "remove-definition": ([("id", {})], lambda c, a: c.remove_domain_definition(a.id)),
    "list-domains": ([], lambda c, a: c.list_domains(caller=a.caller)),
    "describe-domain": ([("id", {})], lambda c, a: c.describe_domain(a.id, caller=a.caller)),
    "add-domain": (
        [
            ("id", {}),
            ("--definition", {"required": True, "help": "definition id"}),
            ("--config", {"dest": "domain_config", "help": "YAML file with the domain config"}),
            ("--subscriber", {"help": "service told of instance changes"}),
            ("--subscriber-op", {"help": "its operation"}),
        ],
        lambda c, a: c.add_domain(
            a.id,
            a.definition,
            _read_mapping(a.domain_config) if a.domain_config else {},
            subscriber_name=a.subscriber,
            subscriber_op=a.subscriber_op,
            caller=a.caller,
        ),
    ),
    "remove-domain": ([("id", {})], lambda c, a: c.remove_domain(a.id, caller=a.caller)),
    "reconfigure-domain": (
        [("id", {}), ("file", {"help": "YAML file with the config changes"})],
        lambda c, a: c.reconfigure_domain(a.id, _read_mapping(a.file), caller=a.caller),
    ),
    "subscribe-domain": (
        [("id", {}), ("subscriber", {}), ("subscriber_op", {})],
        lambda c, a: c.subscribe_domain(a.id, a.subscriber, a.subscriber_op, caller=a.caller),
    ),
    "unsubscribe-domain": (
        [("id", {}), ("subscriber", {})],
        lambda c, a: c.unsubscribe_domain(a.id, a.subscriber, caller=a.caller),
    ),
}


def _ctl_parser() -> argparse.ArgumentParser:
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
    for name, (arguments, _) in COMMANDS.items():
        cmd = sub.add_parser(name)
        for flag, options in arguments:
            cmd.add_argument(flag, **options)
    return parser


def ctl_main(argv: Sequence[str] | None = None) -> int:
    """``epumctl``: run one EPUM operation, print its result as JSON."""
    from epum.messaging import EPUManagementClient, Names, RpcClient, connection_from_settings

    args = _ctl_parser().parse_args(argv)
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
        result = COMMANDS[args.command][1](client, args)
    except (EpumError, ConfigError) as exc:
        print(f"epumctl: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        rpc.close()
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0
