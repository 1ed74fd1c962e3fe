"""The service clients over a real RabbitMQ: every EPUM op against the real facade,
and what epum sends to the provisioner, the DTRS, agents and subscribers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from epum.errors import BadRequestError, NotFoundError, WriteConflictError
from epum.management import EPUManagement
from epum.messaging import (
    Dispatcher,
    DTRSClient,
    EPUManagementClient,
    EPUMOperations,
    OUAgentClient,
    ProvisionerClient,
    RpcClient,
    RpcServer,
    SubscriberNotifier,
)
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from epum.states import InstanceHealthState, InstanceState
from tests import rabbit
from tests.kit import wait_until
from tests.rabbit import running

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names

EPUM = "epu_management_service"


class Recorder:
    """A fake remote service: records each op with its args and sender."""

    def __init__(self, ops: dict[str, object]):
        self.ops = ops
        self.seen: list[tuple[str, dict]] = []
        self.cond = threading.Condition()

    def table(self) -> dict:
        def handler_for(op, result):
            def handler(**args):
                with self.cond:
                    self.seen.append((op, args))
                    self.cond.notify_all()
                if isinstance(result, Exception):
                    raise result
                return result

            return handler

        return {op: handler_for(op, result) for op, result in self.ops.items()}

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, dict]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.seen) >= count, timeout), self.seen
            return list(self.seen)


@pytest.fixture
def rpc(amqp_url: str, names: Names) -> Iterator[RpcClient]:
    client = RpcClient(make_connection(amqp_url), names, EPUM, timeout=5)
    yield client
    client.close()


@pytest.fixture
def serve(amqp_url: str, names: Names) -> Iterator:
    """serve(service_name, table): an RpcServer running in a thread for the test."""
    with_stack: list = []

    def start(service: str, table: dict) -> RpcServer:
        server = RpcServer(
            make_connection(amqp_url), names, service, Dispatcher(table), poll_interval=0.1
        )
        ctx = running(server)
        ctx.__enter__()
        with_stack.append((ctx, server))
        return server

    yield start
    for ctx, server in reversed(with_stack):
        ctx.__exit__(None, None, None)
        server.connection.release()


@pytest.fixture
def provisioner(serve) -> Recorder:
    rec = Recorder(
        {
            "provision": None,
            "terminate_nodes": None,
            "dump_state": None,
            "describe_nodes": [{"node_id": "n1"}],
        }
    )
    serve("provisioner", rec.table())
    return rec


@pytest.fixture
def subscriber(serve) -> Recorder:
    rec = Recorder({"node_changed": None})
    serve("subscriber", rec.table())
    return rec


@pytest.fixture
def facade(rpc: RpcClient, provisioner, subscriber) -> Iterator[EPUManagement]:
    epum = EPUManagement(
        {"_external_decide_invocations": True, "service_name": EPUM},
        SubscriberNotifier(rpc),
        ProvisionerClient(rpc),
        OUAgentClient(rpc),
        DTRSClient(rpc),
    )
    epum.initialize()
    yield epum
    epum.shutdown()


@pytest.fixture
def epum_client(serve, facade, rpc) -> EPUManagementClient:
    serve(EPUM, EPUMOperations(facade, default_user="default-owner").table())
    return EPUManagementClient(rpc)


DEFINITION = {
    "general": {"engine_class": "simplest"},
    "engine_conf": {"epuworker_type": "worker-dt", "force_site": "site1"},
    "health": {"monitor_health": True},
}


def test_definition_ops_round_trip(epum_client):
    c = epum_client
    assert c.list_domain_definitions() == []
    assert c.add_domain_definition("def1", DEFINITION) is None
    with pytest.raises(WriteConflictError):
        c.add_domain_definition("def1", DEFINITION)
    assert c.list_domain_definitions() == ["def1"]
    described = c.describe_domain_definition("def1")
    assert described["name"] == "def1"
    assert described["definition"]["engine_conf"]["epuworker_type"] == "worker-dt"
    c.update_domain_definition("def1", {**DEFINITION, "engine_conf": {"epuworker_type": "x"}})
    assert c.describe_domain_definition("def1")["definition"]["engine_conf"] == {
        "epuworker_type": "x"
    }
    c.remove_domain_definition("def1")
    assert c.list_domain_definitions() == []
    with pytest.raises(NotFoundError):
        c.remove_domain_definition("def1")
    with pytest.raises(NotFoundError):  # as the original: clients create on this error
        c.describe_domain_definition("def1")


def test_domain_ops_round_trip_per_caller(epum_client, facade):
    c = epum_client
    c.add_domain_definition("def1", DEFINITION)
    c.add_domain("dom1", "def1", {"engine_conf": {"preserve_n": 0}}, caller="alice")
    c.add_domain("dom2", "def1", {"engine_conf": {"preserve_n": 0}})  # the default owner
    assert c.list_domains(caller="alice") == ["dom1"]
    assert c.list_domains() == ["dom2"]
    assert c.list_domains(caller="bob") == []
    described = c.describe_domain("dom1", caller="alice")
    assert described["name"] == "dom1"
    assert described["config"]["engine_conf"]["preserve_n"] == 0
    assert described["instances"] == []
    with pytest.raises(NotFoundError):  # another caller's domain: the same error as none
        c.describe_domain("dom1", caller="bob")
    with pytest.raises(NotFoundError):
        c.describe_domain("nope", caller="alice")
    c.reconfigure_domain("dom1", {"engine_conf": {"preserve_n": 0, "extra": 1}}, caller="alice")
    assert c.describe_domain("dom1", caller="alice")["config"]["engine_conf"]["extra"] == 1
    c.subscribe_domain("dom1", "subscriber", "node_changed", caller="alice")
    c.unsubscribe_domain("dom1", "subscriber", caller="alice")
    with pytest.raises(WriteConflictError):
        c.add_domain("dom1", "def1", {"engine_conf": {"preserve_n": 0}}, caller="alice")
    with pytest.raises(BadRequestError):
        c.add_domain("dom3", "def1", {"engine_conf": {"preserve_n": -1}}, caller="alice")
    c.remove_domain("dom1", caller="alice")
    facade._run_decisions()
    assert wait_until(lambda: c.list_domains(caller="alice") == [])


def test_a_domain_lives_through_the_wire(epum_client, facade, provisioner, subscriber):
    """add_domain -> provision on the provisioner queue -> instance_info and heartbeat
    fired back -> describe_domain shows it, the subscriber hears of it."""
    c = epum_client
    c.add_domain_definition("def1", DEFINITION)
    c.add_domain(
        "dom1",
        "def1",
        {"engine_conf": {"preserve_n": 1}},
        subscriber_name="subscriber",
        subscriber_op="node_changed",
        caller="alice",
    )
    facade._run_decisions()
    op, args = provisioner.wait_for(1)[0]
    assert op == "provision"
    assert set(args) >= {"launch_id", "deployable_type", "instance_ids", "site", "vars", "caller"}
    assert args["deployable_type"] == "worker-dt" and args["site"] == "site1"
    assert args["caller"] == "alice"
    (node_id,) = args["instance_ids"]
    assert args["vars"]["heartbeat_dest"] == EPUM

    c.instance_info({"node_id": node_id, "state": InstanceState.RUNNING, "public_ip": "1.2.3.4"})
    _, note = subscriber.wait_for(1)[0]
    assert note == {
        "node_id": node_id,
        "state": InstanceState.RUNNING,
        "domain_id": "dom1",
        "properties": {"hostname": "1.2.3.4"},
    }
    c.ou_heartbeat({"node_id": node_id, "state": InstanceHealthState.OK})

    def healthy():
        (record,) = c.describe_domain("dom1", caller="alice")["instances"]
        return record["state"] == InstanceState.RUNNING and record["health"] == "OK"

    assert wait_until(healthy)


def test_domain_history_over_the_wire_per_caller(epum_client, facade, provisioner):
    c = epum_client
    c.add_domain_definition("def1", DEFINITION)
    c.add_domain("dom1", "def1", {"engine_conf": {"preserve_n": 1}}, caller="alice")
    assert c.describe_domain_history("dom1", caller="alice") == []
    facade._run_decisions()
    started, entry = c.describe_domain_history("dom1", caller="alice")
    assert started["event"] == "started"
    assert entry["kind"] == "decision"
    assert entry["actions"][0]["site"] == "site1" and entry["actions"][0]["count"] == 1
    assert c.describe_domain_history("dom1", since=entry["time"] + 1, caller="alice") == []
    assert c.describe_domain_history("dom1", limit=1, caller="alice") == [entry]
    assert c.describe_domain_history("dom1", since=started["time"], caller="alice") == [
        started,
        entry,
    ]
    with pytest.raises(NotFoundError):  # another caller's domain: the same error as none
        c.describe_domain_history("dom1", caller="bob")
    with pytest.raises(BadRequestError, match="limit"):
        c.describe_domain_history("dom1", limit=-2, caller="alice")


def test_provisioner_client_sends_the_protocol_args(rpc, provisioner):
    client = ProvisionerClient(rpc, timeout=5)
    client.provision("l1", ["i1"], "dt", "site1", allocation="small", vars={"a": 1}, caller="al")
    client.terminate_nodes(["i1", "i2"], caller="al")
    client.dump_state(["i1"], force_subscribe="epum")
    assert client.describe_nodes(["n1"], caller="al") == [{"node_id": "n1"}]
    seen = provisioner.wait_for(4)
    assert seen == [
        (
            "provision",
            {
                "launch_id": "l1",
                "deployable_type": "dt",
                "instance_ids": ["i1"],
                "site": "site1",
                "allocation": "small",
                "vars": {"a": 1},
                "caller": "al",
            },
        ),
        ("terminate_nodes", {"nodes": ["i1", "i2"], "caller": "al"}),
        ("dump_state", {"nodes": ["i1"], "force_subscribe": "epum"}),
        ("describe_nodes", {"nodes": ["n1"], "caller": "al"}),
    ]


def test_dtrs_client_calls_and_maps_errors(rpc, serve):
    dtrs = Recorder(
        {"describe_site": {"name": "site1"}, "describe_credentials": NotFoundError("no creds")}
    )
    serve("dtrs", dtrs.table())
    client = DTRSClient(rpc, timeout=5)
    assert client.describe_site("site1") == {"name": "site1"}
    with pytest.raises(NotFoundError, match="no creds"):
        client.describe_credentials("alice", "site1")
    assert dtrs.seen == [
        ("describe_site", {"site_name": "site1"}),
        ("describe_credentials", {"caller": "alice", "site_name": "site1"}),
    ]


def test_agent_and_notifier_fire_to_named_services(rpc, serve):
    agent = Recorder({"dump_state": None})
    serve("agent-1", agent.table())
    subscriber = Recorder({"node_changed": None})
    serve("subscriber", subscriber.table())
    OUAgentClient(rpc).dump_state("agent-1")
    OUAgentClient(rpc).dump_state("agent-1", mock_timestamp=12.5)
    SubscriberNotifier(rpc).notify_by_name("subscriber", "node_changed", {"node_id": "n1"})
    assert agent.wait_for(2) == [("dump_state", {}), ("dump_state", {"mock_timestamp": 12.5})]
    assert subscriber.wait_for(1) == [("node_changed", {"node_id": "n1"})]


def test_the_heartbeat_sender_is_the_agents_bare_name(amqp_url, names, serve, facade):
    """An agent's heartbeat comes from "<sysname>.<agent>"; epum keeps "<agent>"."""
    seen: list = []
    ops = EPUMOperations(facade, "x")
    original = facade.msg_heartbeat

    def spy(caller, content, timestamp=None):
        seen.append(caller)
        return original(caller, content, timestamp)

    facade.msg_heartbeat = spy
    serve(EPUM, ops.table())
    agent_rpc = RpcClient(make_connection(amqp_url), names, "agent-1", timeout=5)
    try:
        EPUManagementClient(agent_rpc).ou_heartbeat({"node_id": "unknown", "state": "OK"})
        assert wait_until(lambda: seen == ["agent-1"])
    finally:
        agent_rpc.close()
