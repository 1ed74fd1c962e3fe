"""Shared fixtures: every test fails loudly on leaked threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from epum.logcontext import LogContextFilter


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail a test that leaves a non-daemon thread of its own running."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    for t in leaked:
        print(f"waiting for thread {t.name} ({t.ident}) started during the test")
        t.join(timeout=5)
    leaked = [t for t in leaked if t.is_alive()]
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """pytest's caplog with epum's ``LogContextFilter`` on its handler, as the worker's
    logging config has it: captured records carry request_id, op, caller and domain."""
    context_filter = LogContextFilter()
    caplog.handler.addFilter(context_filter)
    yield caplog
    caplog.handler.removeFilter(context_filter)
