"""Term: a stop token that ends once, from any thread, and tells who waits."""

from __future__ import annotations

import threading

import pytest

from epum.term import Term

PROMPT = 5.0


def test_a_new_term_is_in_office():
    term = Term("decider", 3, seat="/epum/elections/decider/x__lock__0000000003", session=0x1F)
    assert not term.ended
    assert not term.wait(0)
    assert term.identity == ("decider", "/epum/elections/decider/x__lock__0000000003", 0x1F, 3)
    assert "in office" in repr(term) and "0x1f" in repr(term)


def test_end_ends_it_once_and_for_all():
    term = Term("doctor", 1)
    assert term.end() is True
    assert term.end() is False
    assert term.ended
    assert term.wait(0)
    assert "ended" in repr(term)


def test_wait_returns_when_another_thread_ends_it():
    term = Term("reaper", 1)
    ender = threading.Thread(target=term.end)
    ender.start()
    assert term.wait(PROMPT)
    ender.join(PROMPT)


def test_end_callbacks_run_once_at_the_end_or_at_once_if_ended(caplog):
    term = Term("decider", 1)
    calls: list[str] = []
    term.add_end_callback(lambda: calls.append("early"))

    def broken() -> None:
        raise RuntimeError("boom")

    term.add_end_callback(broken)
    assert calls == []
    term.end()
    term.end()
    assert calls == ["early"]
    assert any("end callback failed" in r.getMessage() for r in caplog.records)
    term.add_end_callback(lambda: calls.append("late"))
    assert calls == ["early", "late"]


def test_ending_one_term_leaves_another_alone():
    first, second = Term("decider", 1), Term("decider", 2)
    first.end()
    assert not second.ended
    assert first.identity != second.identity


def test_the_unelected_term_has_number_zero_and_no_seat():
    term = Term.unelected("doctor")
    assert term.identity == ("doctor", None, None, 0)
    assert not term.ended


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"role": "", "number": 1}, "role"),
        ({"role": None, "number": 1}, "role"),
        ({"role": "decider", "number": -1}, "number"),
        ({"role": "decider", "number": True}, "number"),
        ({"role": "decider", "number": "1"}, "number"),
        ({"role": "decider", "number": 1, "seat": ""}, "seat"),
        ({"role": "decider", "number": 1, "session": "abc"}, "session"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, what):
    with pytest.raises(ValueError, match=what):
        Term(**kwargs)
