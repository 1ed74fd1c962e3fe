"""The dispatch table, the wire envelope and the EPUM op adapter, without a broker."""

from __future__ import annotations

import json
import logging

import pytest

from epum.errors import (
    BadRequestError,
    ConfigError,
    CorruptDataError,
    NotFoundError,
    RemoteError,
    StoreUnavailableError,
    UnknownOperationError,
    WriteConflictError,
)
from epum.logcontext import LogContextFilter, current, log_context, request_context
from epum.messaging import envelope
from epum.messaging.dispatch import Dispatcher
from epum.messaging.names import Names


class Calls:
    def __init__(self):
        self.seen = []

    def add(self, a, b=0):
        self.seen.append((a, b))
        return a + b

    def nothing(self):
        self.seen.append("nothing")


@pytest.fixture
def calls():
    return Calls()


@pytest.fixture
def dispatcher(calls):
    return Dispatcher({"add": calls.add, "nothing": calls.nothing})


def test_dispatch_runs_the_handler_with_the_args(dispatcher, calls):
    assert dispatcher.dispatch("add", {"a": 2, "b": 3}) == 5
    assert dispatcher.dispatch("add", {"a": 2}) == 2
    assert calls.seen == [(2, 3), (2, 0)]
    assert dispatcher.ops == ["add", "nothing"]
    assert "add" in dispatcher and "sub" not in dispatcher


def test_an_unknown_op_is_refused(dispatcher, calls):
    with pytest.raises(UnknownOperationError, match="'sub'"):
        dispatcher.prepare("sub", {})
    assert calls.seen == []


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({}, "missing a required argument: 'a'"),
        ({"a": 1, "c": 2}, "unexpected keyword argument 'c'"),
        ({"a": 1, "not an identifier": 2}, "must be identifiers"),
    ],
)
def test_args_that_do_not_bind_are_refused_before_running(dispatcher, calls, args, match):
    with pytest.raises(BadRequestError, match=match):
        dispatcher.prepare("add", args)
    assert calls.seen == []


def test_a_prepared_call_runs_only_when_called(dispatcher, calls):
    run = dispatcher.prepare("nothing", {})
    assert calls.seen == []
    assert run() is None
    assert calls.seen == ["nothing"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"op": "x", "args": {"a": 1}}, ("x", {"a": 1})),
        ({"op": "x"}, ("x", {})),
        ({"op": "x", "args": None}, ("x", {})),
    ],
)
def test_parse_request(body, expected):
    assert envelope.parse_request(body) == expected


@pytest.mark.parametrize(
    "body", ["text", [1], {"args": {}}, {"op": ""}, {"op": 3}, {"op": "x", "args": [1]}]
)
def test_parse_request_refuses_malformed_bodies(body):
    with pytest.raises(BadRequestError):
        envelope.parse_request(body)


@pytest.mark.parametrize(
    ("error", "wire_name"),
    [
        (BadRequestError("m"), "dashi.exceptions.BadRequestError"),
        (NotFoundError("m"), "dashi.exceptions.NotFoundError"),
        (UnknownOperationError("m"), "dashi.exceptions.UnknownOperationError"),
        (WriteConflictError("m"), "dashi.exceptions.WriteConflictError"),
        # the server's own troubles are not the caller's BadRequestError
        (ConfigError("m"), "ConfigError"),
        (CorruptDataError("m"), "CorruptDataError"),
        (StoreUnavailableError("m"), "StoreUnavailableError"),
        (KeyError("m"), "KeyError"),
        (RuntimeError("m"), "RuntimeError"),
    ],
)
def test_errors_travel_under_their_wire_names_and_come_back(error, wire_name):
    try:
        raise error
    except Exception as exc:
        reply = json.loads(envelope.reply_error(exc))
    assert reply["result"] is None
    assert reply["error"]["exc_type"] == wire_name
    assert "Traceback" in reply["error"]["traceback"]
    with pytest.raises(Exception) as info:
        envelope.unwrap_reply(reply)
    if wire_name.startswith("dashi."):
        assert type(info.value) is type(error)
    else:
        assert isinstance(info.value, RemoteError)
        assert info.value.exc_type == wire_name


def test_an_error_named_like_a_local_class_is_not_rebuilt_as_it():
    # only the allow-list is rebuilt: a remote "ValueError" is a RemoteError
    with pytest.raises(RemoteError):
        envelope.unwrap_reply({"result": None, "error": {"exc_type": "SystemExit", "value": ""}})


def test_results_must_be_strict_json():
    assert json.loads(envelope.reply_ok({"a": [1, None]})) == {
        "result": {"a": [1, None]},
        "error": None,
    }
    for bad in (object(), float("nan"), {1: object()}):
        with pytest.raises((TypeError, ValueError)):
            envelope.reply_ok(bad)


@pytest.mark.parametrize("body", [None, 3, {"other": 1}, {"error": "text"}])
def test_a_malformed_reply_is_a_remote_error(body):
    with pytest.raises(RemoteError, match="MalformedReply"):
        envelope.unwrap_reply(body)


def test_names_prefix_and_strip_the_sysname():
    names = Names("sys")
    assert names.exchange == "sys.default_dashi_exchange"
    assert names.qualify("svc") == "sys.svc"
    assert names.unqualify("sys.agent") == "agent"
    assert names.unqualify("other.agent") == "other.agent"
    plain = Names()
    assert plain.exchange == "default_dashi_exchange"
    assert plain.qualify("svc") == "svc" == plain.unqualify("svc")


def test_the_call_context_reaches_log_records(caplog):
    logger = logging.getLogger("epum.test.context")
    handler_filter = LogContextFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="epum.test.context"):
            logger.info("outside")
            with request_context("add", sender="tester", request_id="r1") as ctx:
                assert current() is ctx
                with log_context(caller="alice", domain="dom"):
                    logger.info("inside")
            assert current().request_id is None
    finally:
        caplog.handler.removeFilter(handler_filter)
    outside, inside = caplog.records
    assert (outside.request_id, outside.op, outside.caller) == ("-", "-", "-")
    assert (inside.request_id, inside.op, inside.caller) == ("r1", "add", "alice")
    assert (inside.domain, inside.sender) == ("dom", "tester")
    assert (outside.domain, outside.sender) == ("-", "-")
