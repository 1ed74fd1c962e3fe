"""The decider: the elected role that runs one engine per domain.

At every pass the decider, for each domain: builds (or reconfigures) the
domain's engine, re-sends launches and terminations the provisioner has not
answered, and lets the engine decide.  A removed domain has its live
instances terminated; once every record is terminal the engine's ``dying()``
is called and the domain is deleted.  A failing engine is logged and never
stops the other domains.

Passes run every ``interval`` seconds, and at once for the domains whose
records or config changed (``domain_changed``); the timed pass over every
domain is the safety net.  A newly elected decider first asks the
provisioner to resend the state of every live instance.

Each pass runs under the decider's current ``term`` (``LeaderLoop``): it
stops before the next domain once the term has ended, and the engines'
controls carry the term, so a launch or termination asked for after the end
raises ``NotLeaderError`` and the pass stops.  Passes run by hand
(external-decide mode) run under the decider's unelected term, which only
``depose()`` ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from epum.control import DomainControl, NotLeaderError
from epum.domain_config import engine_class_name, engine_conf_with_defaults
from epum.engines.base import Engine
from epum.engines.loader import load_engine_class
from epum.instances import DomainState
from epum.leader_loop import LeaderLoop
from epum.logcontext import log_context
from epum.sensor_loop import start_collector
from epum.settings import EPUMSettings
from epum.states import InstanceState
from epum.store.base import DomainStore, EPUMStore
from epum.subscribers import Subscribers
from epum.term import Term

log = logging.getLogger(__name__)


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
        collector_factory: Callable[[], Any] | None = None,
    ):
        super().__init__("decider", settings.decider_loop_interval, clock=clock)
        self.store = store
        self.subscribers = subscribers
        self.settings = settings
        self.provisioner = provisioner
        self.statsd = statsd
        self._engines: dict[tuple[str, str], _DomainEngine] = {}
        self._controls: dict[tuple[str, str], DomainControl] = {}
        self._changed: set[tuple[str, str]] = set()
        self._changed_lock = threading.Lock()
        self._last_full_pass: float | None = None
        #: Makes the term's sensor collector (``epum.sensor_loop``); None: no collector.
        self.collector_factory = collector_factory

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
        self._last_full_pass = None
        if self.collector_factory is not None:
            start_collector(self.term, self.collector_factory)
        live = [
            i.instance_id
            for d in self.store.get_all_domains()
            for i in d.get_instances()
            if i.state < InstanceState.TERMINATED
        ]
        if not live:
            return
        log.info("elected decider: asking the provisioner for %d records", len(live))
        try:
            self.provisioner.dump_state(live)
        except Exception:
            log.exception("dump_state request to the provisioner failed")

    def domain_changed(self, owner: str, domain_id: str) -> None:
        """Note a changed domain and wake the loop to decide for it now (never blocks)."""
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
        term = self.term
        started = time.monotonic()
        with self._changed_lock:
            changed, self._changed = self._changed, set()
        domains = self.store.get_all_domains()
        if full:
            self._last_full_pass = now
            self._forget_gone({d.key for d in domains})
        else:
            domains = [d for d in domains if d.key in changed]
        for domain in domains:
            if term.ended:
                return
            with log_context(caller=domain.owner, domain=domain.domain_id):
                try:
                    if domain.is_removed():
                        self._finish_removal(domain, now, term)
                    else:
                        self._decide(domain, now, term)
                except NotLeaderError:
                    log.info("deposed mid-decision; stopping")
                    return
                except Exception:
                    log.exception("decision failed")
        if self.statsd is not None and full:
            self.statsd.gauge("domains.active", len(self._engines))
            self.statsd.timing("decider.pass", (time.monotonic() - started) * 1000.0)

    def _decide(self, domain: DomainStore, now: float, term: Term) -> None:
        config = domain.get_all_config()
        engine_conf, version = domain.get_versioned_config("engine_conf")
        engine_conf = engine_conf_with_defaults(engine_conf, self.settings)
        control = self._control(domain, config, now, term)
        state = DomainState(domain.get_instances(), domain.get_domain_sensor_data(), now)
        control.resend_unanswered(list(state.instances.values()))
        entry = self._engines.get(domain.key)
        if entry is None:
            engine_cls = load_engine_class(
                engine_class_name(config), self.settings.allowed_engine_prefixes
            )
            engine = engine_cls()
            engine.log = logging.getLogger(engine_cls.__module__)
            engine.initialize(control, state, engine_conf)
            entry = self._engines[domain.key] = _DomainEngine(engine, control, version)
            log.info("engine %s started", engine_cls.__name__)
        elif version > entry.conf_version:
            entry.engine.reconfigure(control, engine_conf)
            entry.conf_version = version
            log.info("engine reconfigured (version %s)", version)
        entry.engine.decide(control, state)

    def _finish_removal(self, domain: DomainStore, now: float, term: Term) -> None:
        control = self._control(domain, domain.get_all_config(), now, term)
        instances = domain.get_instances()
        live = [i.instance_id for i in instances if i.state < InstanceState.TERMINATING]
        if live:
            control.destroy_instances(live)
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
        self.store.remove_domain(domain.owner, domain.domain_id)
        log.info("domain removed")

    def _control(
        self, domain: DomainStore, config: dict[str, Any], now: float, term: Term
    ) -> DomainControl:
        control = self._controls.get(domain.key)
        if control is None:
            control = DomainControl(
                domain, self.provisioner, self.settings.service_name, subscribers=self.subscribers
            )
            self._controls[domain.key] = control
        control.domain = domain  # a store may hand out a new handle each pass
        control.term = term  # the engine acts within this pass's term only
        control.now = now
        control.launch_vars = self._launch_vars(config)
        return control

    def _launch_vars(self, config: dict[str, Any]) -> dict[str, Any]:
        launch_vars = dict(self.settings.provisioner_vars)
        launch_vars.update((config.get("engine_conf") or {}).get("provisioner_vars") or {})
        credential = (config.get("general") or {}).get("chef_credential")
        if credential:
            launch_vars["chef_credential"] = credential
        return launch_vars

    def _forget_gone(self, present: set[tuple[str, str]]) -> None:
        for key in set(self._engines) - present:
            entry = self._engines.pop(key)
            with log_context(caller=key[0], domain=key[1]):
                try:
                    entry.engine.dying()
                except Exception:
                    log.exception("engine failed while dying")
        for key in set(self._controls) - present:
            del self._controls[key]
