"""The decider acts within its term: an end mid-decision stops its launches at
once, and the next term decides afresh, never stopped by the old term's end."""

from __future__ import annotations

import threading

from epum.engines.base import Engine
from epum.term import Term
from tests.unit.scenario import Scenario

PROMPT = 5.0


class EndsTermMidDecision(Engine):
    """Launches one instance per decision; ``hook`` (set by the test) runs first."""

    hook = None
    launched = threading.Event()

    def initialize(self, control, state, conf):
        pass

    def decide(self, control, state):
        if type(self).hook is not None:
            type(self).hook()
        if not state.instances:
            control.launch("dt", None, None, count=1)
            type(self).launched.set()


def lead(decider, term: Term) -> threading.Thread:
    thread = threading.Thread(target=decider.inaugurate, args=(term,), name="decider-term-test")
    thread.start()
    return thread


def test_a_term_ended_mid_decision_launches_nothing_and_the_next_term_does():
    sc = Scenario({"allowed_engine_prefixes": ["tests.unit.test_decider_terms"]})
    decider = sc.epum.decider
    # Terms of the store's own, as an election would hand out: its writes
    # are fenced, so a term it never handed out would launch nothing.
    first, second = sc.epum.store.new_term("decider"), sc.epum.store.new_term("decider")
    EndsTermMidDecision.launched.clear()
    EndsTermMidDecision.hook = first.end  # deposed while the engine decides
    try:
        sc.epum.msg_add_domain_definition(
            "ends",
            {"general": {"engine_class": "tests.unit.test_decider_terms.EndsTermMidDecision"}},
        )
        sc.epum.msg_add_domain("alice", "dom", "ends", {})

        thread = lead(decider, first)
        thread.join(PROMPT)
        assert not thread.is_alive(), "the decider led on after its term ended"
        assert sc.provisioner.provisioned == []
        assert sc.instances("alice", "dom") == []

        EndsTermMidDecision.hook = None
        thread = lead(decider, second)
        try:
            assert EndsTermMidDecision.launched.wait(PROMPT)
            assert len(sc.provisioner.provisioned) == 1
            assert decider.term is second and decider.is_leader
            first.end()  # a late signal for the first term
            assert decider.is_leader and not second.ended
        finally:
            second.end()
            thread.join(PROMPT)
        assert not thread.is_alive()
    finally:
        EndsTermMidDecision.hook = None
        sc.epum.shutdown()


def test_passes_run_by_hand_act_under_the_unelected_term_until_depose():
    sc = Scenario()
    decider = sc.epum.decider
    assert decider.term.identity == ("decider", None, None, 0)
    sc.add_domain("alice", "dom", 1)
    sc.decide()
    assert len(sc.provisioner.provisioned) == 1
    decider.depose()
    sc.add_domain("alice", "other", 1)
    sc.decide()  # the unelected term has ended: nothing more is launched
    assert len(sc.provisioner.provisioned) == 1
    sc.epum.shutdown()


def test_a_store_that_refuses_the_term_makes_the_decider_leave_office():
    """A term out of office by the store's account (here: one it never handed
    out) launches nothing, and the decider ends it itself and returns."""
    sc = Scenario()
    decider = sc.epum.decider
    sc.add_domain("alice", "dom", 2)
    stranger = Term("decider", 41)  # in office by its own account only
    thread = lead(decider, stranger)
    thread.join(PROMPT)
    assert not thread.is_alive(), "the decider led on after the store refused its term"
    assert stranger.ended
    assert sc.provisioner.provisioned == [] and sc.instances("alice", "dom") == []
    sc.epum.shutdown()
