"""The test kit itself: waiting on conditions, counting passes, the leaked-thread rule,
and the hook that marks the tests that need a server."""

from __future__ import annotations

import textwrap
import threading

import pytest

from tests.kit import PassCounter, WaitTimeout, threads_left, wait_until


def test_wait_until_returns_the_first_truthy_value():
    values = iter([None, 0, [], {"got": 1}, "later"])
    assert wait_until(lambda: next(values), 5) == {"got": 1}


def test_wait_until_names_what_it_waited_for_and_the_last_value():
    with pytest.raises(WaitTimeout, match=r"after 0.02s waiting for the moon \(last value: 0\)"):
        wait_until(lambda: 0, 0.02, "the moon")


def test_wait_until_names_a_lambda_by_its_source_by_default():
    state = {"ready": False}
    with pytest.raises(WaitTimeout, match=r"waiting for .*state\[\"ready\"\] is True"):
        wait_until(lambda: state["ready"] is True, 0.02)


def test_wait_until_calls_a_function_for_the_message_only_when_it_fails():
    described: list[int] = []

    def what() -> str:
        described.append(1)
        return "a described state"

    assert wait_until(lambda: True, 1, what) is True
    assert described == []
    with pytest.raises(WaitTimeout, match="a described state"):
        wait_until(lambda: False, 0.02, what)
    assert described == [1]


def test_wait_until_a_failing_predicate_fails_at_once():
    calls: list[int] = []

    def broken() -> bool:
        calls.append(1)
        raise KeyError("gone")

    with pytest.raises(KeyError, match="gone"):
        wait_until(broken, 60)
    assert calls == [1]


def test_wait_until_failures_are_assertion_errors():
    assert issubclass(WaitTimeout, AssertionError)  # pytest reports them as failed checks


@pytest.mark.parametrize(("timeout", "interval"), [(0, 0.1), (-1, 0.1), (1, 0), (1, -0.5)])
def test_wait_until_refuses_a_timeout_or_interval_that_is_not_positive(timeout, interval):
    with pytest.raises(ValueError, match="must be positive"):
        wait_until(lambda: True, timeout, interval=interval)


class Role:
    """Enough of a LeaderLoop for PassCounter: a name and ``run_pass``."""

    name = "fake-decider"

    def __init__(self) -> None:
        self.seen: list[float] = []

    def run_pass(self, now: float) -> None:
        self.seen.append(now)


def test_pass_counter_waits_for_more_passes_of_one_role():
    role = Role()
    counter = PassCounter(role)
    role.run_pass(1.0)
    assert counter.passes == 1 and role.seen == [1.0]
    stop = threading.Event()

    def loop() -> None:  # a leading loop: passes until stopped
        while not stop.is_set():
            role.run_pass(2.0)

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        at_least = counter.passes + 3
        assert counter.wait_for_more(3, timeout=10) >= at_least
    finally:
        stop.set()
        worker.join(10)
    assert len(role.seen) == counter.passes
    Role().run_pass(5.0)  # only the one object is counted
    assert len(role.seen) == counter.passes


def test_pass_counter_counts_a_pass_that_raises_and_names_the_role_on_timeout():
    class Failing(Role):
        def run_pass(self, now: float) -> None:
            raise RuntimeError("pass failed")

    role = Failing()
    counter = PassCounter(role)
    with pytest.raises(RuntimeError):
        role.run_pass(1.0)
    assert counter.passes == 1
    with pytest.raises(WaitTimeout, match="2 more passes of fake-decider"):
        counter.wait_for_more(2, timeout=0.02)


def test_threads_left_finds_epum_threads_even_daemons_and_ignores_library_daemons():
    release = threading.Event()
    before = set(threading.enumerate())
    started = [
        threading.Thread(target=release.wait, name="epum-decider-election", daemon=True),
        threading.Thread(target=release.wait, name="kazoo-like-worker", daemon=True),
        threading.Thread(target=release.wait, name="a-test-thread"),
        threading.Thread(target=lambda: None, name="epum-quick", daemon=True),
    ]
    for thread in started:
        thread.start()
    try:
        left = threads_left(before, settle=0.05)
    finally:
        release.set()
        for thread in started:
            thread.join(10)
    assert sorted(t.name for t in left) == ["a-test-thread", "epum-decider-election"]
    assert threads_left(before, settle=0.05) == []


def test_threads_left_ignores_threads_that_were_there_before():
    release = threading.Event()
    old = threading.Thread(target=release.wait, name="epum-older", daemon=True)
    old.start()
    try:
        assert threads_left(set(threading.enumerate()), settle=0.01) == []
    finally:
        release.set()
        old.join(10)


SERVER_USERS = """
    from tests import rabbit, zk_server

    amqp_url = rabbit.amqp_url
    zookeeper = zk_server.zk_server  # a module's own name for a kit fixture


    def test_plain():
        pass


    def test_broker(amqp_url):
        pass


    def test_zookeeper(zookeeper):
        pass


    def test_through_a_fixture(zk_store_factory):
        pass
"""


def test_tests_that_use_a_server_fixture_carry_its_marker(pytester: pytest.Pytester):
    pytester.makeini(
        """
        [pytest]
        filterwarnings = error
        markers =
            zookeeper: needs ZooKeeper
            rabbitmq: needs RabbitMQ
        """
    )
    pytester.makeconftest(
        """
        from tests.conftest import pytest_collection_modifyitems
        from tests.zk_server import zk_base_path, zk_server, zk_store_factory
        """
    )
    pytester.makepyfile(test_users=textwrap.dedent(SERVER_USERS))
    offline = pytester.runpytest_inprocess(
        "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "not zookeeper and not rabbitmq"
    )
    assert [line for line in offline.outlines if "::" in line] == ["test_users.py::test_plain"]
    zookeeper = pytester.runpytest_inprocess(
        "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "zookeeper"
    )
    assert [line for line in zookeeper.outlines if "::" in line] == [
        "test_users.py::test_zookeeper",
        "test_users.py::test_through_a_fixture",
    ]
