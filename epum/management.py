"""EPUManagement: the facade that wires the roles and answers every message.

One facade runs in each worker.  Its ``msg_*`` methods are the service's
API (PROTOCOL.md section 1); the transport calls them, and so can tests.
``initialize()`` builds the roles; outside external-decide mode it also
enters the worker in the decider, doctor and reaper elections, whose
leaders run timed loops until ``shutdown()``.

With ``decider_partitions`` N > 1 the worker has one decider per share of
the domains (``epum.partitions``) and enters them for the shares
(``EPUMStore.contend_decider_shares``) instead of the one decider election.

In external-decide mode no loop runs: tests drive the roles with
``_run_decisions()``, ``_doctor_appt(timestamp)`` and ``_run_reaper_loop()``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from epum.control import LaunchBudget
from epum.decider import Decider
from epum.doctor import Doctor
from epum.errors import NotInitializedError, WrongModeError
from epum.logcontext import log_context
from epum.partitions import all_shares
from epum.reactor import Reactor
from epum.reaper import Reaper
from epum.sensor_wiring import collector_factory
from epum.sensors.credentials import SensorCredentials
from epum.settings import Settings, StatsdSettings, build_section, settings_from_initial_conf
from epum.store.base import EPUMStore
from epum.store.memory import MemoryEPUMStore
from epum.subscribers import Subscribers

log = logging.getLogger(__name__)


class EPUManagement:
    """The elastic processing unit manager of one worker.

    ``notifier``, ``provisioner_client`` and ``dtrs_client`` are required;
    ``ouagent_client`` may be None (the doctor then cannot ask agents for a
    heartbeat, so out-of-contact instances become MISSING at once).
    ``store=None`` means a private in-memory store.  ``epum_client`` is
    accepted for the contract's sake (None meant "the facade is its own
    client") and not used: the roles of this implementation act on the
    store directly, never through the service's client.
    ``statsd_cfg`` (``{host, port, prefix}`` or ``StatsdSettings``) turns on
    decider metrics: ``<prefix>.domains.active`` (gauge) and
    ``<prefix>.decider.pass`` (ms).

    ``initial_conf`` is a dict of the keys in ``epum.settings.INITIAL_CONF_KEYS``
    (a bad value raises ``ConfigError``; an unknown key is logged as a warning
    naming the nearest known one), or an already built ``Settings`` tree, whose
    ``statsd`` section is used when ``statsd_cfg`` is None.

    Outside external-decide mode, the elected decider runs the sensor
    collector in its term (``epum.sensor_loop``), as the tree's
    ``server.sensors`` section says, with ``sensor_credentials`` (the
    worker's, built by ``epum.service``; None: no secrets, no AMQP probe).
    """

    def __init__(
        self,
        initial_conf: Mapping[str, Any] | Settings | None,
        notifier: Any,
        provisioner_client: Any,
        ouagent_client: Any,
        dtrs_client: Any,
        epum_client: Any = None,
        store: EPUMStore | None = None,
        statsd_cfg: Mapping[str, Any] | StatsdSettings | None = None,
        clock: Callable[[], float] = time.time,
        sensor_credentials: SensorCredentials | None = None,
    ):
        for name, value in (
            ("notifier", notifier),
            ("provisioner_client", provisioner_client),
            ("dtrs_client", dtrs_client),
        ):
            if not value:
                raise ValueError(f"{name} is required")
        if isinstance(initial_conf, Settings):
            tree = initial_conf  # built, and its warnings logged, by whoever loaded it
        else:
            tree = settings_from_initial_conf(initial_conf)
            for warning in tree.warnings:
                log.warning("initial_conf: %s", warning)
        self.settings = tree.epum
        self.limits = tree.limits
        #: The sensor collector's settings and the worker's credentials for it.
        self.sensor_settings = tree.sensors
        self.sensor_credentials = sensor_credentials
        self.notifier = notifier
        self.provisioner_client = provisioner_client
        self.ouagent_client = ouagent_client
        self.dtrs_client = dtrs_client
        self.store = store if store is not None else MemoryEPUMStore()
        self.statsd = _statsd_client(tree.statsd if statsd_cfg is None else statsd_cfg)
        self.clock = clock
        self.initialized = False
        self.reactor: Reactor | None = None
        #: One decider per share of the domains (``epumanagement.decider_partitions``).
        self.deciders: list[Decider] = []
        #: The first of ``deciders``: the one decider unless there are several shares.
        self.decider: Decider | None = None
        self.doctor: Doctor | None = None
        self.reaper: Reaper | None = None

    @property
    def external_decide(self) -> bool:
        """True when tests drive the roles by hand."""
        return self.settings.external_decide

    def initialize(self) -> None:
        """Build the roles; outside external-decide mode, join the elections."""
        if self.initialized:
            return
        self.store.initialize()
        subscribers = Subscribers(self.notifier)
        self.reactor = Reactor(
            self.store,
            self.settings,
            subscribers,
            self.clock,
            dtrs=self.dtrs_client,
            limits=self.limits,
        )
        collect = collector_factory(
            self.store,
            self.sensor_settings,
            self.sensor_credentials,
            self.clock,
            getattr(self.dtrs_client, "describe_credentials", None),
        )
        budget = LaunchBudget(self.limits.max_launches_per_second)
        self.deciders = [
            Decider(
                self.store,
                self.settings,
                self.provisioner_client,
                subscribers,
                self.statsd,
                self.clock,
                limits=self.limits,
                collector_factory=collect,
                share=share,
                budget=budget,
            )
            for share in all_shares(self.settings.decider_partitions)
        ]
        self.decider = self.deciders[0]
        self.doctor = Doctor(
            self.store,
            self.ouagent_client,
            interval=self.settings.doctor_loop_interval,
            clock=self.clock,
        )
        self.reaper = Reaper(
            self.store,
            max_age=self.settings.record_reaping_max_age,
            interval=self.settings.reaper_loop_interval,
            clock=self.clock,
        )
        self.initialized = True
        if not self.external_decide:
            for decider in self.deciders:
                self.store.add_change_listener(decider.domain_changed)
            if len(self.deciders) == 1:
                self.store.contend_decider(self.decider)
            else:
                self.store.contend_decider_shares(
                    self.deciders, self.settings.decider_partition_settle
                )
            self.store.contend_doctor(self.doctor)
            self.store.contend_reaper(self.reaper)
        log.info("epum %s initialized", self.settings.service_name)

    def shutdown(self) -> None:
        """Stop the roles at once, leave the elections and release the store."""
        for role in (*self.deciders, self.doctor, self.reaper):
            if role is not None:
                role.depose()
        self.store.shutdown()
        if self.statsd is not None:
            self.statsd.close()
        self.initialized = False

    # definitions ----------------------------------------------------------
    def msg_add_domain_definition(self, definition_id: str, definition: dict) -> None:
        """Store a new domain definition."""
        self._ready().add_domain_definition(definition_id, definition)

    def msg_update_domain_definition(self, definition_id: str, definition: dict) -> None:
        """Replace a domain definition (existing domains are not touched)."""
        self._ready().update_domain_definition(definition_id, definition)

    def msg_remove_domain_definition(self, definition_id: str) -> None:
        """Delete a domain definition."""
        self._ready().remove_domain_definition(definition_id)

    def msg_describe_domain_definition(self, definition_id: str) -> dict:
        """``{name, definition, documentation}``; ``NotFoundError`` for an unknown id."""
        return self._ready().describe_domain_definition(definition_id)

    def msg_list_domain_definitions(self) -> list[str]:
        """Every definition id."""
        return self._ready().list_domain_definitions()

    # domains --------------------------------------------------------------
    def msg_add_domain(
        self,
        caller: str,
        domain_id: str,
        definition_id: str,
        config: dict | None,
        subscriber_name: str | None = None,
        subscriber_op: str | None = None,
    ) -> None:
        """Create ``caller``'s domain from a definition and a config."""
        with log_context(caller=caller, domain=domain_id):
            self._ready().add_domain(
                caller, domain_id, definition_id, config, subscriber_name, subscriber_op
            )

    def msg_remove_domain(self, caller: str, domain_id: str) -> None:
        """Remove a domain; its instances are terminated in the background."""
        with log_context(caller=caller, domain=domain_id):
            self._ready().remove_domain(caller, domain_id)

    def msg_list_domains(self, caller: str) -> list[str]:
        """``caller``'s domain ids."""
        with log_context(caller=caller):
            return self._ready().list_domains(caller)

    def msg_describe_domain(self, caller: str, domain_id: str) -> dict:
        """``{name, config, sensor_data, instances}``; ``NotFoundError`` for an unknown id
        or another caller's domain."""
        with log_context(caller=caller, domain=domain_id):
            return self._ready().describe_domain(caller, domain_id)

    def msg_describe_domain_history(
        self, caller: str, domain_id: str, since: float | None = None, limit: int | None = None
    ) -> list[dict]:
        """The domain's decision log (``epum.decisions``), oldest first: entries at or after
        ``since`` (seconds since the epoch), the last ``limit`` of them; ``NotFoundError``
        for an unknown id or another caller's domain."""
        with log_context(caller=caller, domain=domain_id):
            return self._ready().describe_domain_history(caller, domain_id, since, limit)

    def msg_reconfigure_domain(self, caller: str, domain_id: str, config: dict) -> None:
        """Change a domain's general, engine_conf or health settings."""
        with log_context(caller=caller, domain=domain_id):
            self._ready().reconfigure_domain(caller, domain_id, config)

    def msg_subscribe_domain(
        self, caller: str, domain_id: str, subscriber_name: str, subscriber_op: str
    ) -> None:
        """Tell ``subscriber_name.subscriber_op`` when this domain's instances change."""
        with log_context(caller=caller, domain=domain_id):
            self._ready().subscribe_domain(caller, domain_id, subscriber_name, subscriber_op)

    def msg_unsubscribe_domain(self, caller: str, domain_id: str, subscriber_name: str) -> None:
        """Stop telling ``subscriber_name``."""
        with log_context(caller=caller, domain=domain_id):
            self._ready().unsubscribe_domain(caller, domain_id, subscriber_name)

    # reports --------------------------------------------------------------
    def msg_heartbeat(self, caller: str, content: dict, timestamp: float | None = None) -> None:
        """An instance agent's heartbeat (``caller`` is the agent's address)."""
        self._ready().new_heartbeat(caller, content, timestamp)

    def msg_instance_info(self, caller: str, content: dict) -> None:
        """A provisioner's update of an instance record."""
        self._ready().new_instance_info(caller, content)

    # external-decide hooks --------------------------------------------------
    def _run_decisions(self) -> None:
        """Run one full pass of every decider now (external-decide mode only)."""
        self._external_only()
        now = self.clock()
        for decider in self.deciders:
            decider.decide_all(now)

    def _doctor_appt(self, timestamp: float | None = None) -> None:
        """Run one doctor pass at ``timestamp`` (default: now; external-decide mode only)."""
        self._external_only()
        self.doctor.run_pass(self.clock() if timestamp is None else timestamp)

    def _run_reaper_loop(self) -> None:
        """Run one reaper pass now (external-decide mode only)."""
        self._external_only()
        self.reaper.run_pass(self.clock())

    def _ready(self) -> Reactor:
        if not self.initialized or self.reactor is None:
            raise NotInitializedError("EPUManagement.initialize() must run before any message")
        return self.reactor

    def _external_only(self) -> None:
        self._ready()
        if not self.external_decide:
            raise WrongModeError("test hooks run only with _external_decide_invocations: True")


def _statsd_client(cfg: Mapping[str, Any] | StatsdSettings | None) -> Any:
    if not cfg:
        return None
    if not isinstance(cfg, StatsdSettings):
        warnings: list[str] = []
        cfg = build_section(StatsdSettings, cfg, "statsd_cfg", warnings)
        for warning in warnings:
            log.warning("%s", warning)
    import statsd

    return statsd.StatsClient(cfg.host, cfg.port, prefix=cfg.prefix)
