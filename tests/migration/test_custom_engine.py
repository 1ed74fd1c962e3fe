"""A custom engine written as the original's were (a plain class), run by the facade."""

from __future__ import annotations

from tests.migration.drive import Driven

PLAIN = {"general": {"engine_class": "tests.unit.engine_fakes.PlainEngine"}}


def engine_of(d: Driven):
    """The wrapped plain engine the decider built for the domain."""
    (entry,) = d.epum.decider._engines.values()
    return entry.engine.inner


def test_plain_class_under_an_allowed_prefix_runs_with_the_originals_helpers():
    d = Driven(
        PLAIN,
        {"engine_conf": {"preserve_n": "2"}},
        service_conf={"allowed_engine_prefixes": ["tests.unit"]},
    )
    try:
        assert d.decide() == 2
        d.run_all()
        assert d.decide() == 2
        engine = engine_of(d)
        assert engine.seen[0] == {
            "healthy": 0,
            "pending": 0,
            "running": 0,
            "sensors": {},
            "health_not_checked": True,
        }
        assert engine.seen[1]["running"] == 2 and engine.seen[1]["healthy"] == 2
        victim = d.live()[0]["instance_id"]
        d.sc.cloud.report(victim, "650-RUNNING_FAILED")
        d.decide()
        assert victim in d.terminated
        d.reconfigure({"preserve_n": 3})
        d.decide()
        assert len(d.provisioned) == 4
    finally:
        d.close()


def test_a_plain_engine_sees_whether_the_domains_health_is_checked():
    """The original's control.health_not_checked follows health.monitor_health."""
    d = Driven(
        PLAIN,
        {"engine_conf": {"preserve_n": 1}, "health": {"monitor_health": "true"}},
        service_conf={"allowed_engine_prefixes": ["tests.unit"]},
    )
    try:
        d.decide()
        assert engine_of(d).seen[-1]["health_not_checked"] is False
        d.epum.msg_reconfigure_domain("migrating", "dom", {"health": {"monitor_health": False}})
        d.decide()
        assert engine_of(d).seen[-1]["health_not_checked"] is True
    finally:
        d.close()
