"""The store backends the contract tests run against, by name.

``make_store(name, request)`` returns an initialized store in a fresh
namespace and registers its shutdown with ``request``.  The ``zookeeper``
backend uses the session's test server (the ``zk_server`` fixture from
``tests/zk_server.py``) and a fresh base path per test; its parameter in
``BACKENDS`` carries the ``zookeeper`` marker, so ``-m "not zookeeper"``
runs the contract on memory alone.
"""

from __future__ import annotations

import pytest

from epum.settings import ZooKeeperSettings
from epum.store import MemoryEPUMStore

BACKENDS = ["memory", pytest.param("zookeeper", marks=pytest.mark.zookeeper)]


def make_store(name: str, request):
    if name == "memory":
        store = MemoryEPUMStore()
    elif name == "zookeeper":
        from epum.store.zookeeper import ZooKeeperEPUMStore

        server = request.getfixturevalue("zk_server")
        base_path = request.getfixturevalue("zk_base_path")
        settings = ZooKeeperSettings(hosts=server.hosts, path=base_path, timeout=10.0)
        store = ZooKeeperEPUMStore(settings, worker_name="contract")
    else:  # pragma: no cover - each backend is registered above
        raise ValueError(name)
    store.initialize()
    request.addfinalizer(store.shutdown)
    return store
