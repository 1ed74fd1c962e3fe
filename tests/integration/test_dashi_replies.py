"""Calls to a service that answers dashi's way (only to the ``reply-to`` header)."""

from __future__ import annotations

import pytest

from epum.errors import NotFoundError
from epum.messaging import RpcClient
from epum.messaging.connection import make_connection
from epum.messaging.exceptions import RpcTimeoutError
from tests import rabbit
from tests.dashi_double import DashiError, DashiService

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names


def _ops() -> dict:
    def describe_site(site_name: str) -> dict:
        if site_name == "missing":
            raise DashiError("NotFoundError", f"site {site_name} not found")
        return {"name": site_name}

    return {"describe_site": describe_site}


@pytest.fixture
def dtrs(amqp_url, names):
    service = DashiService(amqp_url, names.sysname, "dtrs", _ops()).start()
    yield service
    service.stop()


def _client(amqp_url, names, dashi_replies: bool) -> RpcClient:
    return RpcClient(
        make_connection(amqp_url), names, "epum", timeout=5, dashi_replies=dashi_replies
    )


def test_a_call_with_the_header_gets_a_dashi_services_answers(amqp_url, names, dtrs):
    rpc = _client(amqp_url, names, dashi_replies=True)
    try:
        for i in range(3):  # one channel, the reply key changes with every call
            assert rpc.call("dtrs", "describe_site", site_name=f"s{i}") == {"name": f"s{i}"}
        with pytest.raises(NotFoundError, match="missing"):
            rpc.call("dtrs", "describe_site", site_name="missing")
    finally:
        rpc.close()
    keys = [r["headers"]["reply-to"] for r in dtrs.requests]
    assert len(set(keys)) == 4
    assert all(r["properties"]["correlation_id"] == r["headers"]["reply-to"] for r in dtrs.requests)


def test_without_the_header_a_dashi_service_never_answers(amqp_url, names, dtrs):
    rpc = _client(amqp_url, names, dashi_replies=False)
    try:
        with pytest.raises(RpcTimeoutError):
            rpc.call("dtrs", "describe_site", timeout=0.5, site_name="s")
    finally:
        rpc.close()
    assert "reply-to" not in dtrs.requests[0]["headers"]


def test_a_service_answering_both_ways_is_heard_once_per_call(amqp_url, names):
    both = DashiService(amqp_url, names.sysname, "both", _ops(), also_standard=True).start()
    rpc = _client(amqp_url, names, dashi_replies=True)
    try:
        # every call's second answer arrives late and must not be taken by the next call
        results = [rpc.call("both", "describe_site", site_name=f"s{i}") for i in range(5)]
    finally:
        rpc.close()
        both.stop()
    assert results == [{"name": f"s{i}"} for i in range(5)]
