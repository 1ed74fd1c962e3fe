"""LeaderLoop: passes, wake-ups, deposing, failures and new terms."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from epum.leader_loop import LeaderLoop

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
    """Start loops' inaugurate() in threads; depose and join them at the end."""
    started: list[tuple[LeaderLoop, threading.Thread]] = []

    def start(loop: LeaderLoop) -> threading.Thread:
        thread = threading.Thread(target=loop.inaugurate, name="leader-loop-test")
        started.append((loop, thread))
        thread.start()
        return thread

    yield start
    for loop, thread in started:
        loop.depose()
        thread.join(timeout=PROMPT)


def test_follower_at_start():
    loop = Recorder()
    assert not loop.is_leader
    assert not loop.deposed


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


def test_inaugurate_again_after_depose_starts_a_new_term(run):
    loop = Recorder()
    first = run(loop)
    loop.wait_passes(1)
    loop.depose()
    first.join(timeout=PROMPT)
    assert not first.is_alive()

    run(loop)
    loop.wait_passes(2)
    assert loop.elected == 2
    assert loop.is_leader
    assert not loop.deposed


def test_a_depose_before_inaugurate_is_forgotten_by_the_new_term(run):
    loop = Recorder()
    loop.depose()
    assert loop.deposed
    run(loop)
    loop.wait_passes(1)
    assert loop.is_leader


def test_inaugurate_twice_at_once_is_refused(run):
    loop = Recorder()
    run(loop)
    loop.wait_passes(1)
    with pytest.raises(RuntimeError, match="already leading"):
        loop.inaugurate()
    assert loop.is_leader


def test_run_pass_by_hand_without_leading():
    loop = Recorder()
    loop.run_pass(5.0)
    assert loop.passes == [5.0]
    assert not loop.is_leader
