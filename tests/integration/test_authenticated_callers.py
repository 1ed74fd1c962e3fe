"""Authenticated callers on a real broker: users made for the test (and
deleted after it) talk to an RpcServer with ``trust_user_id`` on.

RabbitMQ itself refuses a ``user_id`` that is not the connection's user,
which is what makes the property trustworthy; the rest is epum's policy.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from urllib.parse import quote, urlsplit

import pytest
from kombu import Connection

from epum import EPUManagement
from epum.errors import BadRequestError, NotFoundError
from epum.messaging import Dispatcher, EPUManagementClient, EPUMOperations, RpcClient, RpcServer
from epum.messaging.callers import CallerPolicy
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from tests import rabbit
from tests.fakes import FakeDTRS, FakeNotifier, FakeProvisioner

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names

ROLES = ("alice", "bob", "pd", "prov", "agent")
SERVICE = "epu_management_service"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def broker_users(
    amqp_url: str, roles: Iterable[str], password: str | None = None
) -> Iterator[dict[str, tuple[str, str]]]:
    """role -> (broker user name, URL logging in as it): users with a unique test
    name and full rights on vhost ``/``, deleted at the end of the block."""
    prefix = f"epumtest-{uuid.uuid4().hex[:10]}"
    base = urlsplit(amqp_url)
    made: dict[str, tuple[str, str]] = {}
    try:
        for role in roles:
            user, secret = f"{prefix}-{role}", password or uuid.uuid4().hex
            rabbitmqctl("add_user", user, secret)
            made[role] = (user, "")
            rabbitmqctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
            host = f"{base.hostname}:{base.port or 5672}"
            made[role] = (user, f"amqp://{quote(user)}:{quote(secret, safe='')}@{host}//")
        yield made
    finally:
        for user, _ in made.values():
            rabbitmqctl("delete_user", user)


@pytest.fixture(scope="module")
def users(amqp_url: str) -> Iterator[dict[str, tuple[str, str]]]:
    """role -> (broker user name, URL logging in as it), for the module; deleted after."""
    with broker_users(amqp_url, ROLES) as made:
        yield made


@pytest.fixture
def served(amqp_url: str, names: Names, users) -> Iterator[EPUManagement]:
    facade = EPUManagement(
        {"_external_decide_invocations": True}, FakeNotifier(), FakeProvisioner(), None, FakeDTRS()
    )
    facade.initialize()
    policy = CallerPolicy(
        trust_user_id=True,
        trusted_users=frozenset({users["pd"][0]}),
        provisioner_users=frozenset({users["prov"][0]}),
        agent_users=frozenset({users["agent"][0]}),
    )
    server = RpcServer(
        make_connection(amqp_url),
        names,
        SERVICE,
        Dispatcher(EPUMOperations(facade).table()),
        callers=policy,
    )
    with rabbit.running(server):
        yield facade
    facade.shutdown()


@pytest.fixture
def clients(names: Names, users) -> Iterator[dict[str, tuple[RpcClient, EPUManagementClient]]]:
    made = {}
    for role, (_, url) in users.items():
        rpc = RpcClient(make_connection(url), names, f"tester-{role}", timeout=10)
        made[role] = (rpc, EPUManagementClient(rpc))
    yield made
    for rpc, _ in made.values():
        rpc.close()


def test_the_broker_user_is_the_caller(served, clients, users):
    alice = clients["alice"][1]
    bob = clients["bob"][1]
    alice.add_domain_definition("simple", {"general": {"engine_class": "simplest"}})
    alice.add_domain("pool", "simple", {"engine_conf": {"preserve_n": 0}})
    assert alice.list_domains() == ["pool"]
    assert served.msg_list_domains(users["alice"][0]) == ["pool"]
    assert bob.list_domains() == []
    with pytest.raises(NotFoundError):
        bob.describe_domain("pool")
    with pytest.raises(BadRequestError, match="may not act for caller"):
        bob.describe_domain("pool", caller=users["alice"][0])
    with pytest.raises(BadRequestError, match="may not act for caller"):
        bob.remove_domain("pool", caller=users["alice"][0])
    assert served.msg_list_domains(users["alice"][0]) == ["pool"]


def test_a_trusted_service_acts_for_any_caller(served, clients, users):
    clients["alice"][1].add_domain_definition("simple", {"general": {}})
    clients["alice"][1].add_domain("pool", "simple", {"engine_conf": {"preserve_n": 0}})
    pd = clients["pd"][1]
    assert pd.describe_domain("pool", caller=users["alice"][0])["name"] == "pool"


def test_reports_are_taken_only_from_their_users(served, clients):
    record = {"node_id": "nobody", "state": "600-RUNNING"}
    heartbeat = {"node_id": "nobody", "state": "OK"}
    # a call (not the usual fire) so the verdict comes back
    assert clients["prov"][0].call(SERVICE, "instance_info", record=record) is None
    assert clients["agent"][0].call(SERVICE, "ou_heartbeat", heartbeat=heartbeat) is None
    with pytest.raises(BadRequestError, match="provisioner_users"):
        clients["alice"][0].call(SERVICE, "instance_info", record=record)
    with pytest.raises(BadRequestError, match="agent_users"):
        clients["prov"][0].call(SERVICE, "ou_heartbeat", heartbeat=heartbeat)


def test_the_broker_refuses_a_user_id_that_is_not_the_connections(served, users, names):
    with Connection(users["bob"][1]) as conn:
        channel = conn.channel()
        producer = conn.Producer(channel)
        producer.publish(
            {"op": "list_domains", "args": {}},
            exchange=names.exchange,
            routing_key=names.qualify(SERVICE),
            user_id=users["alice"][0],
        )
        with pytest.raises(conn.channel_errors, match="user_id"):
            channel.queue_declare(queue="", exclusive=True)  # the broker's answer comes first


def test_without_trust_any_client_names_any_caller(amqp_url, names, users):
    facade = EPUManagement(
        {"_external_decide_invocations": True}, FakeNotifier(), FakeProvisioner(), None, FakeDTRS()
    )
    facade.initialize()
    server = RpcServer(
        make_connection(amqp_url), names, SERVICE, Dispatcher(EPUMOperations(facade).table())
    )
    rpc = RpcClient(make_connection(users["bob"][1]), names, "tester", timeout=10)
    try:
        with rabbit.running(server):
            client = EPUManagementClient(rpc)
            client.add_domain_definition("simple", {"general": {}})
            client.add_domain("pool", "simple", {"engine_conf": {"preserve_n": 0}}, caller="carol")
            assert facade.msg_list_domains("carol") == ["pool"]
    finally:
        rpc.close()
        facade.shutdown()
