"""The operations declared once, and what is derived from them: the server's table,
the client, and how each agrees with the declaration and the facade."""

from __future__ import annotations

import inspect

import pytest

from epum.errors import BadRequestError
from epum.logcontext import request_context
from epum.management import EPUManagement
from epum.messaging.clients import EPUManagementClient, with_operations
from epum.messaging.dispatch import Dispatcher
from epum.messaging.epum_ops import EPUMOperations
from epum.operations import (
    OPERATIONS,
    Arg,
    CallerFrom,
    Kind,
    Operation,
    by_name,
    declare,
    facade_disagreements,
)
from tests.fakes import EXTENDED, HISTORY, RecordingFacade, RecordingRpc

#: PROTOCOL.md section 5.
PROTOCOL_OPS = [
    "subscribe_domain",
    "unsubscribe_domain",
    "add_domain",
    "remove_domain",
    "list_domains",
    "describe_domain",
    "reconfigure_domain",
    "add_domain_definition",
    "remove_domain_definition",
    "list_domain_definitions",
    "describe_domain_definition",
    "update_domain_definition",
    "describe_domain_history",
    "ou_heartbeat",
    "instance_info",
]


# the declaration -------------------------------------------------------------------


def test_the_declaration_has_the_protocol_ops_in_order():
    assert [op.name for op in OPERATIONS] == PROTOCOL_OPS


def test_reports_are_fires_whose_caller_is_the_sender():
    ops = by_name(OPERATIONS)
    for name, arg in (("ou_heartbeat", "heartbeat"), ("instance_info", "record")):
        op = ops[name]
        assert (op.kind, op.caller) == (Kind.FIRE, CallerFrom.SENDER)
        assert [a.name for a in op.args] == [arg]
        assert not op.on_command_line
    others = [op for op in OPERATIONS if op.name not in ("ou_heartbeat", "instance_info")]
    assert {op.kind for op in others} == {Kind.CALL}


def test_domain_ops_are_the_ones_acting_for_an_owner():
    domain_ops = {op.name for op in OPERATIONS if op.is_domain_op}
    assert domain_ops == {n for n in PROTOCOL_OPS if "domain" in n and "definition" not in n}


def test_the_facade_serves_every_declared_op():
    assert facade_disagreements(OPERATIONS, EPUManagement) == []


def test_a_facade_that_drifted_from_the_declaration_is_reported():
    class Drifted:
        def msg_remove_domain(self, caller, domain):  # renamed parameter
            pass

        def msg_list_domains(self, caller, page):  # an undeclared required parameter
            pass

        def msg_describe_domain(self, domain_id, caller):  # the caller is not first
            pass

    ops = by_name(OPERATIONS)
    problems = facade_disagreements(
        [ops["remove_domain"], ops["list_domains"], ops["describe_domain"], ops["add_domain"]],
        Drifted,
    )
    assert [p.split(":")[0] for p in problems] == [
        "remove_domain",
        "list_domains",
        "describe_domain",
        "add_domain",
    ]
    assert "no msg_add_domain" in problems[-1]
    assert "undeclared ['page']" in problems[1]


