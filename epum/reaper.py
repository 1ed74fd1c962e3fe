"""The reaper: the elected role that deletes old terminal instance records."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from epum.leader_loop import LeaderLoop
from epum.logcontext import log_context
from epum.states import InstanceState
from epum.store.base import EPUMStore

log = logging.getLogger(__name__)


class Reaper(LeaderLoop):
    """Removes records in TERMINATED, FAILED or REJECTED older than ``max_age`` seconds.

    "Older" means ``state_time < now - max_age``; a record exactly
    ``max_age`` old stays until the next pass.  Every domain is swept,
    removal-marked ones included.  Nothing else is touched.  A pass stops
    before the next domain once the term it runs under has ended (passes
    run by hand run under the reaper's unelected term).  A failing domain
    is logged and the pass goes on.
    """

    def __init__(
        self,
        store: EPUMStore,
        max_age: float = 7200.0,
        interval: float = 300.0,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__("reaper", interval, clock=clock)
        self.store = store
        self.max_age = max_age

    def run_pass(self, now: float) -> None:
        """Remove every terminal record whose ``state_time`` is before ``now - max_age``."""
        term = self.term
        cutoff = now - self.max_age
        for domain in self.store.get_all_domains():
            if term.ended:
                return
            with log_context(caller=domain.owner, domain=domain.domain_id):
                try:
                    old = [
                        i.instance_id
                        for i in domain.get_instances()
                        if i.state in InstanceState.TERMINAL and i.state_time < cutoff
                    ]
                    for instance_id in old:
                        domain.remove_instance(instance_id)
                except Exception:
                    log.exception("reaping failed; next domain")
                    continue
                if old:
                    log.info("reaped %d terminal records: %s", len(old), ", ".join(old))
