"""The EPUM wire ops mapped onto the facade's msg_* methods (no broker)."""

from __future__ import annotations

import pytest

from epum.errors import BadRequestError
from epum.logcontext import request_context
from epum.messaging.dispatch import Dispatcher
from epum.messaging.epum_ops import EPUMOperations
from tests.fakes import RecordingFacade


@pytest.fixture
def facade():
    return RecordingFacade()


def dispatcher(facade, default_user=None):
    return Dispatcher(EPUMOperations(facade, default_user).table())


def test_the_table_has_exactly_the_protocol_ops(facade):
    assert sorted(EPUMOperations(facade).table()) == sorted(
        [
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
            "describe_domain_history",
            "describe_domain_definition",
            "update_domain_definition",
            "ou_heartbeat",
            "instance_info",
        ]
    )


DOMAIN_OPS = [
    (
        "add_domain",
        {"domain_id": "d", "definition_id": "def", "config": {"a": 1}},
        ("msg_add_domain", ("d", "def", {"a": 1}, None, None)),
    ),
    (
        "add_domain",
        {
            "domain_id": "d",
            "definition_id": "def",
            "config": {},
            "subscriber_name": "s",
            "subscriber_op": "o",
        },
        ("msg_add_domain", ("d", "def", {}, "s", "o")),
    ),
    ("remove_domain", {"domain_id": "d"}, ("msg_remove_domain", ("d",))),
    ("list_domains", {}, ("msg_list_domains", ())),
    ("describe_domain", {"domain_id": "d"}, ("msg_describe_domain", ("d",))),
    (
        "reconfigure_domain",
        {"domain_id": "d", "config": {"x": 1}},
        ("msg_reconfigure_domain", ("d", {"x": 1})),
    ),
    (
        "subscribe_domain",
        {"domain_id": "d", "subscriber_name": "s", "subscriber_op": "o"},
        ("msg_subscribe_domain", ("d", "s", "o")),
    ),
    (
        "unsubscribe_domain",
        {"domain_id": "d", "subscriber_name": "s"},
        ("msg_unsubscribe_domain", ("d", "s")),
    ),
]


@pytest.mark.parametrize(("op", "args", "expected"), DOMAIN_OPS)
def test_domain_ops_pass_the_given_caller_first(facade, op, args, expected):
    result = dispatcher(facade, default_user="default").dispatch(op, {**args, "caller": "alice"})
    method, rest = expected
    assert result == method
    assert facade.calls == [(method, ("alice", *rest), {})]


@pytest.mark.parametrize(("op", "args", "expected"), DOMAIN_OPS)
def test_domain_ops_fall_back_to_the_default_user(facade, op, args, expected):
    dispatcher(facade, default_user="default").dispatch(op, args)
    method, rest = expected
    assert facade.calls == [(method, ("default", *rest), {})]


@pytest.mark.parametrize(("op", "args", "expected"), DOMAIN_OPS)
def test_domain_ops_without_any_caller_are_refused(facade, op, args, expected):
    with pytest.raises(BadRequestError, match="needs a caller"):
        dispatcher(facade).dispatch(op, args)
    assert facade.calls == []


@pytest.mark.parametrize(
    ("op", "args", "expected"),
    [
        (
            "add_domain_definition",
            {"definition_id": "d", "definition": {"a": 1}},
            ("msg_add_domain_definition", ("d", {"a": 1})),
        ),
        (
            "update_domain_definition",
            {"definition_id": "d", "definition": {"a": 2}},
            ("msg_update_domain_definition", ("d", {"a": 2})),
        ),
        (
            "remove_domain_definition",
            {"definition_id": "d"},
            ("msg_remove_domain_definition", ("d",)),
        ),
        (
            "describe_domain_definition",
            {"definition_id": "d"},
            ("msg_describe_domain_definition", ("d",)),
        ),
        ("list_domain_definitions", {}, ("msg_list_domain_definitions", ())),
    ],
)
def test_definition_ops_need_no_caller(facade, op, args, expected):
    dispatcher(facade).dispatch(op, args)
    method, rest = expected
    assert facade.calls == [(method, rest, {})]


def test_heartbeat_and_instance_info_take_the_sender_as_caller(facade):
    ops = dispatcher(facade)
    with request_context("ou_heartbeat", sender="agent-7"):
        ops.dispatch("ou_heartbeat", {"heartbeat": {"node_id": "n1", "state": "OK"}})
    with request_context("instance_info", sender="provisioner"):
        ops.dispatch("instance_info", {"record": {"node_id": "n1", "state": "600-RUNNING"}})
    assert facade.calls == [
        ("msg_heartbeat", ("agent-7", {"node_id": "n1", "state": "OK"}), {}),
        ("msg_instance_info", ("provisioner", {"node_id": "n1", "state": "600-RUNNING"}), {}),
    ]


def test_a_client_cannot_smuggle_a_sender_argument(facade):
    with pytest.raises(BadRequestError):
        dispatcher(facade).dispatch("ou_heartbeat", {"heartbeat": {}, "caller": "x"})
