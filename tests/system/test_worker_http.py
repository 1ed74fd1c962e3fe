"""A worker process's /healthz, /readyz and /metrics, read over HTTP.

The worker runs on its own ZooKeeper server, which the test stops and
starts again: readiness goes false while ZooKeeper is gone, true once it
is back, and health (the consumer loop) holds throughout.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import yaml

from epum.messaging.names import Names
from tests import rabbit
from tests.kit import wait_until
from tests.system.test_worker import epumctl, finish, launch, write_config
from tests.zk_server import ZooKeeperServer, free_port

pytestmark = [pytest.mark.rabbitmq, pytest.mark.zookeeper]

amqp_url = rabbit.amqp_url
names = rabbit.names


@pytest.fixture
def own_zookeeper() -> Iterator[ZooKeeperServer]:
    server = ZooKeeperServer(tick_time_ms=500)
    server.start()
    try:
        yield server
    finally:
        server.close()


def get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of ``GET http://127.0.0.1:port/path``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(metrics: str, name: str) -> float | None:
    """The value of the sample written exactly ``name`` (with its labels), or None."""
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_health_readiness_and_metrics_of_a_worker(amqp_url, names: Names, own_zookeeper, tmp_path):
    port = free_port()
    base = write_config(tmp_path / "epum.yaml", names, f"{names.sysname}-w1")
    extra = tmp_path / "http.yaml"
    extra.write_text(
        yaml.safe_dump(
            {
                "server": {
                    "http": {"port": port},
                    "zookeeper": {
                        "hosts": own_zookeeper.hosts,
                        "path": f"/{names.sysname}",
                        "timeout": 4,
                    },
                },
                "epumanagement": {"persistence_type": "zookeeper"},
            }
        )
    )
    daemon = launch(amqp_url, names, [base, extra], f"{names.sysname}-w1")
    try:
        assert wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=10)
        status, body = get(port, "/readyz")
        assert json.loads(body) == {
            "ok": True,
            "checks": {"broker": True, "initial_state": True, "zookeeper": True},
        }
        assert get(port, "/healthz") == (200, '{"checks": {"consumer": true}, "ok": true}\n')
        assert get(port, "/nope")[0] == 404

        assert daemon.client.list_domains() == ["dom1"]
        status, metrics = get(port, "/metrics")
        assert status == 200
        assert sample(metrics, 'epum_rpc_requests_total{op="list_domains"}') >= 1.0
        assert sample(metrics, 'epum_rpc_duration_seconds_count{op="list_domains"}') >= 1.0
        assert sample(metrics, "epum_rpc_in_hand") == 0.0
        assert sample(metrics, 'epum_rpc_messages_total{event="dead_lettered"}') == 0.0
        assert sample(metrics, "epum_domains") == 1.0
        assert sample(metrics, "epum_zookeeper_connected") == 1.0
        assert wait_until(
            lambda: sample(get(port, "/metrics")[1], 'epum_leader{role="decider"}') == 1.0,
            timeout=10,
        )
        assert "epum_decider_pass_seconds_count" in metrics
        assert "epum_launches_total" in metrics

        # epumctl status reads the leaders from the same ZooKeeper store
        status = epumctl(amqp_url, names, "--config", str(extra), "status", "-o", "json")
        assert status.returncode == 0, status.stderr
        leaders = json.loads(status.stdout)["leaders"]
        assert sorted(leaders) == ["decider", "doctor", "reaper"]
        assert all(who.startswith(f"{names.sysname}-w1@") for who in leaders.values()), leaders
        text = epumctl(amqp_url, names, "--config", str(extra), "status").stdout
        assert f"Leader:   decider = {names.sysname}-w1@" in text

        own_zookeeper.stop()
        assert wait_until(lambda: get(port, "/readyz")[0] == 503, timeout=15)
        checks = json.loads(get(port, "/readyz")[1])["checks"]
        assert checks == {"broker": True, "initial_state": True, "zookeeper": False}
        assert get(port, "/healthz")[0] == 200  # alive, only not ready
        assert sample(get(port, "/metrics")[1], "epum_zookeeper_connected") == 0.0

        own_zookeeper.start()
        assert wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=30)
        code, _, log = daemon.stop()
        assert code == 0
        assert f"health and metrics on http://127.0.0.1:{port}/" in log
    finally:
        finish(daemon)
