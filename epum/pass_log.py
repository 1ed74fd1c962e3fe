"""What the decider writes to a domain's decision log after deciding for it.

``PassLog`` turns one pass of one domain into log entries (``epum.decisions``):
the lifecycle events since the decider last looked at the domain (records
compared with what it saw then, none on a term's first look), the engine's
domain events, the decision entry (none for a quiet pass at its target), a
``reading`` event when the metric's value changed and no entry carries it,
and ``replaced`` events; it stores them in one write fenced by the pass's
term, during a pass (``writing_behind``) on writer threads of its own, so a
pass that logs for many domains (a new leader's first) overlaps their
writes' round trips instead of waiting for each in turn.  It keeps, per
domain, what it saw and the last value logged, until ``forget`` or
``clear``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any

from epum import decisions
from epum.control import DomainControl
from epum.errors import NotLeaderError
from epum.instances import DomainState, Instance
from epum.keyed import KeyedExecutor
from epum.settings import EPUMSettings
from epum.store.base import DomainStore
from epum.term import Term

log = logging.getLogger("epum.decider")

Key = tuple[str, str]


class PassLog:
    """The decision log entries of a decider's passes (see the module), signed ``leader``."""

    def __init__(self, leader: str, settings: EPUMSettings):
        #: The name the entries are signed with.
        self.leader = leader
        self.settings = settings
        self._seen: dict[Key, dict[str, decisions.Seen]] = {}
        self._values: dict[Key, Any] = {}
        self._writer: KeyedExecutor | None = None

    def clear(self) -> None:
        """Forget every domain (a new term starts: its first look logs no lifecycle event)."""
        self._seen.clear()
        self._values.clear()

    def forget(self, present: set[Key]) -> None:
        """Forget the domains not in ``present``."""
        for kept in (self._seen, self._values):
            for key in set(kept) - present:
                del kept[key]

    def log_pass(
        self, domain: DomainStore, control: DomainControl, state: DomainState, de: str, term: Term
    ) -> list[dict[str, Any]]:
        """Store this pass's entries (``control.notes``, the engine state ``de``) in one
        write; return them (empty: nothing was written)."""
        now, notes = state.now, control.notes
        seen = decisions.snapshot(state.instances.values())
        entries = decisions.lifecycle_events(self._seen.get(domain.key), seen, now)
        inputs = decisions.domain_inputs(state.instances.values(), state.sensor_data, now)
        made = decisions.decision_entry(
            notes, inputs, now, self.leader, term.number, de, control.dry_run
        )
        entries += notes.events
        value = notes.inputs.get("value")
        if made is not None:
            entries.append(made)
        elif value is not None and (
            domain.key not in self._values or self._values[domain.key] != value
        ):
            metric = notes.inputs.get("metric")
            entries.append(decisions.domain_event(now, "reading", metric=metric, value=value))
        self._values[domain.key] = value
        entries += decisions.replaced_events(notes, now)
        self._seen[domain.key] = (
            seen if control.dry_run else decisions.seen_after(seen, notes.actions)
        )
        self.append(domain, entries, now, term)
        return entries

    def log_removal(
        self,
        domain: DomainStore,
        notes: decisions.PassNotes,
        instances: list[Instance],
        now: float,
        term: Term,
    ) -> None:
        """Store the decision entry of a removal pass that destroyed live instances."""
        inputs = decisions.domain_inputs(instances, {}, now)
        made = decisions.decision_entry(notes, inputs, now, self.leader, term.number, None, False)
        if made is not None:
            self.append(domain, [made], now, term)

    @contextlib.contextmanager
    def writing_behind(self, writers: int, timeout: float) -> Iterator[None]:
        """For the block (one pass), write the log on ``writers`` threads of their own,
        each domain's entries in order, while the pass goes on; on leaving, wait (up to
        ``timeout`` seconds) until every entry is written.  A write the store fences
        off (NotLeaderError) ends the term, as it would in the pass."""
        executor = KeyedExecutor(writers, name="decision-log")
        self._writer = executor
        try:
            yield
        finally:
            self._writer = None
            executor.shutdown()
            if not executor.wait_idle(timeout):
                log.warning("decision log writes still unfinished after %.0f s", timeout)

    def append(
        self, domain: DomainStore, entries: list[dict[str, Any]], now: float, term: Term
    ) -> None:
        """Store ``entries`` in the domain's decision log, fenced by ``term`` (on a writer
        thread inside ``writing_behind``, else at once).

        NotLeaderError (nothing written) ends ``term``; written at once it also
        propagates, so the pass stops.  Any other failure to write the log is
        logged and the pass goes on: the log explains, it decides nothing.
        """
        if not entries:
            return
        writer = self._writer
        if writer is None:
            self._write(domain, entries, now, term)
            return
        context = contextvars.copy_context()  # the domain's log context, on the writer too

        def job() -> None:
            if term.ended:  # fenced off anyway: spare the round trip (and a warning each)
                return
            try:
                context.run(self._write, domain, entries, now, term)
            except NotLeaderError as exc:
                log.warning("deposed while writing the decision log (%s); stopping", exc)
                term.end()

        writer.submit(domain.key, job)

    def _write(
        self, domain: DomainStore, entries: list[dict[str, Any]], now: float, term: Term
    ) -> None:
        try:
            domain.append_history(
                entries,
                self.settings.decision_log_entries,
                self.settings.decision_log_max_age,
                now,
                term=term,
            )
        except NotLeaderError:
            raise
        except Exception:
            log.exception("writing the decision log failed")
