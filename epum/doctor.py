"""The doctor: the elected role that applies the health rules to every domain.

Each pass, for every domain that is not removed and has
``health.monitor_health`` on, the domain's ``HealthMonitor`` judges its
records; the doctor writes each new health with a compare-and-set on a fresh
read (judged again on that read, so a record that moved on keeps its newer
state), then sends the agent ``dump_state`` requests the verdicts ask for.
The doctor only marks health: replacing MISSING instances, and terminating
ZOMBIE ones again if wanted, is the decider's business (it hears of each
write through the store's change listeners).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from epum.errors import WriteConflictError
from epum.health import HealthConfig, HealthMonitor, Verdict, health_config_of
from epum.instances import Instance
from epum.leader_loop import LeaderLoop
from epum.logcontext import log_context
from epum.store.base import DomainStore, EPUMStore, update_instance_with_retry
from epum.term import Term

log = logging.getLogger(__name__)

#: Compare-and-set attempts per health write: a record is written by the
#: reactor a few times per missing_timeout at most, so losing five races in
#: a row means something is wrong; the next pass tries again anyway.
WRITE_ATTEMPTS = 5


class Doctor(LeaderLoop):
    """Keeps the health of every monitored domain's instances up to date.

    ``ouagent_client`` sends ``dump_state(address, mock_timestamp=...)`` to
    instance agents; with None, an instance that loses contact goes straight
    to MISSING.  ``run_pass(now)`` is one round over every domain (the
    facade's ``_doctor_appt`` calls it by hand in external-decide mode,
    under the doctor's unelected term).  A pass stops before the next domain
    or write once the term it runs under has ended.  A failing domain, write
    or agent request is logged and the pass goes on.
    """

    def __init__(
        self,
        store: EPUMStore,
        ouagent_client: Any,
        interval: float = 10.0,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__("doctor", interval, clock=clock)
        self.store = store
        self.ouagent_client = ouagent_client
        self._monitors: dict[tuple[str, str], HealthMonitor] = {}

    def on_elected(self) -> None:
        """Start the term with fresh monitors: they measure from their own start."""
        self._monitors.clear()

    def run_pass(self, now: float) -> None:
        """Judge and update the health of every monitored domain's instances at ``now``."""
        term = self.term
        keep: set[tuple[str, str]] = set()
        for domain in self.store.get_all_domains():
            if term.ended:
                return
            with log_context(caller=domain.owner, domain=domain.domain_id):
                try:
                    if domain.is_removed():
                        continue
                    keep.add(domain.key)
                    config = domain.get_config_as("health", health_config_of)
                    if not config.monitor_health:
                        keep.discard(domain.key)
                        continue
                    self._examine(domain, config, now, term)
                except Exception:
                    log.exception("health check of the domain failed; next domain")
        for key in set(self._monitors) - keep:
            del self._monitors[key]

    def _examine(self, domain: DomainStore, config: HealthConfig, now: float, term: Term) -> None:
        monitor = self._monitors.get(domain.key)
        if monitor is None:
            monitor = HealthMonitor(
                config, started_at=now, can_ask_agents=self.ouagent_client is not None
            )
            self._monitors[domain.key] = monitor
            log.debug("health monitoring starts")  # one line a domain: 10,000 at 10,000
        monitor.config = config
        for verdict in monitor.update(now, domain.get_instances()):
            if term.ended:
                return
            final: Verdict | None = verdict
            if verdict.health is not None:
                final = self._write_health(domain, monitor, verdict.instance_id, now)
            if final is not None and final.ask_agent is not None:
                self._ask_agent(final, now)

    def _write_health(
        self,
        domain: DomainStore,
        monitor: HealthMonitor,
        instance_id: str,
        now: float,
    ) -> Verdict | None:
        """Write the verdict on a fresh read; the verdict written, or None if none was."""
        written: Verdict | None = None

        def judge_again(record: Instance) -> Instance | None:
            nonlocal written
            written = monitor.check(record, now)
            if written is None or written.health is None:
                return None
            return record.replace(health=written.health)

        try:
            result = update_instance_with_retry(domain, instance_id, judge_again, WRITE_ATTEMPTS)
        except WriteConflictError:
            log.warning(
                "instance %s: health not written after %d conflicting writes; next pass",
                instance_id,
                WRITE_ATTEMPTS,
            )
            return None
        if result is None or written is None:
            log.info("instance %s vanished or moved on; no health written", instance_id)
            return None
        log.warning(
            "instance %s health %s -> %s: %s",
            instance_id,
            result[0].health,
            written.health,
            written.reason,
        )
        return written

    def _ask_agent(self, verdict: Verdict, now: float) -> None:
        if self.ouagent_client is None:
            return
        try:
            self.ouagent_client.dump_state(verdict.ask_agent, mock_timestamp=now)
        except Exception:
            log.exception(
                "dump_state to agent %s of instance %s failed",
                verdict.ask_agent,
                verdict.instance_id,
            )
        else:
            log.info(
                "asked agent %s of instance %s for a heartbeat",
                verdict.ask_agent,
                verdict.instance_id,
            )
