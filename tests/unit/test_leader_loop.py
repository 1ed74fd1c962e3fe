"""LeaderLoop: passes, wake-ups, deposing, failures and new terms (each a ``Term``)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from epum.leader_loop import LeaderLoop
from epum.term import Term

LONG = 3600.0  # an interval no test waits out
PROMPT = 5.0  # how long a test waits for something that should happen at once


class Recorder(LeaderLoop):
    """Counts passes and signals each one; fails on the passes told to."""

    def __init__(self, interval: float = LONG, fail_on: tuple[int, ...] = ()):
        self.now = 1000.0
        super().__init__("test", interval, clock=lambda: self.now)
        self.passes: list[float] = []
        self.elected = 0
        self.fail_on = fail_on
        self.cond = threading.Condition()

    def on_elected(self) -> None:
        self.elected += 1

    def run_pass(self, now: float) -> None:
        with self.cond:
            self.passes.append(now)
            self.cond.notify_all()
        if len(self.passes) in self.fail_on:
            raise RuntimeError(f"pass {len(self.passes)} fails")

    def wait_passes(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.passes) >= n, timeout=PROMPT), (
                f"only {len(self.passes)} passes, wanted {n}"
            )


@pytest.fixture
def run():
    """Start loops' inaugurate(term) in threads (a new term each unless given one);
    end the terms and join the threads at the end."""
    started: list[tuple[Term, threading.Thread]] = []
    numbers = iter(range(1, 1000))

    def start(loop: LeaderLoop, term: Term | None = None) -> threading.Thread:
        term = term if term is not None else Term(loop.name, next(numbers))
        thread = threading.Thread(target=loop.inaugurate, args=(term,), name="leader-loop-test")
        started.append((term, thread))
        thread.start()
        return thread

    yield start
    for term, thread in started:
        term.end()
        thread.join(timeout=PROMPT)


def test_follower_at_start():
    loop = Recorder()
    assert not loop.is_leader
    assert not loop.deposed
    assert loop.term.identity == ("test", None, None, 0)  # the unelected term


def test_inaugurate_runs_on_elected_then_a_first_pass_at_once(run):
    loop = Recorder()
    run(loop)
    loop.wait_passes(1)
    assert loop.elected == 1
    assert loop.passes == [1000.0]
    assert loop.is_leader


def test_passes_repeat_every_interval_with_the_clock_time(run):
    loop = Recorder(interval=0.001)
    run(loop)
    loop.wait_passes(3)
    loop.now = 2000.0
    n = len(loop.passes)
    loop.wait_passes(n + 2)
    assert loop.passes[0] == 1000.0
    assert loop.passes[-1] == 2000.0


def test_wake_runs_a_pass_now(run):
    loop = Recorder()
    run(loop)
    loop.wait_passes(1)
    loop.wake()
    loop.wait_passes(2)
    loop.wake()
    loop.wait_passes(3)
    assert len(loop.passes) == 3


def test_depose_returns_promptly_and_inaugurate_ends(run):
    loop = Recorder()
    thread = run(loop)
    loop.wait_passes(1)
    started = time.monotonic()
    loop.depose()
    assert time.monotonic() - started < 0.5
    thread.join(timeout=PROMPT)
    assert not thread.is_alive()
    assert loop.deposed
    assert not loop.is_leader


def test_depose_during_a_pass_lets_it_finish_and_starts_no_other(run):
    entered, release = threading.Event(), threading.Event()

    class Slow(Recorder):
        def run_pass(self, now: float) -> None:
            super().run_pass(now)
            entered.set()
            release.wait(PROMPT)
            self.saw_deposed = self.deposed

    loop = Slow(interval=0.0)
    thread = run(loop)
    assert entered.wait(PROMPT)
    loop.depose()  # does not wait for the pass
    assert thread.is_alive()
    assert not loop.is_leader
    release.set()
    thread.join(timeout=PROMPT)
    assert not thread.is_alive()
    assert loop.saw_deposed
    assert len(loop.passes) == 1


def test_a_failing_pass_is_logged_and_the_loop_goes_on(run, caplog):
    loop = Recorder(interval=0.001, fail_on=(1, 2))
    with caplog.at_level(logging.ERROR, logger="epum.leader_loop"):
        run(loop)
        loop.wait_passes(4)
    assert loop.is_leader
    failures = [r for r in caplog.records if "pass failed" in r.getMessage()]
    assert len(failures) == 2
    assert failures[0].exc_info is not None


def test_a_failing_on_elected_is_logged_and_passes_still_run(run, caplog):
    class BadStart(Recorder):
        def on_elected(self) -> None:
            raise RuntimeError("no provisioner")

    loop = BadStart()
    with caplog.at_level(logging.ERROR, logger="epum.leader_loop"):
        run(loop)
        loop.wait_passes(1)
    assert any("on_elected failed" in r.getMessage() for r in caplog.records)


def test_the_end_of_the_term_deposes_like_depose(run):
    loop = Recorder()
    term = Term("test", 1)
    thread = run(loop, term)
    loop.wait_passes(1)
    assert loop.term is term
    term.end()
    thread.join(timeout=PROMPT)
    assert not thread.is_alive()
    assert loop.deposed
    assert not loop.is_leader
    assert loop.term is term  # stays the ended term until the next one


def test_inaugurate_again_after_depose_starts_a_new_term(run):
    loop = Recorder()
    first = run(loop)
    loop.wait_passes(1)
    old = loop.term
    loop.depose()
    first.join(timeout=PROMPT)
    assert not first.is_alive()
    assert old.ended

    run(loop)
    loop.wait_passes(2)
    assert loop.elected == 2
    assert loop.is_leader
    assert not loop.deposed
    assert loop.term is not old
    assert loop.term.identity != old.identity


def test_a_new_term_never_inherits_a_stale_stop(run):
    loop = Recorder()
    first = run(loop)
    loop.wait_passes(1)
    old = loop.term
    old.end()
    first.join(timeout=PROMPT)

    run(loop)
    loop.wait_passes(2)
    old.end()  # a late signal meant for the old term
    loop.wake()
    loop.wait_passes(3)  # the new term still runs passes
    assert loop.is_leader
    assert not loop.term.ended


def test_a_depose_before_inaugurate_ends_only_the_term_then_current(run):
    loop = Recorder()
    loop.depose()  # ends the unelected term: hand passes bail out
    assert loop.deposed
    run(loop)
    loop.wait_passes(1)
    assert loop.is_leader


def test_an_early_end_of_the_term_is_never_lost(run):
    loop = Recorder()
    term = Term("test", 1)
    term.end()  # deposed before the role got to its term
    thread = run(loop, term)
    thread.join(timeout=PROMPT)
    assert not thread.is_alive()
    assert loop.elected == 0
    assert loop.passes == []
    assert not loop.is_leader


def test_a_term_that_ends_while_on_elected_runs_gets_no_pass(run):
    class SlowStart(Recorder):
        def on_elected(self) -> None:
            super().on_elected()
            self.term.end()  # e.g. the connection wavered meanwhile

    loop = SlowStart()
    thread = run(loop)
    thread.join(timeout=PROMPT)
    assert not thread.is_alive()
    assert loop.elected == 1
    assert loop.passes == []


def test_inaugurate_needs_a_term():
    with pytest.raises(ValueError, match="needs a Term"):
        Recorder().inaugurate(None)  # type: ignore[arg-type]


def test_inaugurate_twice_at_once_is_refused(run):
    loop = Recorder()
    run(loop)
    loop.wait_passes(1)
    with pytest.raises(RuntimeError, match="already leading"):
        loop.inaugurate(Term("test", 99))
    assert loop.is_leader


def test_run_pass_by_hand_without_leading():
    loop = Recorder()
    loop.run_pass(5.0)
    assert loop.passes == [5.0]
    assert not loop.is_leader
