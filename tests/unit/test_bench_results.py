"""The figures the benchmarks report, the results file's schema, and the runner (no servers).

No timing is asserted anywhere: these check the shape of what a run writes.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from bench import run
from bench.common import (
    FIGURE_KEYS,
    Figure,
    ResultsError,
    Target,
    check_results,
    figures_table,
    write_results,
)
from bench.probes import parse_cons, parse_mntr, requests_between
from bench.statsd_sink import StatsdSink, parse_timings


def test_the_ratio_is_the_value_over_the_bare_figure():
    assert Figure("rate", 1060.0, "/s", bare=4240.0).ratio == 0.25
    assert Figure("alone", 3.0, "ms").ratio is None
    assert Figure("zero bare", 3.0, "ms", bare=0.0).ratio is None


def test_a_target_without_a_unit_judges_the_ratio():
    target = Target(">=", 0.5)
    assert Figure("rate", 1060.0, "/s", bare=4393.0, target=target).met is False
    assert Figure("rate", 3000.0, "/s", bare=4393.0, target=target).met is True
    assert Figure("no bare", 3000.0, "/s", target=target).met is None


def test_a_target_with_a_unit_judges_the_value():
    target = Target("<", 10, "ms")
    assert Figure("add", 9.9, "ms", bare=1.0, target=target).met is True
    assert Figure("add", 10.0, "ms", bare=1.0, target=target).met is False
    assert Figure("zk", 0.0, "requests", target=Target("=", 0, "requests")).met is True


def test_a_figure_from_a_run_too_small_for_its_target_is_not_judged():
    small = Figure("rss", 30.0, "MB", target=Target("<", 200, "MB"), judged=False)
    assert small.met is None
    assert small.to_dict()["target"] == "< 200 MB"
    assert Figure("untargeted", 1.0, "ms").met is None


def test_targets_are_written_and_read_as_text():
    for text in (">= 0.5", "<= 1.5", "< 10 ms", "= 0 requests", "> 2", "< 200 MB"):
        assert str(Target.parse(text)) == text
    assert Target.parse("< 10 ms") == Target("<", 10.0, "ms")


@pytest.mark.parametrize("text", ["", "10 ms", "<< 3", "<=1.5", "< ten ms", None])
def test_a_target_that_is_not_one_is_refused(text):
    with pytest.raises(ResultsError, match="is not '<op> <number> \\[unit\\]'"):
        Target.parse(text)


def test_bad_figures_are_refused_naming_what_is_wrong():
    with pytest.raises(ResultsError, match="target operator '=>'"):
        Target("=>", 1)
    with pytest.raises(ResultsError, match="'p50': target < 10 ms is in ms, the figure in s"):
        Figure("p50", 1.0, "s", target=Target("<", 10, "ms"))
    with pytest.raises(ResultsError, match="'rate': value must be finite"):
        Figure("rate", math.inf, "/s")
    with pytest.raises(ResultsError, match="'rate': bare must be a number"):
        Figure("rate", 1.0, "/s", bare="fast")  # type: ignore[arg-type]
    with pytest.raises(ResultsError, match="needs a name"):
        Figure("", 1.0, "/s")


def test_written_results_have_the_declared_shape(tmp_path):
    figures = [
        Figure("drained", 1060.4, "/s", bare=4393.2, target=Target(">=", 0.5)),
        Figure("requests", 1.0, "requests", target=Target("=", 0, "requests")),
        Figure("pass", 44.123456, "ms", bare=550.0),
    ]
    path = tmp_path / "results.json"
    write_results(path, figures)
    data = json.loads(path.read_text())
    assert check_results(data) == data
    assert [tuple(d) for d in data] == [FIGURE_KEYS] * 3
    assert data[0] == {
        "name": "drained",
        "value": 1060.0,
        "unit": "/s",
        "bare": 4393.0,
        "ratio": 0.2414,
        "target": ">= 0.5",
        "met": False,
    }
    assert data[1]["bare"] is None and data[1]["ratio"] is None and data[1]["met"] is False
    assert data[2]["value"] == 44.12 and data[2]["target"] is None and data[2]["met"] is None


GOOD = {
    "name": "x",
    "value": 2.0,
    "unit": "ms",
    "bare": 1.0,
    "ratio": 2.0,
    "target": "<= 1.5",
    "met": False,
}


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"figures": []}, "must be a list"),
        ([GOOD, GOOD], "the name is used twice"),
        ([{**GOOD, "extra": 1}], "has keys"),
        ([{k: v for k, v in GOOD.items() if k != "met"}], "has keys"),
        ([{**GOOD, "value": "2"}], "value must be a number"),
        ([{**GOOD, "value": True}], "value must be a number"),
        ([{**GOOD, "ratio": None}], "ratio must be given exactly when bare is"),
        ([{**GOOD, "bare": None}], "ratio must be given exactly when bare is"),
        ([{**GOOD, "target": "under 2"}], "is not '<op> <number>"),
        ([{**GOOD, "target": "< 2 s"}], "is not in ms"),
        ([{**GOOD, "met": "no"}], "met must be true, false or null"),
        ([{**GOOD, "target": None}], "met must be null without a target"),
        ([{**GOOD, "unit": None}], "unit must be a string"),
        (["x"], "must be an object"),
    ],
)
def test_results_of_another_shape_are_refused(data, complaint):
    with pytest.raises(ResultsError, match=complaint):
        check_results(data)


def test_the_table_shows_each_figure_with_its_bare_figure_and_target():
    text = figures_table(
        [
            Figure("drained", 1060.4, "/s", bare=4393.2, target=Target(">=", 0.5)),
            Figure("requests", 1.0, "requests", target=Target("=", 0, "requests")),
        ]
    )
    header, rule, drained, requests = text.splitlines()
    assert header.split() == ["figure", "value", "bare", "ratio", "target", "met"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert drained.split() == ["drained", "1,060", "/s", "4,393", "/s", "0.241x", ">=", "0.5", "no"]
    assert requests.split() == ["requests", "1", "requests", "=", "0", "requests", "no"]


def test_the_cons_answer_gives_each_connection_its_request_counter():
    answer = (
        " /127.0.0.1:39366[0](queued=0,recved=1,sent=0)\n"
        " /127.0.0.1:39360[1](queued=0,recved=8,sent=8,sid=0x1000035f84f0000,lop=CREA,"
        "est=1796241009308,to=10000,lcxid=0x7,lzxid=0x2,lresp=3537559,llat=15)\n\n"
    )
    connections = parse_cons(answer)
    assert set(connections) == {39366, 39360}
    assert connections[39360]["sid"] == "0x1000035f84f0000"
    assert int(connections[39360]["lcxid"], 16) == 7
    assert requests_between({"a": 5, "b": 1}, {"a": 12, "b": 1, "c": 3}) == 7 + 0 + 3


def test_the_mntr_answer_gives_the_server_s_counters():
    answer = (
        "zk_version\t3.8.0-5a02a05eddb59aee6ac762f7ea82e92a68eb9c0f\n"
        "zk_znode_count\t270019\nzk_approximate_data_size\t75221512\n"
        "zk_watch_count\t340004\n"
    )
    counters = parse_mntr(answer)
    assert counters["zk_znode_count"] == "270019"
    assert counters["zk_approximate_data_size"] == "75221512"
    assert counters["zk_version"].startswith("3.8.0")


def test_a_statsd_packet_gives_its_timings_and_skips_the_rest():
    packet = "a.decider.pass:2268.5|ms\na.domains.active:2000|g\na.rpc.x.calls:1|c\nbad|ms"
    (timing,) = parse_timings(packet, arrived=7.0)
    assert (timing.stat, timing.ms, timing.arrived) == ("a.decider.pass", 2268.5, 7.0)
    assert parse_timings("b.decider.pass:12|ms|@0.5", 1.0)[0].ms == 12.0


def test_the_statsd_sink_hears_timings_sent_to_it():
    import socket

    with StatsdSink() as sink, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert sink.config("w")["port"] == sink.port
        for ms in (5, 7):
            sock.sendto(f"w.decider.pass:{ms}|ms".encode(), ("127.0.0.1", sink.port))
        assert sink.wait_for("w.decider.pass", 2, timeout=10).ms == 7.0
        assert [t.ms for t in sink.timings("w.decider.pass")] == [5.0, 7.0]
        with pytest.raises(RuntimeError, match="heard 0 timings of other"):
            sink.wait_for("other", 1, timeout=0.05)


# the runner ------------------------------------------------------------------


def fake_benchmark(found=None, fail=False):
    def figures(rounds: int = 10, interval: float = 2.0, *, server=None):
        if fail:
            raise RuntimeError("broken benchmark")
        calls.append({"rounds": rounds, "interval": interval, "server": server})
        return found or [Figure(f"fake {rounds}", 1.0, "ms", bare=0.5)]

    calls: list[dict] = []
    return SimpleNamespace(figures=figures, TINY={"rounds": 1}, calls=calls)


def test_every_size_of_every_benchmark_is_an_option_with_tiny_defaults():
    for name, module in run.BENCHMARKS.items():
        assert set(module.TINY) <= set(run.sizes_of(module)), name
    args, sizes = run.parse_args(["--tiny", "--worker-domains", "7", "--only", "worker"])
    assert args.only == ["worker"]
    assert sizes["worker"]["domains"] == 7
    assert sizes["worker"]["instances"] == run.worker.TINY["instances"]
    assert sizes["rpc"] == {"calls": 5, "warmup": 1}
    _, defaults = run.parse_args(["--heartbeats-interval", "2.5"])
    assert defaults["heartbeats"]["interval"] == 2.5
    assert defaults["worker"] == run.sizes_of(run.worker)
    assert run.option("decider_pass", "zk_domains") == "--decider-pass-zk-domains"


def test_the_runner_writes_what_ran_and_names_what_failed(tmp_path, capsys):
    good, bad = fake_benchmark(), fake_benchmark(fail=True)
    out = tmp_path / "results.json"
    sizes = {"good": {"rounds": 3, "interval": 1.0}, "bad": {"rounds": 1, "interval": 1.0}}
    server = SimpleNamespace(hosts="127.0.0.1:1")  # handed on, never started
    found, failed = run.run(
        ["bad", "good"], sizes, out, server=server, benchmarks={"good": good, "bad": bad}
    )
    assert failed == ["bad"]
    assert [f.name for f in found] == ["fake 3"]
    assert good.calls == [{"rounds": 3, "interval": 1.0, "server": server}]
    assert check_results(json.loads(out.read_text()))[0]["name"] == "fake 3"
    assert "broken benchmark" in capsys.readouterr().err
