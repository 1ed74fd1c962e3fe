"""The store contract: what every backend (memory, ZooKeeper) promises.

Every write is a compare-and-set: a lost race raises ``WriteConflictError``
and the caller retries from a fresh read; a missing entity raises
``NotFoundError``.  Records come back as ``Instance`` objects carrying the
``version`` they were read at, and ``update_instance`` only succeeds if the
stored version is still that one.

Order.  Lists come back sorted, the same on every backend: definition ids
and an owner's domain ids by id, ``get_all_domains`` by ``(owner,
domain_id)``, ``get_instances`` by instance id (comparing the ids as
Python strings, never their encoded forms); subscribers in the order they
first subscribed.

Change listeners are called for the same writes on every backend: each
write that changes a domain (adding or removing it, a config update, the
removal mark, a subscriber added, changed or removed, sensor data set, a
record added, updated or removed), and none for a write that changes
nothing (a subscription already there, an empty config update, marking a
marked domain, removing what is gone).  Definitions and the decision log
(``append_history``) notify no one.  ``DomainStore.change_stamp`` changes
with the same writes (by anyone, once this store shows them), so a reader
such as the decider re-reads a domain only when it changed.

Errors.  A caller's mistake is ``BadRequestError``; a value that cannot be
stored as JSON, or stored data that cannot be decoded, ``CorruptDataError``;
a store shut down (or unreachable) ``StoreUnavailableError``; a store that
cannot be built from its settings ``ConfigError``.

Leadership: ``contend_decider`` / ``contend_doctor`` / ``contend_reaper``
enter a ``Leader`` in that role's election.  When elected, the store creates
a new ``Term`` (``epum.term``) and calls ``leader.inaugurate(term)`` in a
thread of its own; the leader runs the role and returns when ``term`` ends.
The store ends the term when leadership may be lost or at shutdown (an end
that comes before the leader looked at its term is never lost), and also
once ``inaugurate`` has returned, so nothing holding the term acts on.  Each
term is a new object with an identity of its own: no later term inherits
an earlier one's end.  A deposed leader rejoins the election when the store
can again offer leadership.

Fencing.  ``add_instance`` and ``update_instance`` take the writer's
``term``: given one from an election, the write lands only if that term is
still in office when the store applies it, checked in the same step (on
ZooKeeper a ``check`` of the term's election seat znode in the write's own
transaction; in memory under the store's lock), and otherwise raises
``NotLeaderError`` with nothing written.  So a deposed leader's late write
fails even if its process was paused past its session and never saw the
end of its term.  ``confirm_term(term)`` asks the same question without
writing (before a request that follows no write).  An ended term is always
refused; an unelected term (``Term.unelected``, no election seat) is not
fenced beyond that: it is what passes run by hand act under.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol, TypeVar

from epum.errors import BadRequestError, NotFoundError, WriteConflictError
from epum.instances import Instance
from epum.term import Term

#: The sections of a domain config.
CONFIG_SECTIONS = ("general", "engine_conf", "health")

ChangeListener = Callable[[str, str], None]

T = TypeVar("T")

log = logging.getLogger(__name__)


def check_section(section: str) -> None:
    """BadRequestError unless ``section`` is one of ``CONFIG_SECTIONS``."""
    if section not in CONFIG_SECTIONS:
        raise BadRequestError(
            f"unknown config section {section!r}; expected one of {', '.join(CONFIG_SECTIONS)}"
        )


def notify_listeners(listeners: list[ChangeListener], owner: str, domain_id: str) -> None:
    """Tell each listener of a change to a domain; a failing one is logged, the rest still run."""
    for listener in list(listeners):
        try:
            listener(owner, domain_id)
        except Exception:
            log.exception("change listener failed for %s/%s", owner, domain_id)


class Leader(Protocol):
    """A role that can be elected: the decider, the doctor or the reaper."""

    def inaugurate(self, term: Term) -> None:
        """Act as leader until ``term`` ends, then return (at once if it already has)."""


class DomainStore(abc.ABC):
    """One domain of one owner: its config, subscribers and instances.

    A handle: every getter reads the current stored state.
    """

    def __init__(self, owner: str, domain_id: str):
        self.owner = owner
        self.domain_id = domain_id

    @property
    def key(self) -> tuple[str, str]:
        """``(owner, domain_id)``: the domain's identity."""
        return (self.owner, self.domain_id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.owner}/{self.domain_id}>"

    # config ---------------------------------------------------------------
    @abc.abstractmethod
    def get_all_config(self) -> dict[str, dict[str, Any]]:
        """Every config section, as ``{section: dict}``."""

    @abc.abstractmethod
    def get_versioned_config(self, section: str) -> tuple[dict[str, Any], int]:
        """One section and its version; the version rises with each update."""

    def get_config_as(self, section: str, decode: Callable[[dict[str, Any]], T]) -> T:
        """``decode`` of one section's value.

        While the section is unchanged the store may return what the same
        ``decode`` returned before instead of calling it again (what a
        heartbeat reads on every beat), so ``decode`` must depend on the
        section alone and return a value nobody changes.
        """
        return decode(self.get_versioned_config(section)[0])

    @abc.abstractmethod
    def update_config(self, changes: dict[str, dict[str, Any]]) -> None:
        """Merge each given section's keys over the stored ones; bump its version."""

    # removal --------------------------------------------------------------
    @abc.abstractmethod
    def is_removed(self) -> bool:
        """True once the domain is marked for removal."""

    @abc.abstractmethod
    def mark_removed(self) -> None:
        """Mark the domain for removal (the decider finishes it off)."""

    # subscribers ----------------------------------------------------------
    @abc.abstractmethod
    def get_subscribers(self) -> list[tuple[str, str]]:
        """``[(subscriber_name, subscriber_op)]`` in the order they subscribed."""

    @abc.abstractmethod
    def add_subscriber(self, name: str, op: str) -> None:
        """Subscribe ``name`` (replacing its op if already subscribed)."""

    @abc.abstractmethod
    def remove_subscriber(self, name: str) -> bool:
        """Unsubscribe ``name``; False if it was not subscribed."""

    # sensor data ----------------------------------------------------------
    @abc.abstractmethod
    def get_domain_sensor_data(self) -> dict[str, Any]:
        """Domain-wide sensor data (empty dict when none)."""

    @abc.abstractmethod
    def set_domain_sensor_data(self, data: dict[str, Any]) -> None:
        """Replace the domain-wide sensor data."""

    # decision log ---------------------------------------------------------
    @abc.abstractmethod
    def append_history(
        self,
        entries: list[dict[str, Any]],
        max_entries: int,
        max_age: float,
        now: float,
        term: Term | None = None,
    ) -> None:
        """Add ``entries`` to the domain's decision log in one write, then keep only the
        last ``max_entries`` entries at most ``max_age`` seconds older than ``now``.

        The log is no config: writing it tells no change listener.
        NotFoundError if the domain is gone; nothing is written for no entries.
        With ``term``, a fenced write: NotLeaderError (nothing stored) once
        that term is out of office, so a deposed decider's late entries never land.
        """

    @abc.abstractmethod
    def get_history(self) -> list[dict[str, Any]]:
        """The domain's decision log, oldest first (``epum.decisions``)."""

    # instances ------------------------------------------------------------
    @abc.abstractmethod
    def add_instance(self, instance: Instance, term: Term | None = None) -> Instance:
        """Store a new record; WriteConflictError if the id exists anywhere.

        With ``term``, a fenced write: NotLeaderError (nothing stored) once
        that term is out of office (see the module docstring).
        """

    @abc.abstractmethod
    def update_instance(self, instance: Instance, term: Term | None = None) -> Instance:
        """Replace a record if its stored version is still ``instance.version``.

        Returns the record with its new version.  NotFoundError if it is gone,
        WriteConflictError if someone else wrote it since it was read,
        NotLeaderError (nothing written) if ``term`` is given and out of office.
        """

    @abc.abstractmethod
    def confirm_term(self, term: Term) -> None:
        """Return if ``term`` is still in office by the store's account, else NotLeaderError."""

    @abc.abstractmethod
    def get_instance(self, instance_id: str) -> Instance | None:
        """One record, or None."""

    def get_instance_cached(self, instance_id: str) -> Instance | None:
        """One record, or None, maybe from a copy that can lag other workers' writes.

        The copy shows every write this store object made; another worker's
        write may show up a watch's delivery later, so a compare-and-set on
        what this returns can fail with ``WriteConflictError`` (re-read with
        ``get_instance``).  A backend without a copy reads as ``get_instance``.
        """
        return self.get_instance(instance_id)

    @abc.abstractmethod
    def get_instances(self) -> list[Instance]:
        """Every record of the domain, sorted by instance id."""

    @abc.abstractmethod
    def remove_instance(self, instance_id: str) -> None:
        """Delete a record and its index entry (no error if already gone)."""

    # change stamps --------------------------------------------------------
    def change_stamp(self) -> Hashable | None:
        """A value that tells whether the domain changed, or None when the store cannot tell.

        Promise: if two calls return equal values (not None), every getter
        of this domain (config and versions, removal mark, subscribers,
        sensor data, records) returns between them what it returned after
        the first: nothing of the domain changed, so a reader may keep what
        it read after the first call instead of reading again.  Each write
        this store object makes is covered once it returns; another worker's
        write is covered once this store shows it (as its getters do).  The
        decision log is not covered.  The default, None, says "read again".
        """
        return None


