"""The worker's metrics adapters and its HTTP endpoint, without servers."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest

from epum.config import load_config
from epum.errors import ConfigError
from epum.http_endpoint import HttpEndpoint, evaluate
from epum.telemetry import (
    CountingProvisioner,
    OpObserver,
    StateProbe,
    StatsdObserver,
    WorkerMetrics,
)


def value(metrics: WorkerMetrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    """One sample's value from the registry."""
    return metrics.registry.get_sample_value(name, labels or {})


class Recorder:
    """Records every call made on it (a statsd client or an OpMetrics)."""

    def __init__(self):
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, *args))


def test_measure_counts_requests_errors_latency_and_ingested_messages():
    metrics = WorkerMetrics()
    with metrics.measure("ou_heartbeat"):
        assert value(metrics, "epum_rpc_in_hand") == 1.0
    with pytest.raises(KeyError), metrics.measure("instance_info"):
        raise KeyError("boom")
    assert value(metrics, "epum_rpc_in_hand") == 0.0
    assert value(metrics, "epum_rpc_requests_total", {"op": "ou_heartbeat"}) == 1.0
    assert value(metrics, "epum_rpc_errors_total", {"op": "instance_info"}) == 1.0
    assert value(metrics, "epum_rpc_errors_total", {"op": "ou_heartbeat"}) is None
    assert value(metrics, "epum_rpc_duration_seconds_count", {"op": "instance_info"}) == 1.0
    assert value(metrics, "epum_heartbeats_total") == 1.0
    assert value(metrics, "epum_instance_reports_total") == 1.0


def test_the_op_observer_records_and_forwards_to_statsd_metrics():
    metrics, inner = WorkerMetrics(), Recorder()
    inner.measure = lambda op: contextlib.nullcontext(inner.calls.append(("m", op)))
    observer = OpObserver(metrics, inner)
    with observer.measure("list_domains"):
        pass
    observer.count("dead_lettered")
    observer.close()
    assert inner.calls == [("m", "list_domains"), ("count", "dead_lettered"), ("close",)]
    assert value(metrics, "epum_rpc_messages_total", {"event": "dead_lettered"}) == 1.0
    assert value(metrics, "epum_rpc_messages_total", {"event": "retried"}) == 0.0
    OpObserver(metrics).count("retried")  # without statsd, no forwarding
    assert value(metrics, "epum_rpc_messages_total", {"event": "retried"}) == 1.0


def test_the_statsd_observer_times_decider_passes_and_forwards():
    metrics, inner = WorkerMetrics(), Recorder()
    observer = StatsdObserver(metrics, inner)
    observer.gauge("domains.active", 3)
    observer.timing("decider.pass", 250.0)
    observer.timing("other", 1.0)
    observer.close()
    assert inner.calls[0] == ("gauge", "domains.active", 3)
    assert inner.calls[-1] == ("close",)
    assert value(metrics, "epum_decider_pass_seconds_count") == 1.0
    assert value(metrics, "epum_decider_pass_seconds_sum") == 0.25
    StatsdObserver(metrics).timing("decider.pass", 1.0)  # no inner client is fine
    assert value(metrics, "epum_decider_pass_seconds_count") == 2.0


def test_the_counting_provisioner_counts_launches_and_terminations():
    metrics, inner = WorkerMetrics(), Recorder()
    provisioner = CountingProvisioner(metrics, inner)
    provisioner.provision("l1", ["i1"], "dt", "site1", caller="ops")
    provisioner.terminate_nodes(["i1", "i2"], caller="ops")
    provisioner.dump_state(["i1"])
    assert [call[0] for call in inner.calls] == ["provision", "terminate_nodes", "dump_state"]
    assert value(metrics, "epum_launches_total") == 1.0
    assert value(metrics, "epum_terminations_total") == 2.0


def test_the_state_is_read_at_each_scrape():
    metrics = WorkerMetrics()
    records = [("600-RUNNING", "OK"), ("600-RUNNING", "OK"), ("400-PENDING", "UNKNOWN")]
    connected = [True]
    metrics.observe_state(
        StateProbe(
            domains=lambda: 2,
            instances=lambda: records,
            leading=lambda role: role == "doctor",
            zookeeper_connected=lambda: connected[0],
        )
    )
    state = {"state": "600-RUNNING", "health": "OK"}
    assert value(metrics, "epum_instances", state) == 2.0
    assert value(metrics, "epum_domains") == 2.0
    assert value(metrics, "epum_leader", {"role": "doctor"}) == 1.0
    assert value(metrics, "epum_leader", {"role": "decider"}) == 0.0
    assert value(metrics, "epum_zookeeper_connected") == 1.0
    records.append(("900-FAILED", "UNKNOWN"))
    connected[0] = False
    assert value(metrics, "epum_instances", {"state": "900-FAILED", "health": "UNKNOWN"}) == 1.0
    assert value(metrics, "epum_zookeeper_connected") == 0.0


def test_a_store_outage_leaves_the_store_families_out_of_the_scrape(caplog):
    def broken():
        raise RuntimeError("store down")

    metrics = WorkerMetrics()
    metrics.observe_state(StateProbe(domains=broken))
    text = generate_latest(metrics.registry).decode()
    assert "epum_domains" not in text
    assert 'epum_leader{role="decider"} 0.0' in text
    assert "epum_zookeeper_connected" not in text  # no ZooKeeper configured
    assert "could not read the store: store down" in caplog.text


def test_a_check_that_raises_counts_as_failing(caplog):
    assert evaluate({"ok": lambda: True, "bad": lambda: 1 / 0}) == {"ok": True, "bad": False}
    assert "health check bad failed" in caplog.text


@pytest.fixture
def endpoint() -> Iterator[tuple[HttpEndpoint, dict[str, bool]]]:
    flags = {"consumer": True, "broker": False}
    metrics = WorkerMetrics()
    with metrics.measure("list_domains"):
        pass
    served = HttpEndpoint(
        "127.0.0.1",
        0,
        {"consumer": lambda: flags["consumer"]},
        {"broker": lambda: flags["broker"]},
        metrics.registry,
    )
    served.start()
    try:
        yield served, flags
    finally:
        served.stop()


def get(port: int, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_the_endpoint_answers_each_path(endpoint):
    served, flags = endpoint
    assert served.port > 0
    code, ctype, body = get(served.port, "/healthz")
    assert (code, ctype, json.loads(body)) == (
        200,
        "application/json",
        {"ok": True, "checks": {"consumer": True}},
    )
    code, _, body = get(served.port, "/readyz")
    assert (code, json.loads(body)["checks"]) == (503, {"broker": False})
    flags["broker"] = True
    assert get(served.port, "/readyz?verbose")[0] == 200
    code, ctype, body = get(served.port, "/metrics")
    assert code == 200 and ctype.startswith("text/plain")
    assert 'epum_rpc_requests_total{op="list_domains"} 1.0' in body
    assert get(served.port, "/other")[0] == 404


def test_the_port_is_off_by_default_and_checked(tmp_path):
    assert load_config([], env={}).http.port is None
    assert load_config([], env={}).http.host == "127.0.0.1"
    config = tmp_path / "http.yaml"
    config.write_text("server: {http: {port: 9464}}\n")
    assert load_config([str(config)], env={}).http.port == 9464
    config.write_text("server: {http: {port: 70000}}\n")
    with pytest.raises(ConfigError, match=r"server\.http\.port must be 1\.\.65535"):
        load_config([str(config)], env={})
