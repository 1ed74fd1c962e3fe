"""The decider: the elected role that runs one engine per domain.

At every pass the decider, for each domain: builds (or reconfigures) the
domain's engine, re-sends launches and terminations the provisioner has not
answered, and lets the engine decide.  A removed domain has its live
instances terminated; once every record is terminal the engine's ``dying()``
is called and the domain is deleted.  A failing engine is logged and never
stops the other domains.

A domain whose stored state would not pass today's checks (a config or a
record stored before them, or around them) is not decided: it is logged
once with the reason, its instances are left alone, and it is decided again
once a reconfiguration makes it sound (a removal proceeds as usual).
Launches are bounded per domain and pass and by a global rate (see
``epum.control``); a domain past its budget is grown at the next passes.

Passes run every ``interval`` seconds, and at once for the domains whose
records or config changed (``domain_changed``); the timed pass over every
domain is the safety net.  A pass reads a domain again only when its store
change stamp moved (``epum.pass_inputs``), and skips a *settled* domain
outright: one whose last decision, on the same inputs, was quiet, by an
engine that promises to decide on its inputs alone, with nothing awaiting
a re-send (the rule, and why it is exact, are in ``epum.pass_inputs``).
A newly elected decider first asks the provisioner to resend the state of
every live instance.  A decider given a ``share`` (``epum.partitions``)
does all of this for that share's domains only, and its sensor collector
polls only those.

Each pass runs under the decider's current ``term`` (``LeaderLoop``): it
stops before the next domain once the term has ended, and the engines'
controls carry the term, so a launch or termination asked for after the end
raises ``NotLeaderError`` and the pass stops.  The controls' record writes
are fenced by the term in the store (``epum.control``): when the store
refuses one, the decider ends its term itself, so it leaves office even
before its own connection tells it so.  Passes run by hand
(external-decide mode) run under the decider's unelected term, which only
``depose()`` ends.

The decision log (``epum.decisions``, written by ``epum.pass_log``).  After
each domain's decision the decider stores, in one write, the lifecycle
events it saw since its last pass (records compared with what it saw then)
and the pass's decision entry (the inputs, the engine's actions and
reasons, none for a quiet pass at its target); a failed write is logged
and never stops a decision.  With ``general.dry_run`` true, the engine
decides on a copy of itself through a control that only notes its actions:
nothing is written or sent, the copy is dropped after logging, and the
engine itself (its cooldowns, what it asked to destroy) never drifts from
the real instances; switching dry-run off resumes with that engine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from epum import decisions
from epum.control import DomainControl, LaunchBudget, LaunchDeferred, NotLeaderError
from epum.domain_config import (
    StoredChecks,
    engine_class_name,
    engine_conf_with_defaults,
    launch_vars,
)
from epum.engines.base import Engine, scratch_copy
from epum.engines.loader import load_engine_class
from epum.instances import DomainState
from epum.leader_loop import LeaderLoop
from epum.logcontext import log_context
from epum.partitions import Share
from epum.pass_inputs import DomainInputs, quiet_decision, read_inputs
from epum.pass_log import PassLog
from epum.sensor_loop import start_collector, stop_collector
from epum.settings import EPUMSettings, LimitSettings
from epum.settings.tree import default_worker_name
from epum.states import InstanceState
from epum.store.base import DomainStore, EPUMStore
from epum.subscribers import Subscribers
from epum.term import Term

log = logging.getLogger(__name__)


#: Instance ids per ``dump_state`` request a new decider sends: 1,000 ids are
#: about 40 KB, well inside any receiver's message size limit (all of 100,000
#: instances in one request would be 4 MB).
DUMP_STATE_BATCH = 1000
#: Threads a pass writes its decision-log entries on (``PassLog.writing_behind``):
#: a new leader's first pass logs for every domain, a round trip or two each.
LOG_WRITERS = 8
#: How long a pass waits at its end for its decision-log writes (seconds).
LOG_WRITE_GRACE = 60.0


@dataclass
class _DomainEngine:
    engine: Engine
    control: DomainControl
    conf_version: int


class Decider(LeaderLoop):
    """Keeps every domain at the size its engine wants (one engine per domain)."""

    def __init__(
        self,
        store: EPUMStore,
        settings: EPUMSettings,
        provisioner: Any,
        subscribers: Subscribers | None = None,
        statsd: Any = None,
        clock: Callable[[], float] = time.time,
        leader: str | None = None,
        limits: LimitSettings | None = None,
        collector_factory: Callable[[], Any] | None = None,
        share: Share | None = None,
        budget: LaunchBudget | None = None,
    ):
        #: The domains this decider decides (``epum.partitions``): all of them by default.
        self.share = share or Share(0, 1)
        name = "decider" if self.share.count == 1 else f"decider-{self.share.index}"
        super().__init__(name, settings.decider_loop_interval, clock=clock)
        self._log = PassLog(leader or default_worker_name(), settings)
        self._inputs: dict[tuple[str, str], DomainInputs] = {}
        self.limits = limits or LimitSettings()
        self.budget = budget or LaunchBudget(self.limits.max_launches_per_second)
        #: Domains not decided because their stored state is corrupt -> the reason.
        self.corrupt: dict[tuple[str, str], str] = {}
        self.store = store
        self.subscribers = subscribers
        self.settings = settings
        self._checks = StoredChecks(settings, self.limits)
        self.provisioner = provisioner
        self.statsd = statsd
        self._engines: dict[tuple[str, str], _DomainEngine] = {}
        self._controls: dict[tuple[str, str], DomainControl] = {}
        self._changed: set[tuple[str, str]] = set()
        self._changed_lock = threading.Lock()
        self._last_full_pass: float | None = None
        #: Makes the term's sensor collector (``epum.sensor_loop``); None: no collector.
        self.collector_factory = collector_factory
        self._collector_thread: threading.Thread | None = None

    @property
    def leader(self) -> str:
        """The name this decider signs its decision log entries with."""
        return self._log.leader

    # leadership -----------------------------------------------------------
    def on_elected(self) -> None:
        """Start the term afresh, and ask the provisioner to resend every live instance's state.

        With a ``collector_factory``, the term's sensor collector starts in
        a thread of its own and stops when the term ends.

        Engines and controls from an earlier term are dropped: while another
        worker decided, their domains may have been reconfigured, or removed
        and added again, so each engine is initialized anew from the store.
        """
        self._engines.clear()
        self._controls.clear()
        self._log.clear()
        self._inputs.clear()
        self._last_full_pass = None
        if self.collector_factory is not None:
            self._collector_thread = start_collector(self.term, self._make_collector)
        term = self.term
        live: list[str] = []
        for domain in self._my_domains():
            if term.ended:  # deposed while listing (a slow store): the next term lists anew
                return
            live.extend(
                i.instance_id for i in domain.get_instances() if i.state < InstanceState.TERMINATED
            )
        if not live:
            return
        log.info("elected decider: asking the provisioner for %d records", len(live))
        for start in range(0, len(live), DUMP_STATE_BATCH):
            try:
                self.provisioner.dump_state(live[start : start + DUMP_STATE_BATCH])
            except Exception:
                log.exception("dump_state request to the provisioner failed")

    def on_term_over(self) -> None:
        """Wait for the term's sensor collector to stop (``epum.sensor_loop.STOP_WAIT`` at most)."""
        thread, self._collector_thread = self._collector_thread, None
        if thread is not None:
            stop_collector(thread)

    def _make_collector(self) -> Any:
        collector = self.collector_factory()
        collector.owns = self.share.owns
        return collector

    def _my_domains(self) -> list[DomainStore]:
        return [d for d in self.store.get_all_domains() if self.share.owns(d.key)]

    def domain_changed(self, owner: str, domain_id: str) -> None:
        """Note a changed domain of this decider's share and wake the loop to decide
        for it now (never blocks)."""
        if not self.share.owns((owner, domain_id)):
            return
        with self._changed_lock:
            self._changed.add((owner, domain_id))
        self.wake()

    # passes ---------------------------------------------------------------
    def run_pass(self, now: float) -> None:
        """Decide for the changed domains, or for every domain when a timed pass is due."""
        due = self._last_full_pass is None or now - self._last_full_pass >= self.interval
        self._pass(now, full=due)

    def decide_all(self, now: float) -> None:
        """Decide for every domain now, whatever changed."""
        self._pass(now, full=True)

    def _pass(self, now: float, full: bool) -> None:
        started = time.monotonic()
        with self._log.writing_behind(LOG_WRITERS, LOG_WRITE_GRACE):
            self._pass_domains(now, full)
        if self.statsd is not None and full:
            self.statsd.gauge("domains.active", len(self._engines))
            self.statsd.timing("decider.pass", (time.monotonic() - started) * 1000.0)

    def _pass_domains(self, now: float, full: bool) -> None:
        term = self.term
        with self._changed_lock:
            changed, self._changed = self._changed, set()
        self.budget.refill(now)
        domains = self._my_domains()
        if full:
            self._last_full_pass = now
            self._forget_gone({d.key for d in domains})
        else:
            domains = [d for d in domains if d.key in changed]
        for domain in domains:
            if term.ended:
                return
            kept = self._inputs.get(domain.key)
            stamp = domain.change_stamp()
            if kept is not None and kept.settled and kept.unchanged(stamp):
                continue  # settled: this pass would do what the last did (epum.pass_inputs)
            with log_context(caller=domain.owner, domain=domain.domain_id):
                try:
                    inputs = self._inputs[domain.key] = read_inputs(domain, stamp, kept)
                    if inputs.removed:
                        self._finish_removal(domain, now, term)
                    else:
                        self._decide(domain, inputs, now, term)
                except NotLeaderError as exc:
                    # The store may know before we do (a fenced write found
                    # the seat gone): end the term so the election moves on.
                    log.warning("deposed mid-decision (%s); stopping", exc)
                    term.end()
                    return
                except LaunchDeferred as exc:
                    log.info("launches deferred to the next pass: %s", exc)
                except Exception:
                    log.exception("decision failed")

    def _decide(self, domain: DomainStore, inputs: DomainInputs, now: float, term: Term) -> None:
        config, version, instances = inputs.config, inputs.conf_version, inputs.instances
        if not self._sound(domain, config, instances):
            return
        control = self._control(domain, config, now, term)
        state = DomainState(instances, inputs.sensor_data, now)
        control.live_room = self.limits.max_instances_per_domain - len(state.get_live_instances())
        dry_run = (config.get("general") or {}).get("dry_run") is True
        control.dry_run = dry_run
        control.notes = decisions.PassNotes()
        control.resend_unanswered(list(state.instances.values()))
        entry = self._engines.get(domain.key)
        if entry is None:
            engine_cls = load_engine_class(
                engine_class_name(config), self.settings.allowed_engine_prefixes
            )
            engine = engine_cls()
            engine.log = logging.getLogger(engine_cls.__module__)
            engine_conf = engine_conf_with_defaults(inputs.engine_conf, self.settings)
            engine.initialize(control, state, engine_conf)
            entry = self._engines[domain.key] = _DomainEngine(engine, control, version)
            log.info("engine %s started", engine_cls.__name__)
            control.notes.events.append(
                decisions.domain_event(now, "started", engine_conf=engine_conf)
            )
        elif version > entry.conf_version:
            engine_conf = engine_conf_with_defaults(inputs.engine_conf, self.settings)
            entry.engine.reconfigure(control, engine_conf)
            entry.conf_version = version
            log.info("engine reconfigured (version %s)", version)
            control.notes.events.append(
                decisions.domain_event(now, "reconfigured", engine_conf=engine_conf)
            )
        engine = scratch_copy(entry.engine) if dry_run else entry.engine
        engine.decide(control, state)
        entries = self._log.log_pass(domain, control, state, engine.de_state, term)
        inputs.settled = quiet_decision(engine, control.notes, entries, instances, dry_run)

    def _sound(self, domain: DomainStore, config: dict[str, Any], instances: list) -> bool:
        """False (logged once per reason) if the domain's stored state is corrupt."""
        problem = self._checks.problem(domain.key, config, instances)
        if problem is None:
            if self.corrupt.pop(domain.key, None) is not None:
                log.info("domain state is sound again; deciding")
            return True
        if self.corrupt.get(domain.key) != problem:
            log.error(
                "domain state is corrupt; its instances are left alone until it is "
                "reconfigured or removed: %s",
                problem,
            )
            self.corrupt[domain.key] = problem
        return False

    def _finish_removal(self, domain: DomainStore, now: float, term: Term) -> None:
        control = self._control(domain, domain.get_all_config(), now, term)
        instances = domain.get_instances()
        live = [i.instance_id for i in instances if i.state < InstanceState.TERMINATING]
        if live:
            control.notes = notes = decisions.PassNotes()
            notes.explain("removal", "the domain is being removed")
            notes.target = 0
            control.destroy_instances(live)
            self._log.log_removal(domain, notes, instances, now, term)
            instances = domain.get_instances()
        control.resend_unanswered(instances)
        if any(i.state not in InstanceState.TERMINAL for i in instances):
            return
        entry = self._engines.pop(domain.key, None)
        if entry is not None:
            try:
                entry.engine.dying()
            except Exception:
                log.exception("engine failed while dying")
        self._controls.pop(domain.key, None)
        self._inputs.pop(domain.key, None)
        self.store.remove_domain(domain.owner, domain.domain_id)
        log.info("domain removed")

    def _control(
        self, domain: DomainStore, config: dict[str, Any], now: float, term: Term
    ) -> DomainControl:
        control = self._controls.get(domain.key)
        if control is None:
            control = DomainControl(
                domain,
                self.provisioner,
                self.settings.service_name,
                subscribers=self.subscribers,
                budget=self.budget,
            )
            self._controls[domain.key] = control
        control.domain = domain  # a store may hand out a new handle each pass
        control.term = term  # the engine acts within this pass's term only
        control.now = now
        control.launches_left = self.limits.max_launches_per_pass
        control.live_room = None
        control.launch_vars = launch_vars(self.settings.provisioner_vars, config)
        control.health_not_checked = DomainControl.health_unchecked(config)
        return control

    def _forget_gone(self, present: set[tuple[str, str]]) -> None:
        for key in set(self._engines) - present:
            entry = self._engines.pop(key)
            with log_context(caller=key[0], domain=key[1]):
                try:
                    entry.engine.dying()
                except Exception:
                    log.exception("engine failed while dying")
        for kept in (self._controls, self._inputs, self.corrupt):
            for key in set(kept) - present:
                del kept[key]
        self._log.forget(present)
        self._checks.forget(present)
