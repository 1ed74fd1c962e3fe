"""The helpers every engine shares: config checks, counting, choosing, uniques."""

from __future__ import annotations

import pytest

from epum.engines.common import DestroyTracker, failure_streak, judge, pick_victims
from epum.engines.confcheck import get_bool, get_int, get_number, get_str, get_str_list
from epum.engines.uniques import UniqueValues
from epum.errors import BadRequestError
from epum.states import DecisionEngineState as DE
from epum.states import InstanceHealthState as H
from epum.states import InstanceState as S
from tests.unit.engine_fakes import FakeControl, make_instance


class TestConfCheck:
    def test_int_required_type_and_minimum(self):
        assert get_int({"n": 3}, "n", required=True) == 3
        assert get_int({}, "n", default=7) == 7
        assert get_int({"n": None}, "n", default=7) == 7
        with pytest.raises(BadRequestError, match="n is required"):
            get_int({}, "n", required=True)
        # numeric strings and whole floats are read as the original's int() did
        assert get_int({"n": "3"}, "n") == 3
        assert get_int({"n": " 4 "}, "n") == 4
        assert get_int({"n": 5.0}, "n") == 5
        for bad in ("3.5", "three", 2.5, True, [1]):
            with pytest.raises(BadRequestError, match="n must be an integer"):
                get_int({"n": bad}, "n")
        with pytest.raises(BadRequestError, match="n must be >= 0"):
            get_int({"n": -1}, "n", minimum=0)

    def test_number(self):
        assert get_number({"x": 2}, "x") == 2.0
        assert get_number({"x": "2.5"}, "x") == 2.5
        with pytest.raises(BadRequestError, match="x must be a number"):
            get_number({"x": "two"}, "x")
        with pytest.raises(BadRequestError, match="x must be a number"):
            get_number({"x": True}, "x")
        with pytest.raises(BadRequestError, match="x must be a number"):
            get_number({"x": float("nan")}, "x")
        with pytest.raises(BadRequestError, match="x must be >= 0"):
            get_number({"x": -0.5}, "x", minimum=0)

    def test_bool_words(self):
        assert get_bool({}, "b") is False
        assert get_bool({"b": "false"}, "b") is False  # bool("false") was True in the original
        assert get_bool({"b": "True"}, "b") is True
        assert get_bool({"b": 1}, "b") is True
        with pytest.raises(BadRequestError, match="b must be true or false"):
            get_bool({"b": "maybe"}, "b")

    def test_str(self):
        assert get_str({"s": "a"}, "s") == "a"
        with pytest.raises(BadRequestError, match="s must be a non-empty string"):
            get_str({"s": ""}, "s")
        with pytest.raises(BadRequestError, match="s must be a non-empty string"):
            get_str({"s": 5}, "s")

    def test_str_list_forms(self):
        assert get_str_list({"l": " a, b ,,a"}, "l") == ["a", "b"]
        assert get_str_list({"l": ["x", 8080]}, "l") == ["x", "8080"]
        assert get_str_list({}, "l") == []
        with pytest.raises(BadRequestError, match="l items must be strings"):
            get_str_list({"l": [{"a": 1}]}, "l")
        with pytest.raises(BadRequestError, match="l must be a list of strings"):
            get_str_list({"l": 5}, "l")


class TestPickVictims:
    def test_retirable_then_newest_pending_then_newest_running(self):
        insts = [
            make_instance("run-old", S.RUNNING, state_time=1),
            make_instance("run-new", S.RUNNING, state_time=5),
            make_instance("pend-old", S.PENDING, state_time=2),
            make_instance("pend-new", S.REQUESTED, state_time=6),
            make_instance("retire", S.RUNNING, state_time=0),
        ]
        order = [i.instance_id for i in pick_victims(insts, 5, retirable=["retire", "gone"])]
        assert order == ["retire", "pend-new", "pend-old", "run-new", "run-old"]
        assert [i.instance_id for i in pick_victims(insts, 2)] == ["pend-new", "pend-old"]
        assert pick_victims(insts, 0) == []
        assert pick_victims(insts, -2) == []


