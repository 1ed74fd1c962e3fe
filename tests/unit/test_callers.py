"""The caller policy: with trust_user_id the broker-validated user is the caller."""

from __future__ import annotations

import pytest

from epum.errors import BadRequestError, NotAuthorizedError
from epum.messaging.callers import CallerPolicy
from epum.settings import settings_from_dict

POLICY = CallerPolicy(
    trust_user_id=True,
    trusted_users=frozenset({"pd"}),
    provisioner_users=frozenset({"prov"}),
    agent_users=frozenset({"agents"}),
)


def test_without_trust_every_request_passes_unchanged():
    policy = CallerPolicy()
    args = {"domain_id": "d", "caller": "anyone"}
    assert policy.admit("describe_domain", args, None) == args
    assert policy.admit("instance_info", {"record": {}}, "alice") == {"record": {}}


def test_a_domain_op_acts_for_the_broker_user():
    assert POLICY.admit("list_domains", {}, "alice") == {"caller": "alice"}
    assert POLICY.admit("describe_domain", {"domain_id": "d", "caller": "alice"}, "alice") == {
        "domain_id": "d",
        "caller": "alice",
    }


def test_a_domain_op_for_someone_else_is_refused():
    with pytest.raises(NotAuthorizedError, match="'bob' may not act for caller 'alice'"):
        POLICY.admit("describe_domain", {"domain_id": "d", "caller": "alice"}, "bob")


def test_a_trusted_user_acts_for_any_caller():
    args = {"domain_id": "d", "caller": "alice"}
    assert POLICY.admit("describe_domain", args, "pd") == args


def test_reports_only_from_their_users():
    assert POLICY.admit("instance_info", {"record": {}}, "prov") == {"record": {}}
    assert POLICY.admit("ou_heartbeat", {"heartbeat": {}}, "agents") == {"heartbeat": {}}
    with pytest.raises(NotAuthorizedError, match="provisioner_users"):
        POLICY.admit("instance_info", {"record": {}}, "alice")
    with pytest.raises(NotAuthorizedError, match="agent_users"):
        POLICY.admit("ou_heartbeat", {"heartbeat": {}}, "prov")
    with pytest.raises(NotAuthorizedError):  # a trusted user does not report for others
        POLICY.admit("instance_info", {"record": {}}, "pd")


def test_definitions_are_open_to_authenticated_users():
    assert POLICY.admit("list_domain_definitions", {}, "alice") == {}


def test_a_request_without_user_id_is_refused_and_travels_as_bad_request():
    with pytest.raises(NotAuthorizedError, match="no user_id") as caught:
        POLICY.admit("list_domains", {}, None)
    assert isinstance(caught.value, BadRequestError)


def test_the_policy_comes_from_server_amqp():
    amqp = settings_from_dict(
        {
            "server": {
                "amqp": {
                    "trust_user_id": True,
                    "trusted_users": ["pd"],
                    "provisioner_users": ["prov"],
                    "agent_users": ["agents"],
                }
            }
        }
    ).amqp
    assert CallerPolicy.from_settings(amqp) == POLICY
    assert CallerPolicy.from_settings(settings_from_dict({}).amqp) == CallerPolicy()
