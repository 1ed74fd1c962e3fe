"""Per-op statsd metrics: a counter and a timing per handled op (a UDP socket as statsd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from epum.messaging.metrics import OpMetrics
from epum.settings import StatsdSettings


@pytest.fixture
def statsd_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def received(sock: socket.socket, count: int) -> list[str]:
    lines: list[str] = []
    while len(lines) < count:
        lines.extend(sock.recv(4096).decode().splitlines())
    return lines


def test_an_op_is_counted_and_timed(statsd_socket):
    port = statsd_socket.getsockname()[1]
    metrics = OpMetrics.from_config(StatsdSettings(host="127.0.0.1", port=port, prefix="epum"))
    with metrics.measure("list_domains"):
        pass
    metrics.close()
    lines = received(statsd_socket, 2)
    assert "epum.rpc.list_domains.calls:1|c" in lines
    assert any(
        line.startswith("epum.rpc.list_domains.time:") and line.endswith("|ms") for line in lines
    )


def test_a_failed_op_is_also_counted_as_an_error(statsd_socket):
    port = statsd_socket.getsockname()[1]
    metrics = OpMetrics.from_config(StatsdSettings(host="127.0.0.1", port=port, prefix="p"))
    with pytest.raises(ValueError), metrics.measure("add_domain"):
        raise ValueError("x")
    metrics.close()
    lines = received(statsd_socket, 3)
    assert {"p.rpc.add_domain.errors:1|c", "p.rpc.add_domain.calls:1|c"} <= set(lines)


def test_without_statsd_the_block_runs_and_its_errors_pass_through():
    metrics = OpMetrics.from_config(None)
    ran = []
    with metrics.measure("op"):
        ran.append("op")
    assert ran == ["op"]
    with pytest.raises(KeyError, match="boom"), metrics.measure("op"):
        raise KeyError("boom")


def test_the_servers_retries_and_dead_letters_are_counted(statsd_socket):
    port = statsd_socket.getsockname()[1]
    metrics = OpMetrics.from_config(StatsdSettings(host="127.0.0.1", port=port, prefix="p"))
    metrics.count("retried")
    metrics.count("dead_lettered")
    metrics.close()
    assert set(received(statsd_socket, 2)) == {"p.rpc.retried:1|c", "p.rpc.dead_lettered:1|c"}
    OpMetrics.from_config(None).count("retried")  # no statsd: nothing, no error
