"""The decider's decision log on each store: one entry per deciding pass, bounded."""

from __future__ import annotations

import pytest

from epum.errors import NotFoundError
from tests.store_backends import BACKENDS, make_store
from tests.unit.scenario import Scenario


@pytest.fixture(params=BACKENDS)
def sc(request):
    scenario = Scenario({"decision_log_entries": 4}, store=make_store(request.param, request))
    yield scenario
    scenario.epum.shutdown()


def test_the_decider_logs_to_the_store_bounded(sc):
    sc.add_domain("alice", "dom", 2)
    sc.decide()
    started, entry = sc.epum.msg_describe_domain_history("alice", "dom")
    assert started["event"] == "started" and started["engine_conf"]["preserve_n"] == 2
    assert entry["actions"][0]["count"] == 2
    for _ in range(6):  # each pass the cloud fails what was launched: below target
        sc.clock.advance(10)
        for record in sc.live("alice", "dom"):
            sc.cloud.report(record["instance_id"], "900-FAILED")
        sc.decide()
    log = sc.epum.msg_describe_domain_history("alice", "dom")
    assert len(log) == 4
    assert log[-1]["kind"] == "decision" and log[-1]["time"] == sc.clock.now
    live = sorted(r["instance_id"] for r in sc.live("alice", "dom"))
    sc.epum.msg_remove_domain("alice", "dom")
    sc.decide()
    removal = sc.epum.store.get_domain("alice", "dom").get_history()[-1]  # hidden from callers
    assert removal["inputs"]["target"] == 0
    (action,) = removal["actions"]
    assert action["do"] == "destroy" and sorted(action["instance_ids"]) == live
    assert action["why"] == "the domain is being removed"
    sc.cloud.terminate_all()
    sc.decide()
    assert sc.epum.msg_list_domains("alice") == []


def test_no_log_is_written_for_a_domain_that_is_gone(sc):
    sc.add_domain("alice", "dom", 0)
    domain = sc.epum.store.get_domain("alice", "dom")
    sc.epum.store.remove_domain("alice", "dom")
    entry = {"kind": "event", "event": "reading", "time": sc.clock.now}
    with pytest.raises(NotFoundError):
        domain.append_history([entry], 10, 3600.0, sc.clock.now)
    sc.add_domain("alice", "dom", 0)  # the same id again starts with no trace of the write
    fresh = sc.epum.store.get_domain("alice", "dom")
    assert [e for e in fresh.get_history() if e.get("event") == "reading"] == []
