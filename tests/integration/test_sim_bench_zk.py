"""Smoke tests of the ZooKeeper parts of the benchmarks, tiny sizes (no timings asserted)."""

from __future__ import annotations

import pytest

from bench import decider_pass, heartbeats, reaction

pytestmark = pytest.mark.zookeeper


def test_decider_pass_bench_on_zookeeper(zk_server):
    figures = decider_pass.measure_zookeeper(zk_server.hosts, domains=2, instances=2, passes=2)
    assert len(figures.decider.samples) == len(figures.bare_gets.samples) == 2
    # per domain: the domain znode, 3 config sections, subscribers, sensor data,
    # the instances folder and its records; per owner: the owner folder
    assert figures.znodes >= 2 * (1 + 2)


def test_heartbeats_bench_on_zookeeper(zk_server):
    figures = heartbeats.measure_zookeeper(zk_server, instances=3, rounds=7, interval=5.0)
    assert figures.heartbeats.heartbeats == 3 * 7
    # 7 rounds of 5 s, a write due after 30 s of staleness: one write per instance
    assert figures.heartbeats.record_writes == 3
    assert figures.zk_writes == 3, "a heartbeat writes only its record, and only when due"
    assert figures.bare_sets_per_second > 0 and figures.bare_gets_per_second > 0


def test_reaction_bench_replaces_through_the_wake_path(zk_server):
    # With an hour between timed passes, only a wake-up through the store's
    # watches can request the replacements within the 10 s the bench waits.
    times = reaction.reaction_times(zk_server.hosts, rounds=2, interval=3600, wait=10)
    assert len(times) == 2
    assert len(reaction.watch_round_trips(zk_server.hosts, rounds=2)) == 2
