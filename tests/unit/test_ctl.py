"""epumctl's groups, renderings and exit codes, without a broker."""

from __future__ import annotations

import io
import json

import pytest
import yaml

from epum import ctl_output
from epum.ctl import EXIT_CODES, command_groups, ctl_parser, exit_code, group_and_verb
from epum.errors import (
    BadRequestError,
    ConfigError,
    NotFoundError,
    RemoteError,
    WriteConflictError,
)
from epum.messaging import BrokerUnavailableError, NoSuchServiceError, RpcTimeoutError
from epum.operations import OPERATIONS
from tests.fakes import EXTENDED


def test_the_groups_are_derived_from_the_operations():
    groups = {g: {v: op.name for v, op in verbs.items()} for g, verbs in command_groups().items()}
    assert groups == {
        "domain": {
            "list": "list_domains",
            "describe": "describe_domain",
            "add": "add_domain",
            "remove": "remove_domain",
            "reconfigure": "reconfigure_domain",
            "subscribe": "subscribe_domain",
            "unsubscribe": "unsubscribe_domain",
            "history": "describe_domain_history",
        },
        "definition": {
            "list": "list_domain_definitions",
            "describe": "describe_domain_definition",
            "add": "add_domain_definition",
            "update": "update_domain_definition",
            "remove": "remove_domain_definition",
        },
    }
    assert command_groups(EXTENDED)["domain"]["forecast"].name == "describe_domain_forecast"
    assert all(group_and_verb(op)[1] for op in OPERATIONS)


def test_group_commands_take_options_after_their_name():
    args = ctl_parser().parse_args(["domain", "list", "-o", "yaml", "--caller", "bob"])
    assert (args.operation.name, args.output, args.caller, args.flat) == (
        "list_domains",
        "yaml",
        "bob",
        False,
    )
    args = ctl_parser().parse_args(["--caller", "amy", "-o", "json", "domain", "list"])
    assert (args.caller, args.output) == ("amy", "json")
    args = ctl_parser().parse_args(["list-domains"])
    assert (args.operation.name, args.flat, args.output) == ("list_domains", True, None)
    args = ctl_parser().parse_args(["domain", "describe", "d1", "--watch", "--interval", "0.5"])
    assert (args.watch, args.interval, args.op_domain_id) == (True, 0.5, "d1")
    assert ctl_parser().parse_args(["status"]).operation is None


def test_the_caller_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("EPUM_CALLER", "envy")
    assert ctl_parser().parse_args(["domain", "list"]).caller == "envy"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFoundError("x"), 3),
        (BadRequestError("x"), 4),
        (ConfigError("x"), 4),
        (WriteConflictError("x"), 5),
        (RpcTimeoutError("x"), 6),
        (BrokerUnavailableError("x"), 7),
        (NoSuchServiceError("x"), 7),
        (RemoteError("KeyError", "x"), 1),
    ],
)
def test_each_error_has_its_exit_code(error, code):
    assert exit_code(error) == code
    assert code in EXIT_CODES


def test_machine_output():
    assert json.loads(ctl_output.machine({"a": [1]}, "json")) == {"a": [1]}
    assert yaml.safe_load(ctl_output.machine({"a": [1]}, "yaml")) == {"a": [1]}
    with pytest.raises(ValueError, match="output mode must be one of table, json, yaml"):
        ctl_output.machine({}, "xml")


@pytest.mark.parametrize(
    ("seconds", "text"), [(-3, "0s"), (42, "42s"), (60, "1m"), (7300, "2h"), (90000, "1d")]
)
def test_ages(seconds, text):
    assert ctl_output.age(seconds) == text


def test_a_table_fits_its_width():
    rows = [["a" * 40, "600-RUNNING", "OK"]]
    wide = ctl_output.table(("INSTANCE", "STATE", "HEALTH"), rows, width=120)
    assert wide.splitlines()[1] == "a" * 40 + "  600-RUNNING  OK"
    narrow = ctl_output.table(("INSTANCE", "STATE", "HEALTH"), rows, width=40)
    assert max(len(line) for line in narrow.splitlines()) <= 40
    assert narrow.splitlines()[1] == "a" * 18 + "~  600-RUNNING  OK"


def test_a_domain_is_described_with_its_instance_table():
    result = {
        "name": "pool",
        "config": {"general": {"engine_class": "needy"}},
        "instances": [
            {
                "instance_id": "i-2",
                "state": "400-PENDING",
                "health": "UNKNOWN",
                "site": "s1",
                "state_time": 990.0,
            },
            {
                "instance_id": "i-1",
                "state": "600-RUNNING",
                "health": "OK",
                "site": "s1",
                "public_ip": "10.0.0.1",
                "state_time": 400.0,
            },
        ],
    }
    text = ctl_output.describe_domain(result, now=1000.0)
    lines = text.splitlines()
    assert lines[:3] == ["Domain:    pool", "Engine:    needy", "Instances: 2"]
    assert lines[4].split() == list(ctl_output.INSTANCE_COLUMNS)
    assert lines[5].split() == ["i-1", "600-RUNNING", "OK", "s1", "10.0.0.1", "10m"]
    assert lines[6].split() == ["i-2", "400-PENDING", "UNKNOWN", "s1", "-", "10s"]


def test_human_output_of_each_kind_of_command():
    assert ctl_output.human("domain", "list", ["a", "b"], None, 0, 80) == "a\nb\n"
    assert ctl_output.human("domain", "add", None, "d1", 0, 80) == "domain d1 added\n"
    assert ctl_output.human("definition", "remove", None, "x", 0, 80) == "definition x removed\n"
    assert ctl_output.human("domain", "subscribe", None, "d", 0, 80) == "domain d subscribed\n"
    described = ctl_output.human("definition", "describe", {"name": "x"}, "x", 0, 80)
    assert yaml.safe_load(described) == {"name": "x"}


def test_status_text():
    status = {
        "service": "epu_management_service",
        "workers": 2,
        "leaders": {"decider": "w1", "doctor": None},
        "queues": [{"queue": "epu_management_service", "messages": 3, "consumers": 2}],
    }
    text = ctl_output.status_text(status)
    assert "Workers:  2" in text
    assert "Leader:   decider = w1" in text and "Leader:   doctor = -" in text
    assert text.splitlines()[-1].split() == ["epu_management_service", "3", "2"]
    status["leaders"] = None
    assert "unknown (no ZooKeeper store configured)" in ctl_output.status_text(status)


def test_a_bad_config_file_is_exit_code_4(tmp_path, capsys):
    from epum.ctl import ctl_main

    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [not, a, mapping]\n")
    assert ctl_main(["--config", str(bad), "domain", "list"], out=io.StringIO()) == 4
    err = capsys.readouterr().err
    assert err.startswith("epumctl: ConfigError: ") and err.count("\n") == 1
