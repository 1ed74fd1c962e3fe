"""PassLog.writing_behind: a pass's decision-log writes on threads of their own, each
domain's in order, all written when the pass ends, a fenced-off one ending the term."""

from __future__ import annotations

import threading

import pytest

from epum.errors import NotLeaderError
from epum.pass_log import PassLog
from epum.settings import EPUMSettings
from epum.term import Term
from tests.kit import wait_until


class LogOnly:
    """The part of a DomainStore the log writes to: ``append_history``, which can be
    held up (``gate``) or refuse the write as a store fencing off a deposed term would."""

    def __init__(self, name: str, gate: threading.Event | None = None, fenced: bool = False):
        self.key = ("owner", name)
        self.written: list[dict] = []
        self.threads: set[str] = set()
        self.gate = gate
        self.fenced = fenced

    def append_history(self, entries, max_entries, max_age, now, term=None):
        if self.gate is not None:
            self.gate.wait(10)
        if self.fenced:
            raise NotLeaderError("the seat is gone")
        self.threads.add(threading.current_thread().name)
        self.written.extend(entries)


def test_each_domains_entries_are_written_in_order_and_all_before_the_pass_ends():
    log = PassLog("w1", EPUMSettings())
    term = Term("decider", 1)
    domains = [LogOnly(f"d{i}") for i in range(5)]
    with log.writing_behind(writers=3, timeout=10):
        for n in range(20):
            for domain in domains:
                log.append(domain, [{"n": n}], now=0.0, term=term)
    for domain in domains:
        assert [e["n"] for e in domain.written] == list(range(20))
        assert all(name.startswith("epum-decision-log") for name in domain.threads)
    assert not term.ended


def test_a_slow_write_does_not_hold_up_another_domains():
    log = PassLog("w1", EPUMSettings())
    term = Term("decider", 1)
    gate = threading.Event()
    slow, fast = LogOnly("slow", gate=gate), LogOnly("fast")
    done = threading.Event()

    def writes() -> None:
        with log.writing_behind(writers=2, timeout=10):
            log.append(slow, [{"n": 0}], now=0.0, term=term)
            log.append(fast, [{"n": 0}], now=0.0, term=term)
            # the fast domain's entry is written while the slow one's still waits
            wait_until(lambda: fast.written, 5)
            gate.set()
        done.set()

    writer = threading.Thread(target=writes, name="pass")
    writer.start()
    writer.join(10)
    assert done.is_set() and slow.written == [{"n": 0}] and fast.written == [{"n": 0}]


def test_a_write_the_store_fences_off_ends_the_term_and_writes_nothing():
    log = PassLog("w1", EPUMSettings())
    term = Term("decider", 1)
    fenced = LogOnly("fenced", fenced=True)
    with log.writing_behind(writers=2, timeout=10):
        log.append(fenced, [{"n": 0}], now=0.0, term=term)
    assert term.ended and fenced.written == []


def test_outside_a_pass_a_write_is_made_at_once_and_a_fenced_one_raises():
    log = PassLog("w1", EPUMSettings())
    term = Term("decider", 1)
    domain = LogOnly("d")
    log.append(domain, [{"n": 0}], now=0.0, term=term)
    assert domain.written == [{"n": 0}] and domain.threads == {threading.current_thread().name}
    with pytest.raises(NotLeaderError):
        log.append(LogOnly("f", fenced=True), [{"n": 0}], now=0.0, term=term)


def test_a_write_queued_behind_the_end_of_its_term_is_not_made():
    log = PassLog("w1", EPUMSettings())
    term = Term("decider", 1)
    gate = threading.Event()
    ahead, behind = LogOnly("d", gate=gate), LogOnly("d")  # one domain: one writer, in order
    with log.writing_behind(writers=1, timeout=10):
        log.append(ahead, [{"n": 0}], now=0.0, term=term)
        log.append(behind, [{"n": 1}], now=0.0, term=term)
        term.end()
        gate.set()
    assert behind.written == []
