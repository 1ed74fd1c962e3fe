"""End to end on real servers: sensor domains scale on readings the collector fetches.

The facade runs its elected decider (memory store), which runs the sensor
collector in its term; a cloud thread brings every requested instance to
RUNNING and confirms terminations.  The rabbitmq case's simulated workers
(``tests.queue_workers``) drain the work queue, one per running instance.
Sample periods are short through the
test-only ``server.sensors.min_sample_period`` override.
"""

from __future__ import annotations

import statistics
import threading
import time

import pytest
from kombu import Connection, Queue

from epum import EPUManagement
from epum.settings import settings_from_dict
from epum.sim.load import GAUGE_NAME, LABEL, SimulatedLoad
from epum.states import InstanceState
from tests import rabbit
from tests.fakes import FakeCloud, FakeDTRS, FakeNotifier, FakeProvisioner
from tests.kit import wait_until
from tests.prom_server import PrometheusServer
from tests.queue_workers import QueueWorkers
from tests.rabbit_management import ensure_management

amqp_url = rabbit.amqp_url

LAUNCH = {"deployable_type": "dt", "iaas_site": "site-a", "iaas_allocation": "small"}
TIMEOUT = 60.0
#: The collector's per-query timeout (s): a decider pass that waited on a
#: metrics server that stopped answering would take about this long.
QUERY_TIMEOUT = 2.0