def test_the_facade_must_leave_optional_args_optional():
    class Stricter:
        def msg_add_domain(
            self, caller, domain_id, definition_id, config, subscriber_name, subscriber_op=None
        ):
            pass

    (problem,) = facade_disagreements([by_name(OPERATIONS)["add_domain"]], Stricter)
    assert problem.startswith("add_domain: msg_add_domain takes")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Arg("not a name", str, "h"), "not an identifier"),
        (lambda: Arg("x", tuple, "h"), "type"),
        (lambda: Operation("op", "serve_op", Kind.CALL, "h"), "not a msg_"),
        (
            lambda: Operation("op", "msg_op", Kind.CALL, "h", (Arg("a", str, "h"),) * 2),
            "declared twice",
        ),
        (
            lambda: Operation("op", "msg_op", Kind.CALL, "h", (Arg("caller", str, "h"),)),
            "'caller' is not declared",
        ),
        (
            lambda: Operation(
                "op",
                "msg_op",
                Kind.CALL,
                "h",
                (Arg("a", str, "h", required=False), Arg("b", str, "h")),
            ),
            "required argument b after an optional one",
        ),
        (lambda: declare(*OPERATIONS, OPERATIONS[0]), "operation 'subscribe_domain'"),
        (
            lambda: declare(
                *OPERATIONS, Operation("other", "msg_list_domains", Kind.CALL, "h", command="x")
            ),
            "facade method 'msg_list_domains'",
        ),
        (
            lambda: declare(
                *OPERATIONS, Operation("other", "msg_other", Kind.CALL, "h", command="list-domains")
            ),
            "command 'list-domains'",
        ),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_problem(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# caller resolution and argument types ------------------------------------------------


def test_caller_resolution():
    ops = by_name(OPERATIONS)
    domain, definition, report = (
        ops["list_domains"],
        ops["list_domain_definitions"],
        ops["ou_heartbeat"],
    )
    assert domain.resolve_caller("alice", "default", "sender") == "alice"
    assert domain.resolve_caller(None, "default", "sender") == "default"
    assert domain.resolve_caller("", "default", "sender") == "default"
    with pytest.raises(BadRequestError, match="list_domains needs a caller"):
        domain.resolve_caller(None, None, "sender")
    with pytest.raises(BadRequestError, match="caller must be a string, not int"):
        domain.resolve_caller(7, "default", None)
    assert definition.resolve_caller("alice", "default", "sender") is None
    assert report.resolve_caller("alice", "default", "agent-1") == "agent-1"


@pytest.mark.parametrize(
    ("op", "args", "message"),
    [
        (
            "describe_domain",
            {"domain_id": 7},
            "describe_domain: domain_id must be a string, not int",
        ),
        (
            "add_domain",
            {"domain_id": "d", "definition_id": "x", "config": []},
            "add_domain: config must be a mapping, not list",
        ),
        (
            "add_domain",
            {"domain_id": "d", "definition_id": "x", "config": {}, "subscriber_name": 1},
            "subscriber_name must be a string",
        ),
        (
            "add_domain_definition",
            {"definition_id": "x", "definition": None},
            "a mapping, not NoneType",
        ),
        ("ou_heartbeat", {"heartbeat": "beat"}, "heartbeat must be a mapping, not str"),
        ("instance_info", {"record": [1]}, "record must be a mapping, not list"),
        ("list_domains", {"caller": 5}, "caller must be a string"),
    ],
)
def test_arguments_of_the_wrong_type_are_refused_before_the_facade_runs(op, args, message):
    facade = RecordingFacade()
    dispatcher = Dispatcher(EPUMOperations(facade, "default").table())
    with pytest.raises(BadRequestError, match=message):
        dispatcher.prepare(op, args)
    assert facade.calls == []


def test_optional_args_may_be_null_and_numbers_are_not_booleans():
    add = by_name(OPERATIONS)["add_domain"]
    add.check_args({"domain_id": "d", "definition_id": "x", "config": {}, "subscriber_name": None})
    with pytest.raises(BadRequestError, match="limit must be an integer, not bool"):
        HISTORY.check_args({"domain_id": "d", "limit": True})
    HISTORY.check_args({"domain_id": "d", "since": 3, "limit": 2})  # an int is a number


# the derived table ---------------------------------------------------------------------


def test_the_table_has_one_handler_per_op_with_the_declared_signature():
    table = EPUMOperations(RecordingFacade()).table()
    assert list(table) == [op.name for op in OPERATIONS]
    for op in OPERATIONS:
        assert inspect.signature(table[op.name]) == op.signature()


def test_a_handler_called_directly_checks_too():
    facade = RecordingFacade()
    handler = EPUMOperations(facade, "default").table()["describe_domain"]
    assert handler(domain_id="d") == "msg_describe_domain"
    with pytest.raises(BadRequestError):
        handler(domain_id=3)
    assert facade.calls == [("msg_describe_domain", ("default", "d"), {})]


# the derived client ----------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
def test_the_client_has_each_op_with_the_declared_signature(op):
    method = getattr(EPUManagementClient, op.name)
    params = list(inspect.signature(method).parameters.values())
    assert params[0].name == "self"
    assert params[1:] == list(op.signature().parameters.values())
    assert method.__doc__


def test_the_client_keeps_its_public_signatures():
    sig = inspect.signature(EPUManagementClient.add_domain)
    assert str(sig).startswith(
        "(self, /, domain_id: str, definition_id: str, config: dict, "
        "subscriber_name: str | None = None, subscriber_op: str | None = None, "
        "caller: str | None = None)"
    )
    assert list(inspect.signature(EPUManagementClient.list_domains).parameters) == [
        "self",
        "caller",
    ]


def test_the_client_calls_and_fires_leaving_unset_optional_args_out():
    rpc = RecordingRpc()
    client = EPUManagementClient(rpc, "svc", timeout=3)
    assert client.add_domain("d", "def", {"a": 1}, subscriber_name="s") == "add_domain"
    client.list_domains(caller="alice")
    client.list_domains()
    client.add_domain("d", "def", None)  # a required arg is sent even when None
    assert client.ou_heartbeat({"node_id": "n"}) is None
    client.instance_info(record={"node_id": "n"})
    assert rpc.sent == [
        (
            "call",
            "svc",
            "add_domain",
            {"domain_id": "d", "definition_id": "def", "config": {"a": 1}, "subscriber_name": "s"},
        ),
        ("call", "svc", "list_domains", {"caller": "alice"}),
        ("call", "svc", "list_domains", {}),
        ("call", "svc", "add_domain", {"domain_id": "d", "definition_id": "def", "config": None}),
        ("fire", "svc", "ou_heartbeat", {"heartbeat": {"node_id": "n"}}),
        ("fire", "svc", "instance_info", {"record": {"node_id": "n"}}),
    ]
    with pytest.raises(TypeError):
        client.describe_domain()  # the signature binds like any method's
    with pytest.raises(TypeError):
        client.list_domains(owner="alice")


# one more op, declared only ------------------------------------------------------------


def test_an_op_added_only_to_the_declaration_is_served_and_called():
    facade = RecordingFacade()
    dispatcher = Dispatcher(EPUMOperations(facade, "default", EXTENDED).table())
    assert "describe_domain_forecast" in dispatcher
    dispatcher.dispatch("describe_domain_forecast", {"domain_id": "d", "limit": 5})
    assert facade.calls == [("msg_describe_domain_forecast", ("default", "d", None, 5), {})]
    with pytest.raises(BadRequestError, match="limit must be an integer"):
        dispatcher.dispatch("describe_domain_forecast", {"domain_id": "d", "limit": "5"})

    @with_operations(EXTENDED)
    class Extended(EPUManagementClient):
        pass

    rpc = RecordingRpc()
    Extended(rpc, "svc").describe_domain_forecast("d", since=1.5, caller="alice")
    assert rpc.sent == [
        (
            "call",
            "svc",
            "describe_domain_forecast",
            {"domain_id": "d", "since": 1.5, "caller": "alice"},
        )
    ]
    assert not hasattr(EPUManagementClient, "describe_domain_forecast")


def test_the_sender_reaches_a_report_through_the_table():
    facade = RecordingFacade()
    dispatcher = Dispatcher(EPUMOperations(facade).table())
    with request_context("instance_info", sender="provisioner"):
        dispatcher.dispatch("instance_info", {"record": {"node_id": "n"}})
    dispatcher.dispatch("instance_info", {"record": {"node_id": "n"}})  # no request: no sender
    assert [c[1][0] for c in facade.calls] == ["provisioner", None]
