"""The simulated provisioner service against a real EPUM facade, both on a real RabbitMQ."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

from epum.management import EPUManagement
from epum.messaging import (
    Dispatcher,
    EPUMOperations,
    OUAgentClient,
    ProvisionerClient,
    RpcClient,
    RpcServer,
)
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from epum.sim.agents import agent_address
from epum.sim.cloud import Delays
from epum.sim.provisioner import SimProvisionerService, main
from epum.sim.stubs import SimDTRS, SimNotifier
from epum.states import InstanceHealthState, InstanceState
from tests import rabbit
from tests.kit import wait_until
from tests.rabbit import running

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names

EPUM_SERVICE = "epum_sim_test"


#: How long the simulated instances may take to come and go over the wire.
SIM_WAIT = 15.0


@pytest.fixture
def rpc(amqp_url: str, names: Names) -> Iterator[RpcClient]:
    conn = make_connection(amqp_url, name=f"{names.sysname}-epum-client")
    client = RpcClient(conn, names, EPUM_SERVICE, timeout=5)
    yield client
    client.close()


@pytest.fixture
def epum(amqp_url: str, names: Names, rpc: RpcClient) -> Iterator[EPUManagement]:
    """A facade in external-decide mode, served on the broker, talking to 'provisioner'."""
    facade = EPUManagement(
        {"_external_decide_invocations": True, "service_name": EPUM_SERVICE},
        SimNotifier(time.time),
        ProvisionerClient(rpc),
        OUAgentClient(rpc),
        SimDTRS(),
    )
    facade.initialize()
    server = RpcServer(
        make_connection(amqp_url, name=f"{names.sysname}-epum"),
        names,
        EPUM_SERVICE,
        Dispatcher(EPUMOperations(facade).table()),
        poll_interval=0.1,
    )
    with running(server):
        yield facade
    server.connection.release()
    facade.shutdown()


def records(epum: EPUManagement) -> list[dict]:
    described = epum.msg_describe_domain("owner", "dom")
    return described["instances"] if described else []


def test_epum_brings_a_domain_up_and_down_through_the_simulated_service(amqp_url, names, epum, rpc):
    service = SimProvisionerService(
        amqp_url,
        names.sysname,
        epum_service=EPUM_SERVICE,
        delays=Delays(pending=0.1, started=0.1, running=0.1, terminated=0.1),
        heartbeat_interval=0.3,
        tick=0.05,
    )
    with service:
        epum.msg_add_domain_definition(
            "d", {"general": {"engine_class": "simplest"}, "engine_conf": {"epuworker_type": "dt"}}
        )
        epum.msg_add_domain(
            "owner",
            "dom",
            "d",
            {"engine_conf": {"preserve_n": 2}, "health": {"monitor_health": True}},
        )
        epum._run_decisions()

        def up() -> bool:
            got = records(epum)
            return len(got) == 2 and all(
                r["state"] == InstanceState.RUNNING and r["health"] == InstanceHealthState.OK
                for r in got
            )

        wait_until(up, SIM_WAIT, lambda: f"two RUNNING, OK instances: {records(epum)}")
        got = records(epum)
        assert all(r["public_ip"] and r["iaas_id"] for r in got)
        assert {r["agent_address"] for r in got} == {agent_address(r["instance_id"]) for r in got}
        requests = service.cloud.requests
        assert {r["caller"] for r in requests} == {"owner"}
        assert all(r["vars"]["heartbeat_dest"] == EPUM_SERVICE for r in requests)

        described = ProvisionerClient(rpc).describe_nodes()
        assert sorted(d["node_id"] for d in described) == sorted(r["instance_id"] for r in got)

        epum.msg_remove_domain("owner", "dom")

        def gone() -> bool:
            epum._run_decisions()
            return epum.store.get_domain("owner", "dom") is None

        wait_until(gone, SIM_WAIT)
        assert {n.state for n in service.cloud.nodes()} == {InstanceState.TERMINATED}


def test_failed_instance_is_replaced_over_the_wire(amqp_url, names, epum):
    service = SimProvisionerService(
        amqp_url,
        names.sysname,
        epum_service=EPUM_SERVICE,
        delays=Delays(pending=0.05, started=0.05, running=0.05, terminated=0.05),
        tick=0.05,
    )
    with service:
        epum.msg_add_domain_definition("d", {"general": {"engine_class": "simplest"}})
        epum.msg_add_domain("owner", "dom", "d", {"engine_conf": {"preserve_n": 1}})
        epum._run_decisions()
        wait_until(lambda: len(service.cloud.nodes(InstanceState.RUNNING)) == 1, SIM_WAIT)
        victim = service.cloud.nodes(InstanceState.RUNNING)[0].instance_id
        service.cloud.fail(victim)
        wait_until(
            lambda: any(
                r["instance_id"] == victim and r["state"] == InstanceState.FAILED
                for r in records(epum)
            ),
            SIM_WAIT,
        )
        epum._run_decisions()
        wait_until(lambda: len(service.cloud.nodes(InstanceState.RUNNING)) == 1, SIM_WAIT)
        assert service.cloud.nodes(InstanceState.RUNNING)[0].instance_id != victim


def test_main_serves_until_stopped(amqp_url, names):
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            main(["--amqp-url", amqp_url, "--sysname", names.sysname, "--tick", "0.05"], stop)
        )
    )
    thread.start()
    try:
        rpc = RpcClient(make_connection(amqp_url), names, "tester", timeout=5)
        try:
            wait_until(lambda: _answers(rpc), SIM_WAIT)
        finally:
            rpc.close()
    finally:
        stop.set()
        thread.join(15)
    assert result == [0]


def _answers(rpc: RpcClient) -> bool:
    try:
        return ProvisionerClient(rpc).describe_nodes() == []
    except Exception:
        return False


def _queue_exists(amqp_url: str, name: str) -> bool:
    with make_connection(amqp_url) as conn:
        channel = conn.channel()
        try:
            channel.queue_declare(name, passive=True)
        except conn.channel_errors:
            return False
        finally:
            with contextlib.suppress(Exception):
                channel.close()
        return True


def test_agents_consume_their_own_queues_and_answer_dump_state(amqp_url, names, epum, rpc):
    service = SimProvisionerService(
        amqp_url,
        names.sysname,
        epum_service=EPUM_SERVICE,
        delays=Delays(pending=0.05, started=0.05, running=0.05, terminated=0.05),
        heartbeat_interval=3600.0,  # one heartbeat when running; later ones only when asked
        tick=0.05,
    )
    with service:
        assert service.agent_queues is not None and service.agents is not None
        epum.msg_add_domain_definition("d", {"general": {"engine_class": "simplest"}})
        epum.msg_add_domain("owner", "dom", "d", {"engine_conf": {"preserve_n": 1}})
        epum._run_decisions()
        wait_until(lambda: len(service.cloud.nodes(InstanceState.RUNNING)) == 1, SIM_WAIT)
        node = service.cloud.nodes(InstanceState.RUNNING)[0].instance_id
        address = agent_address(node)
        wait_until(lambda: address in service.agent_queues.consuming, SIM_WAIT)
        assert _queue_exists(amqp_url, names.qualify(address))

        def beats() -> int:
            return sum(b.address == address for b in service.agents.beats)

        wait_until(lambda: beats() == 1, SIM_WAIT, "the first heartbeat")
        OUAgentClient(rpc).dump_state(address, mock_timestamp=1.0)  # over AMQP, as the doctor
        wait_until(lambda: beats() == 2, SIM_WAIT, "a heartbeat in answer to dump_state")

        epum.msg_remove_domain("owner", "dom")

        def gone() -> bool:
            epum._run_decisions()
            return epum.store.get_domain("owner", "dom") is None

        wait_until(gone, SIM_WAIT)
        wait_until(lambda: address not in service.agent_queues.consuming, SIM_WAIT)
        wait_until(lambda: not _queue_exists(amqp_url, names.qualify(address)), SIM_WAIT)
    assert beats() == 2
