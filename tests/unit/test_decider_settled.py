"""The decider reads a domain again only when it changed, and skips a settled one
(``epum.pass_inputs``): what depends on time still acts at every timed pass."""

from __future__ import annotations

from epum.control import RESEND_INTERVAL
from epum.engines.simplest import SimplestEngine
from epum.states import InstanceHealthState
from tests.unit.scenario import Scenario


class CountingSimplest(SimplestEngine):
    """The simplest engine, counting its decisions; it does not re-declare the promise."""

    decisions = 0

    def decide(self, control, state):
        type(self).decisions += 1
        super().decide(control, state)


def at_size(sc: Scenario, engine: str = "simplest") -> None:
    sc.epum.msg_add_domain_definition(
        "d", {"general": {"engine_class": engine}, "engine_conf": {"epuworker_type": "dt"}}
    )
    sc.epum.msg_add_domain("alice", "dom", "d", {"engine_conf": {"preserve_n": 2}})
    sc.decide()
    sc.cloud.run_all()
    sc.decide()
    sc.decide()


def decisions_of(sc: Scenario) -> list[int]:
    """Count the engine's decisions and the store's reads of the domain from now on."""
    counts = [0, 0]
    entry = sc.epum.decider._engines[("alice", "dom")]
    decide = entry.engine.decide

    def counted_decide(control, state):
        counts[0] += 1
        decide(control, state)

    entry.engine.decide = counted_decide
    domain = sc.epum.store.get_domain("alice", "dom")
    get_instances = domain.get_instances

    def counted_get_instances():
        counts[1] += 1
        return get_instances()

    domain.get_instances = counted_get_instances  # the memory store hands out one handle
    return counts


def test_a_settled_domain_is_neither_read_nor_decided_until_it_changes():
    sc = Scenario()
    at_size(sc)
    counts = decisions_of(sc)
    for _ in range(3):
        sc.clock.advance(60)
        sc.decide()
    assert counts == [0, 0]
    assert len(sc.provisioner.provisioned) == 2  # one request per instance

    # a record changes (the doctor finds an instance missing): read, decided, replaced
    victim = sc.live("alice", "dom")[0]["instance_id"]
    domain = sc.epum.store.get_domain("alice", "dom")
    record = domain.get_instance(victim)
    domain.update_instance(record.replace(health=InstanceHealthState.MISSING))
    sc.decide()
    assert counts[0] == 1 and counts[1] > 0
    assert len(sc.provisioner.provisioned) == 3
    assert victim in sc.provisioner.terminated


def test_unanswered_launches_keep_the_domain_unsettled_so_resends_still_happen():
    sc = Scenario()
    sc.add_domain("alice", "dom", 2)
    sc.decide()  # launched: both records REQUESTING, the provisioner never answers
    sc.decide()
    assert len(sc.provisioner.provisioned) == 2
    sc.clock.advance(RESEND_INTERVAL + 1)
    sc.decide()
    assert len(sc.provisioner.provisioned) == 4  # each unanswered launch re-sent


def test_an_engine_without_its_own_promise_is_decided_at_every_pass():
    CountingSimplest.decisions = 0
    sc = Scenario({"allowed_engine_prefixes": ["tests.unit.test_decider_settled"]})
    at_size(sc, "tests.unit.test_decider_settled.CountingSimplest")
    before = CountingSimplest.decisions
    sc.clock.advance(60)
    sc.decide()
    sc.decide()
    assert CountingSimplest.decisions == before + 2
