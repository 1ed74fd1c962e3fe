"""The store backends the contract tests run against, by name.

``make_store(name, request)`` returns an initialized store in a fresh
namespace and registers its shutdown with ``request``.
"""

from __future__ import annotations

from epum.store import MemoryEPUMStore

BACKENDS = ["memory"]


def make_store(name: str, request):
    if name == "memory":
        store = MemoryEPUMStore()
    else:  # pragma: no cover - each backend is registered above
        raise ValueError(name)
    store.initialize()
    request.addfinalizer(store.shutdown)
    return store
