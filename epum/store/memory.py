"""The in-memory store: one process, no persistence, same contract as ZooKeeper.

Used by tests, the demo and single-worker deployments that accept losing
state on restart.  Every value is deep-copied on the way in and out, so no
caller can change stored state behind the store's back, and checked to be
JSON as the ZooKeeper store would store it (``CorruptDataError`` if not).
After ``shutdown()`` every operation raises ``StoreUnavailableError``.
Change listeners are called for the same writes as on ZooKeeper: every
write that changes a domain, none for one that changes nothing.
"""

from __future__ import annotations

import copy
import itertools
import logging
import threading
from typing import Any

from epum.decisions import bounded
from epum.errors import NotFoundError, StoreUnavailableError, WriteConflictError
from epum.instances import Instance
from epum.store.base import (
    CONFIG_SECTIONS,
    ChangeListener,
    DomainStore,
    EPUMStore,
    Leader,
    check_section,
    notify_listeners,
)
from epum.store.codec import dump
from epum.store.memory_elections import MemoryElections
from epum.term import Term

log = logging.getLogger(__name__)


class MemoryDomainStore(DomainStore):
    """A domain held in memory by a ``MemoryEPUMStore``."""

    def __init__(self, store: MemoryEPUMStore, owner: str, domain_id: str, config: dict):
        super().__init__(owner, domain_id)
        self._store = store
        self._lock = store._lock
        self._config = {s: copy.deepcopy(config.get(s) or {}) for s in CONFIG_SECTIONS}
        self._versions = dict.fromkeys(CONFIG_SECTIONS, 0)
        self._removed = False
        self._subscribers: list[tuple[str, str]] = []
        self._sensor_data: dict[str, Any] = {}
        self._instances: dict[str, tuple[dict, int]] = {}
        self._history: list[dict[str, Any]] = []
        self._stamp = next(store._stamps)

    def _touch(self) -> None:
        """Give the domain a new change stamp (call under the lock, with the write)."""
        self._stamp = next(self._store._stamps)

    def _changed(self) -> None:
        self._store._notify(self.owner, self.domain_id)

    def change_stamp(self) -> int:
        """A number drawn afresh (store-wide) by every write that changes the domain."""
        return self._stamp

    def _open(self) -> None:
        self._store._check_open()

    def get_all_config(self) -> dict[str, dict[str, Any]]:
        self._open()
        with self._lock:
            return copy.deepcopy(self._config)

    def get_versioned_config(self, section: str) -> tuple[dict[str, Any], int]:
        self._open()
        check_section(section)
        with self._lock:
            return copy.deepcopy(self._config[section]), self._versions[section]

    def update_config(self, changes: dict[str, dict[str, Any]]) -> None:
        self._open()
        for section in changes:
            check_section(section)
        if not changes:
            return
        dump(changes, "config")
        with self._lock:
            for section, values in changes.items():
                self._config[section].update(copy.deepcopy(values))
                self._versions[section] += 1
            self._touch()
        self._changed()

    def is_removed(self) -> bool:
        self._open()
        with self._lock:
            return self._removed

    def mark_removed(self) -> None:
        self._open()
        with self._lock:
            if self._removed:
                return
            self._removed = True
            self._touch()
        self._changed()

    def get_subscribers(self) -> list[tuple[str, str]]:
        self._open()
        with self._lock:
            return list(self._subscribers)

    def add_subscriber(self, name: str, op: str) -> None:
        self._open()
        with self._lock:
            if (name, op) in self._subscribers:
                return
            subs = [s for s in self._subscribers if s[0] != name]
            if len(subs) == len(self._subscribers):
                subs.append((name, op))
            else:
                subs = [(n, op if n == name else o) for n, o in self._subscribers]
            self._subscribers = subs
            self._touch()
        self._changed()

    def remove_subscriber(self, name: str) -> bool:
        self._open()
        with self._lock:
            before = len(self._subscribers)
            self._subscribers = [s for s in self._subscribers if s[0] != name]
            removed = len(self._subscribers) != before
            if removed:
                self._touch()
        if removed:
            self._changed()
        return removed

    def get_domain_sensor_data(self) -> dict[str, Any]:
        self._open()
        with self._lock:
            return copy.deepcopy(self._sensor_data)

    def set_domain_sensor_data(self, data: dict[str, Any]) -> None:
        self._open()
        dump(data, "sensor data")
        with self._lock:
            self._sensor_data = copy.deepcopy(data)
            self._touch()
        self._changed()

    def append_history(
        self,
        entries: list[dict[str, Any]],
        max_entries: int,
        max_age: float,
        now: float,
        term: Term | None = None,
    ) -> None:
        self._open()
        if not entries:
            return
        dump(entries, "decision log")
        with self._lock:
            if self._store._domains.get(self.key) is not self:
                raise NotFoundError(f"domain {self.domain_id} of {self.owner} not found")
            if term is not None:
                self._store._fence(term, self)
            self._history = [
                copy.deepcopy(dict(e))
                for e in bounded([*self._history, *entries], max_entries, max_age, now)
            ]

    def get_history(self) -> list[dict[str, Any]]:
        self._open()
        with self._lock:
            return copy.deepcopy(self._history)

    def confirm_term(self, term: Term) -> None:
        self._open()
        with self._lock:
            self._store._fence(term, self)

    def add_instance(self, instance: Instance, term: Term | None = None) -> Instance:
        self._open()
        dump(instance.to_dict(), f"instance {instance.instance_id}")
        with self._lock:
            if term is not None:
                self._store._fence(term, self)
            if instance.instance_id in self._store._index:
                raise WriteConflictError(f"instance {instance.instance_id} already exists")
            self._instances[instance.instance_id] = (instance.to_dict(), 0)
            self._store._index[instance.instance_id] = self.key
            self._touch()
        self._changed()
        return instance.replace(version=0)

    def update_instance(self, instance: Instance, term: Term | None = None) -> Instance:
        self._open()
        dump(instance.to_dict(), f"instance {instance.instance_id}")
        with self._lock:
            if term is not None:
                self._store._fence(term, self)
            stored = self._instances.get(instance.instance_id)
            if stored is None:
                raise NotFoundError(f"instance {instance.instance_id} not found")
            if stored[1] != instance.version:
                raise WriteConflictError(
                    f"instance {instance.instance_id} changed since version {instance.version}"
                )
            version = stored[1] + 1
            self._instances[instance.instance_id] = (instance.to_dict(), version)
            self._touch()
        self._changed()
        return instance.replace(version=version)

    def get_instance(self, instance_id: str) -> Instance | None:
        self._open()
        with self._lock:
            stored = self._instances.get(instance_id)
            if stored is None:
                return None
            return Instance.from_dict(copy.deepcopy(stored[0]), version=stored[1])

    def get_instances(self) -> list[Instance]:
        self._open()
        with self._lock:
            return [
                Instance.from_dict(copy.deepcopy(d), version=v)
                for _, (d, v) in sorted(self._instances.items())
            ]

    def remove_instance(self, instance_id: str) -> None:
        self._open()
        with self._lock:
            if self._instances.pop(instance_id, None) is None:
                return
            self._store._index.pop(instance_id, None)
            self._touch()
        self._changed()


