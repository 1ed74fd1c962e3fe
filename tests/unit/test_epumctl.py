"""epumctl's sub-commands, derived from the operations (no broker: a recording client)."""

from __future__ import annotations

import argparse

import pytest

from epum.config import ConfigError
from epum.ctl import ctl_parser
from epum.ctl_commands import command_line_operations, run_operation
from epum.messaging.clients import EPUManagementClient, with_operations
from epum.operations import OPERATIONS
from tests.fakes import EXTENDED, RecordingRpc

#: The flat commands of the README, which must keep working exactly as they did.
FLAT_COMMANDS = {
    "list-definitions": "list_domain_definitions",
    "describe-definition": "describe_domain_definition",
    "add-definition": "add_domain_definition",
    "update-definition": "update_domain_definition",
    "remove-definition": "remove_domain_definition",
    "list-domains": "list_domains",
    "describe-domain": "describe_domain",
    "add-domain": "add_domain",
    "remove-domain": "remove_domain",
    "reconfigure-domain": "reconfigure_domain",
    "subscribe-domain": "subscribe_domain",
    "unsubscribe-domain": "unsubscribe_domain",
    "describe-domain-history": "describe_domain_history",
}


def run(argv: list[str], operations=OPERATIONS) -> tuple[object, list]:
    """Parse ``argv`` as epumctl would and run it on a client over a recording rpc."""
    args = ctl_parser(operations).parse_args(argv)

    @with_operations(operations)
    class Client(EPUManagementClient):
        pass

    rpc = RecordingRpc()
    result = run_operation(Client(rpc, "svc"), args.operation, args)
    return result, rpc.sent


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.fixture
def yaml_file(tmp_path):
    def write(text: str) -> str:
        path = tmp_path / f"f{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(text)
        return str(path)

    return write


def test_the_commands_are_the_declared_ops_on_the_command_line():
    assert {n: op.name for n, op in command_line_operations().items()} == FLAT_COMMANDS
    # the flat commands are now aliases next to the groups and status
    assert set(subcommands(ctl_parser())) == {*FLAT_COMMANDS, "domain", "definition", "status"}


ON_COMMAND_LINE = [op for op in OPERATIONS if op.on_command_line]


@pytest.mark.parametrize("op", ON_COMMAND_LINE, ids=lambda op: op.name)
def test_each_command_takes_exactly_the_declared_args(op):
    cmd = subcommands(ctl_parser())[op.command_name]
    dests = [a.dest for a in cmd._actions if not isinstance(a, argparse._HelpAction)]
    assert dests == [f"op_{a.name}" for a in op.args]
    assert cmd.description == op.help


def test_reports_are_not_commands():
    assert not {"ou-heartbeat", "instance-info"} & set(subcommands(ctl_parser()))


def test_definition_commands(yaml_file):
    definition = yaml_file("general: {engine_class: simplest}\n")
    assert run(["list-definitions"])[1] == [("call", "svc", "list_domain_definitions", {})]
    assert run(["describe-definition", "d1"])[1] == [
        ("call", "svc", "describe_domain_definition", {"definition_id": "d1"})
    ]
    for command, op in (
        ("add-definition", "add_domain_definition"),
        ("update-definition", "update_domain_definition"),
    ):
        assert run([command, "d1", definition])[1] == [
            (
                "call",
                "svc",
                op,
                {"definition_id": "d1", "definition": {"general": {"engine_class": "simplest"}}},
            )
        ]
    assert run(["--caller", "alice", "remove-definition", "d1"])[1] == [
        ("call", "svc", "remove_domain_definition", {"definition_id": "d1"})
    ]


def test_domain_commands_act_for_the_caller(yaml_file):
    config = yaml_file("engine_conf: {preserve_n: 2}\n")
    assert run(["--caller", "alice", "list-domains"])[1] == [
        ("call", "svc", "list_domains", {"caller": "alice"})
    ]
    assert run(["list-domains"])[1] == [("call", "svc", "list_domains", {})]
    assert run(["--caller", "alice", "describe-domain", "pool"])[1] == [
        ("call", "svc", "describe_domain", {"domain_id": "pool", "caller": "alice"})
    ]
    assert run(["remove-domain", "pool"])[1] == [
        ("call", "svc", "remove_domain", {"domain_id": "pool"})
    ]
    assert run(["reconfigure-domain", "pool", config])[1] == [
        (
            "call",
            "svc",
            "reconfigure_domain",
            {"domain_id": "pool", "config": {"engine_conf": {"preserve_n": 2}}},
        )
    ]
    assert run(["subscribe-domain", "pool", "watcher", "changed"])[1] == [
        (
            "call",
            "svc",
            "subscribe_domain",
            {"domain_id": "pool", "subscriber_name": "watcher", "subscriber_op": "changed"},
        )
    ]
    assert run(["unsubscribe-domain", "pool", "watcher"])[1] == [
        ("call", "svc", "unsubscribe_domain", {"domain_id": "pool", "subscriber_name": "watcher"})
    ]


def test_add_domain_with_and_without_its_options(yaml_file):
    config = yaml_file("engine_conf: {preserve_n: 1}\n")
    assert run(["--config", "w.yaml", "add-domain", "pool", "--definition", "keep"])[1] == [
        ("call", "svc", "add_domain", {"domain_id": "pool", "definition_id": "keep", "config": {}})
    ]
    argv = ["--caller", "bob", "add-domain", "pool", "--definition", "keep", "--config", config]
    argv += ["--subscriber", "watcher", "--subscriber-op", "changed"]
    assert run(argv)[1] == [
        (
            "call",
            "svc",
            "add_domain",
            {
                "domain_id": "pool",
                "definition_id": "keep",
                "config": {"engine_conf": {"preserve_n": 1}},
                "subscriber_name": "watcher",
                "subscriber_op": "changed",
                "caller": "bob",
            },
        )
    ]
    # the worker's --config stays the worker's
    assert ctl_parser().parse_args(["--config", "w.yaml", "list-domains"]).config == ["w.yaml"]


def test_add_domain_needs_its_definition(capsys):
    with pytest.raises(SystemExit):
        ctl_parser().parse_args(["add-domain", "pool"])
    assert "--definition" in capsys.readouterr().err


def test_a_file_that_is_not_a_mapping_is_a_config_error(yaml_file):
    with pytest.raises(ConfigError, match="must hold a mapping"):
        run(["add-definition", "d1", yaml_file("- just\n- a list\n")])
    with pytest.raises(ConfigError, match="cannot read"):
        run(["add-definition", "d1", "/nonexistent/file.yaml"])


def test_an_op_added_only_to_the_declaration_is_a_command():
    parser = ctl_parser(EXTENDED)
    assert "describe-domain-forecast" in subcommands(parser)
    assert "describe-domain-forecast" not in subcommands(ctl_parser())
    argv = ["--caller", "alice", "describe-domain-forecast", "pool", "--since", "2.5"]
    _, sent = run([*argv, "--limit", "10"], EXTENDED)
    assert sent == [
        (
            "call",
            "svc",
            "describe_domain_forecast",
            {"domain_id": "pool", "since": 2.5, "limit": 10, "caller": "alice"},
        )
    ]
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--limit", "many"])