class PassTimes:
    """Stands in for statsd: keeps the decider's full-pass times (ms)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.passes: list[float] = []

    def gauge(self, name, value) -> None:
        """Ignored."""

    def timing(self, name, ms) -> None:
        """Keep a pass time."""
        if name == "decider.pass":
            with self.lock:
                self.passes.append(ms)

    def since(self, n: int) -> list[float]:
        with self.lock:
            return list(self.passes[n:])

    def count(self) -> int:
        with self.lock:
            return len(self.passes)


class World:
    """The facade, the cloud thread and the simulated load of the "hot" domain."""

    def __init__(self, load: SimulatedLoad | None = None):
        self.load = load
        #: Called with the running instances of "hot" at every cloud tick.
        self.on_running = load.update if load is not None else None
        tree = settings_from_dict(
            {
                "epumanagement": {"decider_loop_interval": 0.3, "doctor_loop_interval": 60},
                "server": {"sensors": {"min_sample_period": 0.5, "query_timeout": QUERY_TIMEOUT}},
            }
        )
        self.provisioner = FakeProvisioner()
        self.epum = EPUManagement(
            tree, FakeNotifier(), self.provisioner, None, FakeDTRS(sites=["site-a"])
        )
        self.cloud = FakeCloud(self.epum, self.provisioner)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-cloud", daemon=True)

    def start(self) -> None:
        self.epum.initialize()
        self.times = PassTimes()
        self.epum.decider.statsd = self.times
        self.epum.msg_add_domain_definition("sensor", {"general": {"engine_class": "sensor"}})
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.cloud.run_all()
                self.cloud.terminate_all()
                if self.on_running is not None:
                    self.on_running(self.running("hot"))
            except Exception:  # the facade may be shutting down
                pass

    def running(self, domain_id: str) -> list[str]:
        domain = self.epum.store.get_domain("alice", domain_id)
        if domain is None:
            return []
        return [i.instance_id for i in domain.get_instances() if i.state == InstanceState.RUNNING]

    def newest_reading(self, domain_id: str) -> float:
        """The time of the newest reading stored in the domain's records."""
        domain = self.epum.store.get_domain("alice", domain_id)
        times = [
            reading.get("time", 0.0)
            for i in domain.get_instances()
            for reading in (i.sensor_data or {}).values()
            if isinstance(reading, dict)
        ]
        return max(times, default=0.0)

    def wait_size(self, domain_id: str, n: int, timeout: float = TIMEOUT) -> None:
        wait_until(lambda: len(self.running(domain_id)) == n, timeout, what=f"{domain_id} at {n}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.epum.shutdown()


def hot_conf(prom_url: str, **extra) -> dict:
    return {
        "minimum_vms": 1,
        "maximum_vms": 4,
        "metric": "load",
        "sample_function": "Average",
        "scale_up_threshold": 1.5,
        "scale_up_n_vms": 1,
        "scale_down_threshold": 0.5,
        "scale_down_n_vms": 1,
        "sensor_type": "prometheus",
        "prometheus_url": prom_url,
        "prometheus_instance_query": GAUGE_NAME,
        "prometheus_instance_label": LABEL,
        "prometheus_instance_match": "instance_id",
        "sample_period": 1,
        "sensor_stale_periods": 1,
        **LAUNCH,
        **extra,
    }


@pytest.fixture
def world():
    load = SimulatedLoad()
    port = load.serve()
    prom = PrometheusServer([f"127.0.0.1:{port}"])
    w = World(load)
    try:
        prom.start()
        w.prom = prom
        w.start()
        yield w
    finally:
        w.close()
        prom.stop()
        load.close()


@pytest.mark.prometheus
def test_a_prometheus_domain_grows_on_a_gauge_shrinks_and_holds_or_falls_back(world):
    epum = world.epum
    steady = {"minimum_vms": 2, "maximum_vms": 2, **LAUNCH}
    epum.msg_add_domain("alice", "steady", "sensor", {"engine_conf": steady})
    epum.msg_add_domain("alice", "hot", "sensor", {"engine_conf": hot_conf(world.prom.url)})
    world.wait_size("hot", 1)
    world.wait_size("steady", 2)

    world.load.set_demand(6)  # 6 over n instances: above 1.5 until n = 4
    world.wait_size("hot", 4)
    world.load.set_demand(0)
    world.wait_size("hot", 1)
    world.load.set_demand(2)  # 2 on one instance: grows to 2 (load 1.0)
    world.wait_size("hot", 2)
    before = world.times.since(0)

    # Prometheus stops answering (paused: its port takes connections, no answer
    # comes, so every query runs into the timeout): the failure is described,
    # the size holds
    mark = world.times.count()
    world.prom.pause()

    def missing():
        return epum.msg_describe_domain("alice", "hot")["sensor_data"].get("_missing")

    wait_until(missing, TIMEOUT, what="the failure in describe_domain")
    assert missing()["source"] == "prometheus" and missing()["since"] > 0
    assert "within" in missing()["error"] or "timed out" in missing()["error"]
    world.load.set_demand(0)  # nobody can see it now
    # every stored reading goes stale (older than 1 x the 10 s minimum period)
    wait_until(lambda: world.newest_reading("hot") < time.time() - 10.5, 20, what="stale readings")
    wait_until(lambda: world.times.count() > mark + 5, TIMEOUT, what="more passes")
    assert len(world.running("hot")) == 2  # hold
    assert len(world.running("steady")) == 2
    during = world.times.since(mark)

    # fallback, Prometheus now gone altogether: the domain aims for fallback_size
    world.prom.stop()
    conf = hot_conf(world.prom.url, sensor_error_policy="fallback", fallback_size=3)
    epum.msg_reconfigure_domain("alice", "hot", {"engine_conf": conf})
    world.wait_size("hot", 3)
    assert len(world.running("steady")) == 2

    print(
        f"decider pass (ms): median {statistics.median(before):.2f} (max {max(before):.2f},"
        f" {len(before)} passes) with Prometheus answering;"
        f" median {statistics.median(during):.2f} (max {max(during):.2f}, {len(during)} passes)"
        f" while it answered nothing (query timeout {QUERY_TIMEOUT:g} s)"
    )
    # a pass that waited on one query would take the query timeout
    assert max(during) < QUERY_TIMEOUT * 1000 / 2


@pytest.mark.rabbitmq
@pytest.mark.rabbitmq_management
def test_a_rabbitmq_domain_grows_on_a_backlog_and_shrinks_when_workers_drain_it(amqp_url):
    url = ensure_management()
    name = f"{rabbit.new_sysname()}.work"
    queue = Queue(name, durable=False, auto_delete=False)
    workers = QueueWorkers(amqp_url, name, work_time=0.4)
    world = World()
    world.on_running = workers.update
    try:
        with Connection(amqp_url) as conn:
            queue.bind(conn.default_channel).declare()
        world.start()
        conf = {
            "minimum_vms": 1,
            "maximum_vms": 3,
            "metric": "backlog",
            "sample_function": "Average",
            "scale_up_threshold": 5,
            "scale_up_n_vms": 1,
            "scale_down_threshold": 1,
            "scale_down_n_vms": 1,
            "sensor_type": "rabbitmq",
            "rabbitmq_queue": name,
            "rabbitmq_management_url": url,
            "sample_period": 1,
            **LAUNCH,
        }
        world.epum.msg_add_domain("alice", "hot", "sensor", {"engine_conf": conf})
        world.wait_size("hot", 1)
        with Connection(amqp_url) as conn, conn.Producer() as producer:
            for n in range(60):
                producer.publish({"job": n}, routing_key=name, retry=True)
        world.wait_size("hot", 3)
        world.wait_size("hot", 1, timeout=90)
        assert workers.done == 60
        print(f"rabbitmq domain: grew to 3 and back to 1; {workers.done} jobs drained")
    finally:
        workers.close()
        world.close()
        with Connection(amqp_url) as clean:
            queue.bind(clean.default_channel).delete()
