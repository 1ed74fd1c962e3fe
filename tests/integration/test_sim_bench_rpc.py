"""Smoke test of the RPC benchmark's core on a real RabbitMQ, tiny sizes (no timings asserted)."""

from __future__ import annotations

import pytest

from bench import rpc
from tests import rabbit

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url


def test_rpc_bench_measures_both_round_trips(amqp_url):
    epum, bare = rpc.measure(amqp_url, calls=5, warmup=1)
    assert len(epum.samples) == len(bare.samples) == 5
    assert all(s > 0 for s in epum.samples + bare.samples)
