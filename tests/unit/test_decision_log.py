"""The decision log through the facade (external-decide mode): each engine, each reason."""

from __future__ import annotations

import json

import pytest

from epum.decisions import domain_inputs, seen_after
from epum.engines.base import Engine
from epum.errors import BadRequestError, NotFoundError
from epum.states import InstanceState
from tests.migration.drive import DOMAIN, OWNER, Driven

SENSOR = {
    "general": {"engine_class": "sensor"},
    "engine_conf": {
        "minimum_vms": 1,
        "maximum_vms": 3,
        "metric": "load",
        "sample_function": "Average",
        "scale_up_threshold": 0.5,
        "scale_up_n_vms": 1,
        "scale_down_threshold": 0.1,
        "scale_down_n_vms": 1,
        "cooldown_period": 200,
        "deployable_type": "dt",
        "iaas_site": "site-a",
        "iaas_allocation": "small",
    },
}


class LaunchOnceEngine(Engine):
    """A custom engine that tells the log nothing: launches one instance, once."""

    def initialize(self, control, state, conf):
        self.done = False

    def decide(self, control, state):
        if not self.done:
            control.launch("dt", "site-a", "small")
            self.done = True


@pytest.fixture
def driven():
    made = []

    def make(*args, **kwargs):
        d = Driven(*args, **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def history(d, **kw):
    return d.epum.msg_describe_domain_history(OWNER, DOMAIN, **kw)


def decisions_of(d):
    return [e for e in history(d) if e["kind"] == "decision"]


def events_of(d, name):
    return [e for e in history(d) if e["kind"] == "event" and e["event"] == name]


def reasons(entry):
    return [r["code"] for r in entry["reasons"]]


def test_simplest_logs_its_launches_and_stays_quiet_at_target(driven):
    d = driven({"general": {"engine_class": "simplest"}}, {"engine_conf": {"preserve_n": 2}})
    d.decide()
    (first,) = decisions_of(d)
    assert first["inputs"]["target"] == 2 and first["inputs"]["counted"] == 0
    (launch,) = first["actions"]
    assert launch["do"] == "launch" and launch["count"] == 2 and launch["site"] == "ec2-east"
    assert launch["why"] == "0 instances, 2 wanted; ec2-east: the configured site"
    assert first["term"] == 0 and first["leader"] and first["dry_run"] is False
    d.run_all()
    d.decide()
    d.decide()
    assert len(decisions_of(d)) == 1, "a quiet pass at its target writes no decision"
    assert len(events_of(d, "running")) == 2


def test_a_failed_instance_is_logged_failed_then_replaced(driven):
    d = driven({"general": {"engine_class": "simplest"}}, {"engine_conf": {"preserve_n": 1}})
    d.decide()
    d.run_all()
    d.decide()
    (node,) = [r["instance_id"] for r in d.live()]
    d.sc.cloud.report(node, InstanceState.RUNNING_FAILED)
    d.decide()
    (failed,) = events_of(d, "failed")
    assert failed["instance_id"] == node
    (replaced,) = events_of(d, "replaced")
    assert replaced["instance_id"] == node and len(replaced["by"]) == 1
    last = decisions_of(d)[-1]
    assert [a["do"] for a in last["actions"]] == ["destroy", "launch"]
    assert last["actions"][0]["why"] == "unhealthy"
    assert [e["instance_id"] for e in events_of(d, "terminated")] == []
    d.decide()  # the cloud confirmed the termination after the last pass
    assert [e["instance_id"] for e in events_of(d, "terminated")] == [node]


def test_needy_says_when_unique_values_run_out(driven):
    conf = {
        "engine_conf": {
            "preserve_n": 3,
            "deployable_type": "dt",
            "iaas_site": "site-a",
            "iaas_allocation": "small",
            "unique_key": "slot",
            "unique_values": "a,b",
        }
    }
    d = driven({"general": {"engine_class": "needy"}}, conf)
    d.decide()
    (entry,) = decisions_of(d)
    assert [a["count"] for a in entry["actions"]] == [1, 1]
    assert reasons(entry) == ["no_values"]
    assert entry["reasons"][0]["text"] == "no launch of 1 more: no unused slot value left"
    d.run_all()
    d.decide()
    assert len(decisions_of(d)) == 2, "below its target, a pass that does nothing is logged"
    assert decisions_of(d)[-1]["actions"] == []


def test_sensor_explains_scaling_cooldown_maximum_and_missing_readings(driven):
    d = driven(SENSOR)
    d.decide()  # no instance, so no reading at all: launches the minimum
    (entry,) = decisions_of(d)
    assert reasons(entry) == ["no_reading"]
    assert entry["reasons"][0]["text"] == "no scaling: no fresh reading of load"
    d.run_all()
    d.decide()  # still no reading at all: sensor_error_policy hold takes no step
    entry = decisions_of(d)[-1]
    assert reasons(entry) == ["no_reading"]
    d.read("load", [0.9])
    d.decide(200)  # a step held at a bound starts the cooldown too (the original's rule)
    scaled = decisions_of(d)[-1]
    assert scaled["actions"][0]["why"].startswith("load Average=0.9 above 0.5: scaling by +1")
    assert scaled["inputs"]["minimum"] == 1 and scaled["inputs"]["maximum"] == 3
    step_time = scaled["time"]
    d.run_all()
    d.read("load", [0.9])
    d.decide(60)
    cooling = decisions_of(d)[-1]
    assert reasons(cooling) == ["cooldown"]
    assert cooling["reasons"][0]["text"].startswith("no scale-up: in cooldown for 140 s more")
    assert cooling["inputs"]["cooldown_left"] == pytest.approx(140)
    assert cooling["time"] == step_time + 60
    d.decide(200)  # over: scales to 3
    d.run_all()
    d.read("load", [0.9])
    d.decide(300)
    at_max = decisions_of(d)[-1]
    assert reasons(at_max) == ["at_maximum"]
    assert "but at the maximum (3)" in at_max["reasons"][0]["text"]


def test_multisite_says_why_that_site_and_when_the_clouds_are_full(driven):
    clouds = [
        {"site_name": "hotel", "size": 1, "rank": 1},
        {"site_name": "sierra", "size": 1, "rank": 2},
    ]
    conf = {"engine_conf": {"clouds": clouds, "dtname": "dt", "minimum_vms": 3}}
    d = driven({"general": {"engine_class": "multisite"}}, conf)
    d.decide()
    (entry,) = decisions_of(d)
    assert [(a["site"], a["count"]) for a in entry["actions"]] == [("hotel", 1), ("sierra", 1)]
    assert (
        "hotel: the best-ranked cloud with room (rank 1, room for 1)" in entry["actions"][0]["why"]
    )
    assert reasons(entry) == ["site_full"]
    assert entry["reasons"][0]["text"] == "no launch of 1 more: every cloud is full"
    d.run_all()
    d.decide()
    again = decisions_of(d)[-1]
    assert again["actions"] == [] and "site_full" in reasons(again)


def test_multisite_explains_launch_retry_pacing(driven):
    clouds = [{"site_name": "hotel", "size": 5, "rank": 1}]
    engine_conf = {"clouds": clouds, "dtname": "dt", "minimum_vms": 2}
    engine_conf.update(failure_threshold=1, failure_retry_period=600)
    d = driven({"general": {"engine_class": "multisite"}}, {"engine_conf": engine_conf})
    d.decide()
    first, second = d.sc.provisioner.provisioned_ids()
    d.sc.cloud.report(first, InstanceState.RUNNING)
    d.decide()
    d.fail(second)
    d.decide()  # learns hotel holds 1
    entry = decisions_of(d)[-1]
    assert "retry_pacing" in reasons(entry)
    text = next(r["text"] for r in entry["reasons"] if r["code"] == "retry_pacing")
    assert text.startswith("hotel skipped: judged full at 1 after launch failures")


def test_a_custom_engine_that_says_nothing_still_gets_inputs_and_actions(driven):
    d = driven(
        {"general": {"engine_class": f"{__name__}.LaunchOnceEngine"}},
        service_conf={"allowed_engine_prefixes": ["tests."]},
    )
    d.decide()
    entry = decisions_of(d)[-1]
    assert entry["actions"][0]["do"] == "launch" and entry["actions"][0]["why"] is None
    assert entry["inputs"]["instances"] == {} and "target" not in entry["inputs"]


def test_doctor_missing_and_reaper_reaped_are_logged(driven):
    health = {"monitor_health": True, "missing_timeout": 100, "really_missing_timeout": 10}
    d = driven(
        {"general": {"engine_class": "simplest"}},
        {"engine_conf": {"preserve_n": 1}, "health": health},
    )
    d.decide()
    d.run_all()
    d.decide()
    (node,) = d.sc.provisioner.provisioned_ids()
    start = d.sc.clock.now
    d.epum.msg_heartbeat("agent-1", {"node_id": node, "state": "OK"}, timestamp=start)
    d.epum._doctor_appt(timestamp=start + 1000)
    d.epum._doctor_appt(timestamp=start + 1100)
    d.decide()
    (missing,) = events_of(d, "missing")
    assert missing["instance_id"] == node
    d.sc.clock.advance(8000)
    d.epum._run_reaper_loop()
    d.decide()
    assert node in [e["instance_id"] for e in events_of(d, "reaped")]


def test_history_since_limit_and_caller_isolation(driven):
    d = driven({"general": {"engine_class": "simplest"}}, {"engine_conf": {"preserve_n": 1}})
    d.decide()
    d.run_all()
    d.decide(10)
    everything = history(d)
    assert [e["time"] for e in everything] == sorted(e["time"] for e in everything)
    assert history(d, limit=1) == everything[-1:]
    assert history(d, since=everything[-1]["time"]) == [
        e for e in everything if e["time"] >= everything[-1]["time"]
    ]
    assert history(d, limit=0) == []
    with pytest.raises(NotFoundError):
        d.epum.msg_describe_domain_history("mallory", DOMAIN)
    with pytest.raises(BadRequestError, match="limit"):
        history(d, limit=-1)


def test_dry_run_sends_nothing_logs_the_plan_and_resumes(driven):
    conf = {"engine_conf": {"preserve_n": 2}, "general": {"dry_run": True}}
    d = driven({"general": {"engine_class": "simplest"}}, conf)
    d.decide()
    d.decide()
    assert d.provisioned == [] and d.records() == []
    plans = decisions_of(d)
    assert len(plans) == 2, "the engine does not think its planned launches happened"
    for plan in plans:
        assert plan["dry_run"] is True and reasons(plan) == ["dry_run"]
        assert plan["actions"][0]["count"] == 2
    d.epum.msg_reconfigure_domain(OWNER, DOMAIN, {"general": {"dry_run": False}})
    d.decide()
    assert len(d.provisioned) == 2
    assert decisions_of(d)[-1]["dry_run"] is False


def test_dry_run_keeps_the_engine_state_real(driven):
    d = driven(SENSOR)
    d.decide()
    d.run_all()
    d.epum.msg_reconfigure_domain(OWNER, DOMAIN, {"general": {"dry_run": True}})
    d.read("load", [0.9])
    d.decide()
    assert d.size() == 1
    planned = decisions_of(d)[-1]
    assert planned["actions"][0]["do"] == "launch" and planned["dry_run"] is True
    d.epum.msg_reconfigure_domain(OWNER, DOMAIN, {"general": {"dry_run": False}})
    d.decide()  # no cooldown was started by the planned step
    assert d.size() == 2


def test_dry_run_must_be_a_bool(driven):
    d = driven({"general": {"engine_class": "simplest"}}, {"engine_conf": {"preserve_n": 1}})
    with pytest.raises(BadRequestError, match=r"general\.dry_run must be true or false"):
        d.epum.msg_reconfigure_domain(OWNER, DOMAIN, {"general": {"dry_run": "yes"}})


def test_a_domain_deciding_for_long_keeps_at_most_n_entries(driven):
    d = driven(
        {"general": {"engine_class": "needy"}},
        {"engine_conf": {"preserve_n": 1, "iaas_site": "s", "deployable_type": "dt"}},
        service_conf={"decision_log_entries": 5},
    )
    for _ in range(30):
        d.decide()  # each launch fails before the next pass: an entry every pass
        for record in d.live():
            d.fail(record["instance_id"])
    log = history(d)
    assert len(log) == 5
    assert log[-1]["time"] == d.sc.clock.now


def test_a_zookeeper_log_never_outgrows_its_znode():
    from epum.store import zk_history

    entries = [{"time": float(t), "pad": "x" * 10_000} for t in range(100)]
    raw = zk_history._capped(entries)
    kept = json.loads(raw)
    assert len(raw) <= zk_history.MAX_BYTES
    assert kept[-1]["time"] == 99.0 and len(kept) < 100


def test_logged_readings_keep_the_last_sample_of_a_series():
    inputs = domain_inputs([], {"load": {"Series": [1.0, 2.0, 3.0], "time": 90.0}}, now=100.0)
    assert inputs["sensor"] == {"load": {"last": 3.0, "samples": 3, "time": 90.0}}
    assert inputs["reading_age"] == 10.0


def test_seen_after_marks_launches_requesting_and_live_destroys_terminating():
    seen = {
        "a": ("600-RUNNING", "OK", "site1"),
        "gone": ("800-TERMINATED", "UNKNOWN", "site1"),
    }
    actions = [
        {"do": "launch", "instance_ids": ["new"], "site": "site2"},
        {"do": "destroy", "instance_ids": ["a", "gone"], "site": None},
    ]
    after = seen_after(seen, actions)
    assert after == {
        "a": ("700-TERMINATING", "UNKNOWN", "site1"),
        "gone": ("800-TERMINATED", "UNKNOWN", "site1"),
        "new": ("100-REQUESTING", "UNKNOWN", "site2"),
    }
    assert seen["a"] == ("600-RUNNING", "OK", "site1")  # the snapshot given is kept
