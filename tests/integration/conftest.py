"""Integration fixtures: the ZooKeeper test server and its helpers.

The fixtures live in ``tests/zk_server.py``; importing them here makes them
available to every integration test.  The report hook lets ``zk_base_path``
print the server's log when a test fails.
"""

from __future__ import annotations

import pytest

from tests.zk_server import zk_base_path, zk_proxy, zk_server, zk_store_factory

__all__ = ["zk_base_path", "zk_proxy", "zk_server", "zk_store_factory"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (``item.rep_call``)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