class EPUMStore(abc.ABC):
    """Definitions, domains, the instance index and the elections."""

    def initialize(self) -> None:
        """Make the store ready (connect, create the layout); a second call does nothing."""

    def shutdown(self) -> None:
        """Leave every election at once and release resources."""

    # definitions ----------------------------------------------------------
    @abc.abstractmethod
    def add_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Store a new definition; WriteConflictError if the id exists."""

    @abc.abstractmethod
    def get_domain_definition(self, definition_id: str) -> dict[str, Any] | None:
        """A definition, or None."""

    @abc.abstractmethod
    def update_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Replace a definition; NotFoundError if it does not exist."""

    @abc.abstractmethod
    def remove_domain_definition(self, definition_id: str) -> None:
        """Delete a definition; NotFoundError if it does not exist."""

    @abc.abstractmethod
    def list_domain_definitions(self) -> list[str]:
        """Every definition id, sorted."""

    # domains --------------------------------------------------------------
    @abc.abstractmethod
    def add_domain(self, owner: str, domain_id: str, config: dict[str, Any]) -> DomainStore:
        """Store a new domain; WriteConflictError if ``owner`` already has it."""

    @abc.abstractmethod
    def get_domain(self, owner: str, domain_id: str) -> DomainStore | None:
        """A domain (removal-marked ones included), or None."""

    @abc.abstractmethod
    def list_domains_by_owner(self, owner: str) -> list[str]:
        """The ids of ``owner``'s domains, sorted (removal-marked ones included)."""

    def count_domains_by_owner(self, owner: str) -> int:
        """How many domains ``owner`` has, for its limit (a store with a cache may count
        from it without waiting: short by the domains added within one delivery)."""
        return len(self.list_domains_by_owner(owner))

    @abc.abstractmethod
    def get_all_domains(self) -> list[DomainStore]:
        """Every domain of every owner, sorted by ``(owner, domain_id)`` (removal-marked too)."""

    @abc.abstractmethod
    def remove_domain(self, owner: str, domain_id: str) -> None:
        """Delete a domain with its records and index entries (no error if gone)."""

    @abc.abstractmethod
    def get_domain_for_instance_id(self, instance_id: str) -> DomainStore | None:
        """The domain holding an instance, found through an index, or None."""

    # change notification --------------------------------------------------
    @abc.abstractmethod
    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(owner, domain_id)`` after any change to a domain.

        Changes made by any worker sharing the store count.  Listeners run on
        the store's threads and must not block.
        """

    # elections ------------------------------------------------------------
    @abc.abstractmethod
    def _contend(self, role: str, leader: Leader) -> None:
        """Enter ``leader`` in the election of ``role`` (the backend's own)."""

    def contend_decider(self, leader: Leader) -> None:
        """Enter ``leader`` in the decider election."""
        self._contend("decider", leader)

    def contend_decider_shares(self, leaders: Sequence[Leader], settle: float = 2.0) -> None:
        """Enter ``leaders[i]`` as the decider of share ``i`` of ``len(leaders)``.

        Each share has at most one leader in office at a time, among every
        worker sharing the store, and a share whose leader's worker dies is
        given to another (``epum.partitions``).  Here: one election per share (``decider/<i>``);
        the ZooKeeper store balances the shares over its workers instead
        (kazoo's ``SetPartitioner``, the party settling for ``settle`` seconds
        after a worker comes or goes).
        """
        for index, leader in enumerate(leaders):
            self._contend(f"decider/{index}", leader)

    def contend_doctor(self, leader: Leader) -> None:
        """Enter ``leader`` in the doctor election."""
        self._contend("doctor", leader)

    def contend_reaper(self, leader: Leader) -> None:
        """Enter ``leader`` in the reaper election."""
        self._contend("reaper", leader)


def update_instance_with_retry(
    domain: DomainStore,
    instance_id: str,
    change: Callable[[Instance], Instance | None],
    attempts: int = 10,
    term: Term | None = None,
    cached_first: bool = False,
) -> tuple[Instance, Instance] | None:
    """Apply ``change`` to a fresh read of a record until the write wins.

    ``change`` gets the stored record and returns the new one, or None to
    leave it alone.  Returns ``(before, after)`` when a write happened, None
    when the record is gone or ``change`` declined.  Raises
    ``WriteConflictError`` if every attempt lost a race, and
    ``NotLeaderError`` at once if ``term`` is given and the fenced write
    finds it out of office.

    With ``cached_first`` the first read is ``get_instance_cached`` (no
    round trip on a cached backend) and only the re-reads after a lost race
    go to ``get_instance``: for a change whose decision to write may be
    judged on a copy a watch's delivery behind (a heartbeat: the next one
    judges again), never for one that must not be dropped.
    """
    for attempt in range(attempts):
        read = domain.get_instance_cached if cached_first and attempt == 0 else domain.get_instance
        current = read(instance_id)
        if current is None:
            return None
        updated = change(current)
        if updated is None:
            return None
        try:
            if term is None:
                return current, domain.update_instance(updated)
            return current, domain.update_instance(updated, term=term)
        except NotFoundError:
            return None
        except WriteConflictError:
            continue
    raise WriteConflictError(f"instance {instance_id}: gave up after {attempts} lost races")