class MemoryEPUMStore(EPUMStore):
    """All of epum's state in this process's memory."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._definitions: dict[str, dict] = {}
        self._domains: dict[tuple[str, str], MemoryDomainStore] = {}
        self._index: dict[str, tuple[str, str]] = {}
        self._listeners: list[ChangeListener] = []
        # every domain's change stamps, drawn from one count so no two ever repeat
        self._stamps = itertools.count(1)
        self._closed = threading.Event()
        self._elections = MemoryElections(self._lock, self._closed)

    def _notify(self, owner: str, domain_id: str) -> None:
        notify_listeners(self._listeners, owner, domain_id)

    def _fence(self, term: Term, domain: DomainStore) -> None:
        """NotLeaderError unless ``term`` is in office (call under the lock)."""
        self._elections.fence(term, domain)

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise StoreUnavailableError("the store is shut down")

    def initialize(self) -> None:
        """Nothing to connect; StoreUnavailableError once shut down."""
        self._check_open()

    # definitions
    def add_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        self._check_open()
        dump(definition, f"definition {definition_id}")
        with self._lock:
            if definition_id in self._definitions:
                raise WriteConflictError(f"definition {definition_id} already exists")
            self._definitions[definition_id] = copy.deepcopy(definition)

    def get_domain_definition(self, definition_id: str) -> dict[str, Any] | None:
        self._check_open()
        with self._lock:
            return copy.deepcopy(self._definitions.get(definition_id))

    def update_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        self._check_open()
        dump(definition, f"definition {definition_id}")
        with self._lock:
            if definition_id not in self._definitions:
                raise NotFoundError(f"definition {definition_id} not found")
            self._definitions[definition_id] = copy.deepcopy(definition)

    def remove_domain_definition(self, definition_id: str) -> None:
        self._check_open()
        with self._lock:
            if self._definitions.pop(definition_id, None) is None:
                raise NotFoundError(f"definition {definition_id} not found")

    def list_domain_definitions(self) -> list[str]:
        self._check_open()
        with self._lock:
            return sorted(self._definitions)

    # domains
    def add_domain(self, owner: str, domain_id: str, config: dict[str, Any]) -> DomainStore:
        self._check_open()
        dump({s: config.get(s) or {} for s in CONFIG_SECTIONS}, "config")
        with self._lock:
            if (owner, domain_id) in self._domains:
                raise WriteConflictError(f"domain {domain_id} of {owner} already exists")
            domain = MemoryDomainStore(self, owner, domain_id, config)
            self._domains[(owner, domain_id)] = domain
        self._notify(owner, domain_id)
        return domain

    def get_domain(self, owner: str, domain_id: str) -> DomainStore | None:
        self._check_open()
        with self._lock:
            return self._domains.get((owner, domain_id))

    def list_domains_by_owner(self, owner: str) -> list[str]:
        self._check_open()
        with self._lock:
            return sorted(d for o, d in self._domains if o == owner)

    def get_all_domains(self) -> list[DomainStore]:
        self._check_open()
        with self._lock:
            return [self._domains[key] for key in sorted(self._domains)]

    def remove_domain(self, owner: str, domain_id: str) -> None:
        self._check_open()
        with self._lock:
            domain = self._domains.pop((owner, domain_id), None)
            if domain is None:
                return
            for instance_id in domain._instances:
                self._index.pop(instance_id, None)
            domain._touch()
        self._notify(owner, domain_id)

    def get_domain_for_instance_id(self, instance_id: str) -> DomainStore | None:
        self._check_open()
        with self._lock:
            key = self._index.get(instance_id)
            return self._domains.get(key) if key else None

    def add_change_listener(self, listener: ChangeListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    # elections: ``epum.store.memory_elections`` (one process; the first contender
    # of a role leads until its term ends, later ones wait their turn)
    def _contend(self, role: str, leader: Leader) -> None:
        self._elections.contend(role, leader)

    def new_term(self, role: str) -> Term:
        """A new term of ``role``, in office (its writes pass the fence) until it ends.

        For driving a leader by hand (tests): nothing else stops a second
        term of the role being in office at the same time.
        StoreUnavailableError once shut down.
        """
        return self._elections.new_term(role)

    def shutdown(self) -> None:
        with self._lock:
            self._closed.set()
        self._elections.shutdown()