class TestFailureStreak:
    def test_counts_failures_before_first_success(self):
        insts = [
            make_instance("ok", S.RUNNING, state_time=1),
            make_instance("f1", S.FAILED, state_time=2),
            make_instance("f2", S.REJECTED, state_time=3),
            make_instance("pending", S.PENDING, state_time=9),
            make_instance("ended", S.TERMINATED, state_time=10),
        ]
        assert failure_streak(insts) == (2, 3)

    def test_success_breaks_streak(self):
        insts = [
            make_instance("f1", S.FAILED, state_time=1),
            make_instance("ok", S.RUNNING_FAILED, state_time=2),
        ]
        assert failure_streak(insts) == (0, None)


class TestJudge:
    def test_stable_pending_deviating(self):
        running = [make_instance(f"r{n}", S.RUNNING) for n in range(2)]
        assert judge(running, 2, running) == DE.STABLE
        assert judge(running, 3, running) == DE.PENDING
        booting = [*running[:1], make_instance("p", S.PENDING)]
        assert judge(booting, 2, booting) == DE.PENDING
        failed = [make_instance(f"f{n}", S.FAILED, state_time=n + 1) for n in range(3)]
        assert judge(running, 3, running + failed) == DE.DEVIATING


class TestDestroyTracker:
    def test_excludes_asked_and_does_not_ask_twice(self):
        control = FakeControl(mark_destroyed=False)
        control.add("a")
        control.add("b")
        tracker = DestroyTracker()
        state = control.state()
        tracker.destroy(control, [state.instances["a"]], "test")
        tracker.destroy(control, [state.instances["a"]], "test")
        assert control.destroy_calls == [["a"]]
        assert [i.instance_id for i in tracker.live(control.state())] == ["b"]

    def test_forgets_ids_once_not_live(self):
        control = FakeControl(mark_destroyed=False)
        control.add("a")
        tracker = DestroyTracker()
        tracker.destroy(control, [control.state().instances["a"]], "test")
        control.set("a", S.TERMINATED)
        tracker.live(control.state())
        control.set("a", S.RUNNING)  # not a real transition; shows the id was forgotten
        assert [i.instance_id for i in tracker.live(control.state())] == ["a"]


class TestUniques:
    def test_parse_forms_and_errors(self):
        u = UniqueValues.from_conf({"unique_key": "slot", "unique_values": "a, b"})
        assert u == UniqueValues("slot", ("a", "b"))
        assert UniqueValues.from_conf({}) is None
        # as in the original: a key without values, values without a key, or
        # blank values mean nothing is unique
        assert UniqueValues.from_conf({"unique_values": ["a"]}) is None
        assert UniqueValues.from_conf({"unique_key": "slot"}) is None
        assert UniqueValues.from_conf({"unique_key": "slot", "unique_values": " , "}) is None
        assert UniqueValues.from_conf({"unique_key": "slot", "unique_values": []}) is None
        # list items keep their JSON type
        typed = UniqueValues.from_conf({"unique_key": "slot", "unique_values": [1, "2", 3.5]})
        assert typed.values == (1, "2", 3.5)
        with pytest.raises(BadRequestError, match="unique_values items"):
            UniqueValues.from_conf({"unique_key": "slot", "unique_values": [[1]]})
        with pytest.raises(BadRequestError, match="unique_key must be"):
            UniqueValues.from_conf({"unique_key": 3, "unique_values": ["a"]})

    def test_free_values_skip_held_ones(self):
        u = UniqueValues("slot", ("a", "b", "c"))
        live = [
            make_instance("x", extravars={"slot": "b"}),
            make_instance("y", extravars={"other": "a"}),
            make_instance("z"),
        ]
        assert u.free_values(live) == ["a", "c"]
        assert u.held_by(live[0]) == "b"
        assert u.held_by(live[2]) is None

    def test_unhealthy_instance_is_not_free_of_its_value_while_live(self):
        u = UniqueValues("slot", ("a",))
        sick = make_instance("x", S.RUNNING, health=H.MISSING, extravars={"slot": "a"})
        assert u.free_values([sick]) == []
