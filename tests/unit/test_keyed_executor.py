"""KeyedExecutor: one key's jobs in submission order, one at a time; other keys alongside."""

from __future__ import annotations

import threading

import pytest

from epum.keyed import KeyedExecutor
from tests.kit import wait_until


def test_jobs_of_one_key_run_in_submission_order_and_never_overlap():
    executor = KeyedExecutor(4)
    seen: list[int] = []
    running = []
    overlapped = threading.Event()

    def job(value: int):
        def run():
            running.append(value)
            if len(running) > 1:
                overlapped.set()
            seen.append(value)
            running.remove(value)

        return run

    for value in range(200):
        executor.submit("one", job(value))
    assert executor.wait_idle(10)
    executor.shutdown()
    assert seen == list(range(200)) and not overlapped.is_set()


def test_a_slow_key_does_not_hold_up_another_key():
    executor = KeyedExecutor(2)
    release = threading.Event()
    done: list[str] = []
    executor.submit("slow", lambda: (release.wait(10), done.append("slow")))
    executor.submit("slow", lambda: done.append("slow-2"))
    executor.submit("fast", lambda: done.append("fast"))
    wait_until(lambda: done == ["fast"] and executor.unfinished == 2, 5)
    release.set()
    assert executor.wait_idle(5)
    executor.shutdown()
    assert done == ["fast", "slow", "slow-2"]


def test_a_failing_job_is_logged_and_the_next_job_of_its_key_still_runs(caplog):
    executor = KeyedExecutor(1)
    done: list[str] = []

    def fail():
        raise RuntimeError("boom")

    executor.submit("k", fail)
    executor.submit("k", lambda: done.append("next"))
    assert executor.wait_idle(5)
    executor.shutdown()
    assert done == ["next"] and "boom" in caplog.text


def test_no_job_is_taken_after_shutdown_and_none_is_left_counted():
    executor = KeyedExecutor(1)
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit("k", lambda: None)
    assert executor.unfinished == 0 and executor.wait_idle(0.1)


def test_an_executor_needs_a_worker():
    with pytest.raises(ValueError, match="at least 1"):
        KeyedExecutor(0)


def test_a_job_alone_runs_after_every_job_before_it_and_before_every_job_after_it():
    executor = KeyedExecutor(4)
    release = threading.Event()
    log: list[str] = []
    lock = threading.Lock()

    def note(what: str, wait: threading.Event | None = None):
        def run():
            if wait is not None:
                wait.wait(10)
            with lock:
                log.append(what)

        return run

    executor.submit("a", note("a1", release))
    executor.submit("b", note("b1"))
    executor.submit("serial", note("call"), alone=True)
    executor.submit("c", note("c1"))
    executor.submit("a", note("a2"))
    # the call waits for a1; c1 and a2 wait for the call
    wait_until(lambda: log == ["b1"] and executor.unfinished == 4, 5)
    release.set()
    assert executor.wait_idle(5)
    executor.shutdown()
    assert log[:3] == ["b1", "a1", "call"] and sorted(log[3:]) == ["a2", "c1"]


def test_jobs_alone_keep_their_order_with_each_other():
    executor = KeyedExecutor(3)
    log: list[int] = []
    for value in range(50):
        if value % 5 == 0:
            executor.submit("serial", lambda v=value: log.append(v), alone=True)
        else:
            executor.submit(value % 3, lambda v=value: log.append(v))
    assert executor.wait_idle(10)
    executor.shutdown()
    calls = [v for v in log if v % 5 == 0]
    assert calls == list(range(0, 50, 5))
    for call in calls:  # every job before a call ran before it, every job after it after
        position = log.index(call)
        assert set(log[:position]) == set(range(call)), call
