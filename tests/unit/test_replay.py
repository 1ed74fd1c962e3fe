"""``epum replay``: determinism, a what-if on cooldown, the trace file, export, the plot."""

from __future__ import annotations

import io
import json

import pytest

from epum.ctl import ctl_parser
from epum.errors import BadRequestError
from epum.replay.cli import main
from epum.replay.run import decisions_of, replay, simulate, summarize
from epum.replay.trace import Trace, trace_from_history

T0 = 1_700_000_000.0
CONF = {
    "general": {"engine_class": "sensor"},
    "engine_conf": {
        "minimum_vms": 1,
        "maximum_vms": 4,
        "metric": "load",
        "sample_function": "Average",
        "scale_up_threshold": 0.7,
        "scale_up_n_vms": 1,
        "scale_down_threshold": 0.2,
        "scale_down_n_vms": 1,
        "cooldown_period": 60,
        "deployable_type": "dt",
        "iaas_site": "site-a",
        "iaas_allocation": "small",
    },
}
READINGS = [(T0, 0.5), (T0 + 30, 0.9), (T0 + 200, 0.5), (T0 + 300, 0.1)]


@pytest.fixture(scope="module")
def recorded() -> Trace:
    """A run of the simulated system (facade, decider, simulated cloud and agents)."""
    return simulate("alice", "pool", CONF, READINGS, T0, T0 + 480, decide_every=5.0)


def test_replaying_with_the_same_engine_and_config_makes_the_same_decisions(recorded, tmp_path):
    made = decisions_of(recorded.history)
    assert [d[1] for d in made] == ["launch"] * 4 + ["destroy"] * 3
    path = tmp_path / "trace.json"
    recorded.save(str(path))
    again = replay(Trace.load(str(path)))
    assert decisions_of(again.history) == made


def test_a_trace_rebuilt_from_the_decision_log_alone_replays_the_same(recorded):
    exported = trace_from_history(
        "alice", "pool", CONF, recorded.history, recorded.end, recorded.decide_every
    )
    assert exported.start == T0
    assert [v for _, v in exported.readings][:2] == [0.5, 0.9]
    assert decisions_of(replay(exported).history) == decisions_of(recorded.history)


def test_a_shorter_cooldown_gives_a_different_explained_sequence(recorded):
    what_if = replay(recorded, {"cooldown_period": 10})
    made = decisions_of(what_if.history)
    assert made != decisions_of(recorded.history)
    ups = [t - T0 for t, do, _, _ in made if do == "launch"]
    assert ups == [0, 30, 40, 50]  # each step 10 s after the one before, up to the maximum
    assert [t - T0 for t, do, _, _ in decisions_of(recorded.history) if do == "launch"] == [
        0,
        30,
        90,
        150,
    ]
    texts = [r["text"] for e in what_if.history for r in e.get("reasons", [])]
    assert "no scale-up: in cooldown for 5 s more (last step 22:13:50)" in texts
    assert any("but at the maximum (4)" in t for t in texts)
    mine = summarize(what_if.history, T0, recorded.end)
    theirs = summarize(recorded.history, T0, recorded.end)
    assert (mine.launches, mine.terminations) == (theirs.launches, theirs.terminations) == (4, 3)


def test_a_bad_trace_is_a_typed_error_naming_what_is_wrong(tmp_path):
    with pytest.raises(BadRequestError, match="format"):
        Trace.from_json({"format": "other"})
    good = simulate("a", "d", CONF, [], T0, T0 + 2).to_json()
    with pytest.raises(BadRequestError, match="start"):
        Trace.from_json({**good, "start": "soon"})
    with pytest.raises(BadRequestError, match="readings"):
        Trace.from_json({**good, "readings": [1, 2]})
    with pytest.raises(BadRequestError, match="cannot read trace"):
        Trace.load(str(tmp_path / "missing.json"))


def test_epum_replay_prints_decisions_and_the_comparison(recorded, tmp_path):
    path = tmp_path / "trace.json"
    recorded.save(str(path))
    out = io.StringIO()
    assert main(["replay", str(path), "--set", "cooldown_period=10"], out=out) == 0
    text = out.getvalue()
    assert "the decisions differ" in text
    assert "no scale-up: in cooldown for 5 s more" in text
    assert "instance-hours" in text and "seconds below target" in text
    out = io.StringIO()
    assert main(["replay", str(path), "--quiet"], out=out) == 0
    assert out.getvalue().startswith("the replay made the same decisions")
    assert main(["replay", str(path), "--set", "nonsense"]) == 1


def test_epum_replay_saves_a_png_plot(recorded, tmp_path):
    pytest.importorskip("matplotlib")
    path, png = tmp_path / "trace.json", tmp_path / "plot.png"
    recorded.save(str(path))
    assert main(["replay", str(path), "--quiet", "--plot", str(png)], out=io.StringIO()) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class ExportClient:
    def __init__(self, history):
        self.history = history

    def describe_domain(self, domain_id, caller=None):
        return {"name": domain_id, "config": CONF}

    def describe_domain_history(self, domain_id, since=None, limit=None, caller=None):
        return [e for e in self.history if since is None or e["time"] >= since]


def test_epumctl_domain_export_writes_a_trace_replay_reads(recorded):
    args = ctl_parser().parse_args(["--caller", "alice", "domain", "export", "pool"])
    out = io.StringIO()
    assert args.print_lines(ExportClient(recorded.history), args, out=out) == 0
    trace = Trace.from_json(json.loads(out.getvalue()))
    assert trace.owner == "alice" and trace.config == CONF and trace.start == T0
    assert trace.history == recorded.history


def test_an_export_starts_from_the_config_then_running_and_replays_its_changes():
    cooler = {**CONF["engine_conf"], "cooldown_period": 10}
    run = simulate(
        "alice",
        "pool",
        CONF,
        READINGS,
        T0,
        T0 + 480,
        config_changes=[(T0 + 100, {"cooldown_period": 10})],
    )
    now_config = {**CONF, "engine_conf": cooler}  # what describe_domain says at export
    exported = trace_from_history("alice", "pool", now_config, run.history, run.end)
    assert exported.config["engine_conf"]["cooldown_period"] == 60
    assert [(t - T0, c["cooldown_period"]) for t, c in exported.config_changes] == [(100, 10)]
    assert decisions_of(replay(exported).history) == decisions_of(run.history)

    later = trace_from_history("alice", "pool", now_config, run.history, run.end, since=T0 + 150)
    assert later.config["engine_conf"]["cooldown_period"] == 10  # in effect at the start
    assert later.config_changes == [] and later.start >= T0 + 150
    assert later.readings[0][0] == later.start  # the value in effect then
