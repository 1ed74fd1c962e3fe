"""Shared fixtures and hooks: every test fails loudly on leaked threads, and a test that
uses the ZooKeeper or RabbitMQ test kit carries the marker that selects it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from epum.logcontext import LogContextFilter
from tests import fault_report
from tests.kit import threads_left

#: ``pytester`` lets ``tests/unit/test_kit.py`` collect a small suite with these hooks.
pytest_plugins = ["pytester"]

#: How long, in all, the leaked-thread check waits for a test's threads to end.
THREAD_SETTLE = 5.0

#: The test-kit modules whose fixtures need a server, and the marker each implies.
SERVER_KITS = {"tests.zk_server": "zookeeper", "tests.rabbit": "rabbitmq"}


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--fault-matrix``: run every case of ``tests/system/test_fault_matrix.py``."""
    parser.addoption(
        "--fault-matrix",
        action="store_true",
        help="run the whole fault matrix (the normal run takes its fault_subset cases)",
    )


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the fault matrix's report when any of its cases ran."""
    for line in fault_report.lines():
        terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a fixture of ``tests/zk_server.py`` (``zookeeper``) or
    ``tests/rabbit.py`` (``rabbitmq``), directly or through another fixture and under
    whatever name a module gave it, so ``-m "not zookeeper and not rabbitmq"`` runs
    with neither server.  (A backend chosen at run time, as in ``tests/store_backends.py``,
    carries its marker on its parameter.)

    Without ``--fault-matrix``, the fault-matrix cases not marked
    ``fault_subset`` are deselected."""
    if not config.getoption("--fault-matrix", default=False):
        full_only = {
            item
            for item in items
            if item.get_closest_marker("fault_matrix")
            and not item.get_closest_marker("fault_subset")
        }
        if full_only:
            config.hook.pytest_deselected(items=list(full_only))
            items[:] = [item for item in items if item not in full_only]
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        for defs in info.name2fixturedefs.values():
            for fixturedef in defs:
                marker = SERVER_KITS.get(getattr(fixturedef.func, "__module__", ""))
                if marker is not None and item.get_closest_marker(marker) is None:
                    item.add_marker(marker)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves one of its threads running.

    The rule (``tests.kit.threads_left``), for threads started during the
    test and alive once it and its fixtures are done: a thread of epum's
    (its name starts with ``epum-``, ``tests.kit.EPUM_THREAD_PREFIX``),
    daemon or not, and any non-daemon thread are joined for up to
    ``THREAD_SETTLE`` seconds in all, and the test fails if one is still
    alive.  Other daemon threads are ignored: they belong to libraries
    (kazoo's and kombu's workers) that end them on their own schedule,
    which a test cannot control.
    """
    before = set(threading.enumerate())
    yield
    leaked = threads_left(before, THREAD_SETTLE)
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """pytest's caplog with epum's ``LogContextFilter`` on its handler, as the worker's
    logging config has it: captured records carry request_id, op, caller and domain."""
    context_filter = LogContextFilter()
    caplog.handler.addFilter(context_filter)
    yield caplog
    caplog.handler.removeFilter(context_filter)
