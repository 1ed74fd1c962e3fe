"""Smoke tests of the benchmarks' cores with tiny sizes, so they cannot rot (memory store).

They check that each benchmark runs and measures what it says; they assert
no timings.
"""

from __future__ import annotations

from bench import decider_pass, heartbeats


def test_decider_pass_bench_runs(capsys):
    figures = decider_pass.measure_memory(domains=2, instances=3, passes=2)
    assert len(figures.decider.samples) == 2
    assert len(figures.reads.samples) == len(figures.plain.samples) == 2
    assert (
        decider_pass.main(["--domains", "2", "--instances", "2", "--passes", "2", "--no-zookeeper"])
        == 0
    )
    out = capsys.readouterr().out
    assert "decider pass, memory store: 2 domains x 2 instances" in out
    assert "bare store reads" in out


def test_decider_pass_populates_running_domains():
    with decider_pass.populated(domains=2, instances=2) as sim:
        store = sim.epum.store
        read = decider_pass.store_reads(store)()
        assert read == 4
        sim.epum._run_decisions()
        assert len(sim.provisioner.requests) == 4, "a steady state launches nothing"


def test_heartbeats_bench_runs(capsys):
    figures, bare_rate = heartbeats.measure_memory(instances=4, rounds=14, interval=5.0)
    assert figures.heartbeats == 4 * 14
    assert bare_rate > 0 and figures.per_second > 0
    # 14 rounds of 5 s with writes due after 30 s of staleness: 2 writes per instance
    assert figures.record_writes == 4 * 2
    assert heartbeats.main(["--instances", "3", "--rounds", "2", "--no-zookeeper"]) == 0
    assert "record writes per heartbeat" in capsys.readouterr().out
