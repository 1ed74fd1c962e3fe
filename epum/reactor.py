"""The message-driven work: definitions, domains, subscriptions, records, heartbeats.

Every worker runs a Reactor; it holds no locks and needs no leadership,
because every write it makes is a compare-and-set retried from a fresh read.
Each method checks its whole input before it writes anything, so a bad
request raises ``BadRequestError`` (or ``NotFoundError``) and changes nothing.

Heartbeats write at a bounded rate: a heartbeat that changes nothing but the
last-heard time is written only when the stored time is older than
``HEARTBEAT_WRITE_FRACTION`` of the domain's ``missing_timeout`` (see
``epum.health``), so a domain of N instances heartbeating every few seconds
costs at most about ``N / (0.25 * missing_timeout)`` writes a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from epum.decisions import select
from epum.domain_config import (
    StoredChecks,
    check_sections,
    domain_sites,
    engine_class_name,
    known_sections,
    merge_domain_config,
    validate_domain_config,
)
from epum.engines.loader import load_engine_class
from epum.errors import BadRequestError, EpumError, NotFoundError
from epum.health import health_config_of, heartbeat_write_due
from epum.instances import PROVISIONER_FIELDS, Instance, extra_fields_of
from epum.logcontext import log_context
from epum.settings import EPUMSettings, LimitSettings
from epum.sites import CachedDTRS, SiteAnswers
from epum.states import InstanceHealthState, InstanceState
from epum.store.base import DomainStore, EPUMStore, update_instance_with_retry
from epum.subscribers import Subscribers
from epum.validation import (
    check_domain_size,
    check_finite,
    check_heartbeat_fields,
    check_json,
    check_name,
    check_record_fields,
    check_size,
    encoded_size,
    json_safe,
    short,
)

log = logging.getLogger(__name__)

#: How many domains ``describe_domain`` remembers the stored checks of (a
#: domain described again, unchanged, is not checked again).
DESCRIBE_CHECKS_KEPT = 1000


class Reactor:
    """Applies operators' requests and the provisioner's and agents' reports to the store."""

    def __init__(
        self,
        store: EPUMStore,
        settings: EPUMSettings,
        subscribers: Subscribers,
        clock: Callable[[], float] = time.time,
        dtrs: Any = None,
        limits: LimitSettings | None = None,
    ):
        self.limits = limits or LimitSettings()
        self.store = store
        self.settings = settings
        self.subscribers = subscribers
        self.clock = clock
        self.dtrs = CachedDTRS(dtrs, settings.dtrs_cache_seconds) if dtrs is not None else None
        # what describe_domain last found of the domains described most recently
        self._checks = StoredChecks(settings, self.limits, max_domains=DESCRIBE_CHECKS_KEPT)

    # definitions ----------------------------------------------------------
    def add_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Store a new definition (WriteConflictError if the id exists)."""
        self._check_definition(definition_id, definition)
        if len(self.store.list_domain_definitions()) >= self.limits.max_definitions:
            raise BadRequestError(
                f"there are {self.limits.max_definitions} definitions already: "
                "limits.max_definitions"
            )
        self.store.add_domain_definition(definition_id, definition)

    def update_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Replace a definition; existing domains keep the config they were made with."""
        self._check_definition(definition_id, definition)
        self.store.update_domain_definition(definition_id, definition)

    def remove_domain_definition(self, definition_id: str) -> None:
        """Delete a definition (NotFoundError if absent); domains made from it stay."""
        self._check_name(definition_id, "definition_id")
        self.store.remove_domain_definition(definition_id)

    def describe_domain_definition(self, definition_id: str) -> dict[str, Any]:
        """``{name, definition, documentation}``; ``NotFoundError`` if there is no such one."""
        self._check_name(definition_id, "definition_id")
        definition = self.store.get_domain_definition(definition_id)
        if definition is None:
            raise NotFoundError(f"domain definition {short(definition_id)} does not exist")
        described: dict[str, Any] = {"name": definition_id, "definition": json_safe(definition)}
        try:
            engine_cls = load_engine_class(
                engine_class_name(definition), self.settings.allowed_engine_prefixes
            )
        except (EpumError, AttributeError, TypeError, ValueError) as exc:  # stored corrupt too
            log.warning(
                "definition %s names an engine that cannot be loaded: %s",
                definition_id,
                short(str(exc), 200),
            )
        else:
            described["documentation"] = engine_cls.get_config_doc()
        return described

    def list_domain_definitions(self) -> list[str]:
        """Every definition id."""
        return self.store.list_domain_definitions()

    def _check_definition(self, definition_id: str, definition: Any) -> None:
        self._check_name(definition_id, "definition_id")
        check_sections(definition, "definition")
        self._check_config_values(definition, "definition")
        general = definition.get("general") or {}
        if general.get("engine_class") is not None and not isinstance(general["engine_class"], str):
            raise BadRequestError("definition general.engine_class must be a string")
        load_engine_class(engine_class_name(definition), self.settings.allowed_engine_prefixes)

    # domains --------------------------------------------------------------
    def add_domain(
        self,
        caller: str,
        domain_id: str,
        definition_id: str,
        config: dict[str, Any] | None,
        subscriber_name: str | None = None,
        subscriber_op: str | None = None,
    ) -> None:
        """Create ``caller``'s domain: ``config`` merged over a copy of the definition.

        The merge is the original's, one level deep (see ``merge_domain_config``).
        """
        self._check_name(caller, "caller")
        self._check_name(domain_id, "domain_id")
        self._check_name(definition_id, "definition_id")
        if (subscriber_name is None) != (subscriber_op is None):
            raise BadRequestError("subscriber_name and subscriber_op go together")
        if subscriber_name is not None:
            self._check_name(subscriber_name, "subscriber_name")
            self._check_name(subscriber_op, "subscriber_op")
        config = config or {}
        check_sections(config)
        self._check_config_values(config, "config")
        definition = self.store.get_domain_definition(definition_id)
        if definition is None:
            raise NotFoundError(f"domain definition {definition_id} not found")
        merged = merge_domain_config(definition, config)
        sites = self._validate(caller, merged)
        if self.store.count_domains_by_owner(caller) >= self.limits.max_domains_per_caller:
            raise BadRequestError(
                f"{caller} has {self.limits.max_domains_per_caller} domains already: "
                "limits.max_domains_per_caller"
            )
        if sites is not None:
            sites.check()
        domain = self.store.add_domain(caller, domain_id, merged)
        if subscriber_name is not None:
            domain.add_subscriber(subscriber_name, subscriber_op)
        log.info("domain added from %s", definition_id)

    def remove_domain(self, caller: str, domain_id: str) -> None:
        """Mark a domain for removal; the decider terminates its instances, then drops it."""
        domain = self._live_domain(caller, domain_id)
        domain.mark_removed()
        log.info("domain marked for removal")

    def list_domains(self, caller: str) -> list[str]:
        """``caller``'s domains, without those being removed."""
        self._check_name(caller, "caller")
        return [
            d
            for d in self.store.list_domains_by_owner(caller)
            if self._visible(self.store.get_domain(caller, d))
        ]

    def describe_domain(self, caller: str, domain_id: str) -> dict[str, Any]:
        """``{name, config, sensor_data, instances}`` (and ``corrupt``, the reason, when
        the stored state is); ``NotFoundError`` if ``caller`` has no such domain (the same
        error whether it is missing or another caller's)."""
        self._check_name(caller, "caller")
        self._check_name(domain_id, "domain_id")
        domain = self.store.get_domain(caller, domain_id)
        if not self._visible(domain):
            raise NotFoundError(f"domain {short(domain_id)} does not exist")
        config = domain.get_all_config()
        records = domain.get_instances()
        instances = [i.to_dict() for i in records]
        described = {
            "name": domain_id,
            "config": config,
            "sensor_data": domain.get_domain_sensor_data(),
            "instances": instances,
        }
        problem = self._checks.problem(domain.key, config, records)
        if problem is None:
            return described
        described["corrupt"] = problem  # and what is stored, as far as JSON can carry it
        return json_safe(described)

    def describe_domain_history(
        self, caller: str, domain_id: str, since: float | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The domain's decision log at or after ``since``, the last ``limit`` entries,
        oldest first; ``NotFoundError`` as for ``describe_domain``."""
        domain = self._live_domain(caller, domain_id)
        return select(domain.get_history(), since, limit)

    def reconfigure_domain(self, caller: str, domain_id: str, config: dict[str, Any]) -> None:
        """Merge new keys into a domain's sections; the decider hands engine changes on."""
        domain = self._live_domain(caller, domain_id)
        check_sections(config)
        self._check_config_values(config, "config")
        config = known_sections(config)
        current = domain.get_all_config()
        general = config.get("general") or {}
        if "engine_class" in general and general["engine_class"] != engine_class_name(current):
            raise BadRequestError("a domain's engine_class cannot be changed; add a new domain")
        merged = {s: {**current.get(s, {}), **config.get(s, {})} for s in current}
        merged.update((s, v) for s, v in config.items() if s not in merged)
        sites = self._validate(caller, merged)
        if sites is not None:
            sites.check()
        if config:
            domain.update_config({s: dict(v) for s, v in config.items()})
        log.info("reconfigured %s", ", ".join(config) or "nothing")

    def subscribe_domain(
        self, caller: str, domain_id: str, subscriber_name: str, subscriber_op: str
    ) -> None:
        """Tell ``subscriber_name.subscriber_op`` of this domain's instances from now on."""
        self._check_name(subscriber_name, "subscriber_name")
        self._check_name(subscriber_op, "subscriber_op")
        self._live_domain(caller, domain_id).add_subscriber(subscriber_name, subscriber_op)

    def unsubscribe_domain(self, caller: str, domain_id: str, subscriber_name: str) -> None:
        """Stop telling ``subscriber_name``; no error if it was not subscribed."""
        self._check_name(subscriber_name, "subscriber_name")
        self._live_domain(caller, domain_id).remove_subscriber(subscriber_name)

    def _check_config_values(self, config: Mapping[str, Any], what: str) -> None:
        """The generic checks of a config or definition, as given: plain JSON, its size."""
        bound = check_json(config, self.limits, what)
        check_size(config, self.limits.max_config_bytes, "max_config_bytes", what, bound)

    def _validate(self, caller: str, config: dict[str, Any]) -> SiteAnswers | None:
        """Check a whole domain config (its size and the engine's sizes too); the DTRS's
        answers about its sites, asked meanwhile, for the caller to ``check`` (None
        without a DTRS)."""
        answers = self._ask_sites(caller, config)
        check_size(config, self.limits.max_config_bytes, "max_config_bytes", "domain config")
        validate_domain_config(config, self.settings)
        check_domain_size(config.get("engine_conf") or {}, self.limits)
        return answers or self._ask_sites(caller, config, validated=True)

    def _ask_sites(
        self, caller: str, config: dict[str, Any], validated: bool = False
    ) -> SiteAnswers | None:
        """The DTRS's answers about the config's sites, asked at once (None without a
        DTRS, or when the sites of a config not ``validated`` yet cannot be read)."""
        if self.dtrs is None:
            return None
        try:
            sites = domain_sites(config, self.settings)
        except Exception:
            if validated:
                raise
            return None  # validation says what is wrong
        return SiteAnswers(self.dtrs, caller, sites)

    def _live_domain(self, caller: str, domain_id: str) -> DomainStore:
        self._check_name(caller, "caller")
        self._check_name(domain_id, "domain_id")
        domain = self.store.get_domain(caller, domain_id)
        if not self._visible(domain):
            raise NotFoundError(f"domain {domain_id} of {caller} not found")
        return domain

    @staticmethod
    def _visible(domain: DomainStore | None) -> bool:
        return domain is not None and not domain.is_removed()

    # reports --------------------------------------------------------------
    def new_instance_info(self, caller: str, content: Mapping[str, Any]) -> None:
        """Apply a provisioner's record update, dropping stale and unknown ones."""
        instance_id, state = self._check_report(content, InstanceState.ALL, "instance state")
        check_record_fields(
            {k: v for k, v in content.items() if k in PROVISIONER_FIELDS}, "instance_info"
        )
        domain = self.store.get_domain_for_instance_id(instance_id)
        if domain is None:
            log.warning(
                "instance_info from %s for unknown instance %s dropped", short(caller), instance_id
            )
            return
        now = self.clock()
        changes = {k: v for k, v in content.items() if k in PROVISIONER_FIELDS}
        changes["state"] = state

        def apply(record: Instance) -> Instance | None:
            if _is_stale(record, state, content.get("update_counter")):
                return None
            extra = extra_fields_of(content, record.extra_fields)
            updated = record.replace(**changes, extra_fields=extra)
            size = encoded_size(updated.to_dict())
            if size > self.limits.max_record_bytes:
                raise BadRequestError(
                    f"instance_info would make record {instance_id} {size} bytes, over "
                    f"limits.max_record_bytes ({self.limits.max_record_bytes})"
                )
            if state != record.state:
                updated = updated.replace(state_time=now)
            if state >= InstanceState.TERMINATING:
                updated = updated.replace(health=InstanceHealthState.UNKNOWN)
            return updated

        with log_context(caller=domain.owner, domain=domain.domain_id):
            result = update_instance_with_retry(domain, instance_id, apply)
            if result is None:
                log.info("stale or duplicate update of %s to %s dropped", instance_id, state)
                return
            before, after = result
            log.info("instance %s: %s -> %s", instance_id, before.state, after.state)
            self.subscribers.instance_changed(domain, before, after)

    def new_heartbeat(
        self, caller: str, content: Mapping[str, Any], timestamp: float | None = None
    ) -> None:
        """Record an agent's heartbeat: health, errors, the agent's address (``caller``, the
        sender; the ``node_id`` when there is none) and (at a bounded rate) the time."""
        instance_id, health = self._check_report(content, InstanceHealthState.REPORTABLE, "health")
        check_heartbeat_fields(content)
        if caller:
            self._check_name(caller, "heartbeat sender")
        if timestamp is not None:
            timestamp = check_finite(timestamp, "heartbeat timestamp")
        failed = content.get("failed_processes")
        domain = self.store.get_domain_for_instance_id(instance_id)
        if domain is None:
            log.warning("heartbeat from %s for unknown instance %s dropped", caller, instance_id)
            return
        health_conf = domain.get_config_as("health", health_config_of)
        if not health_conf.monitor_health:
            return
        now = float(timestamp) if timestamp is not None else self.clock()
        if health == InstanceHealthState.OK:
            errors, error_time = None, None
        else:
            errors = list(failed or []) or ([content["error"]] if content.get("error") else None)
            error_time = content.get("error_time")

        def apply(record: Instance) -> Instance | None:
            # no sender: the agent listens under its node id, as the original's did
            changes: dict[str, Any] = {"agent_address": caller or instance_id}
            if record.state < InstanceState.TERMINATING:
                # A terminating instance's health stays UNKNOWN; only its time matters (zombies).
                when = error_time
                if when is None and errors is not None:
                    # the same error again keeps the time it was first heard
                    same = record.health == health and record.errors == errors
                    when = record.error_time if same else now
                changes.update(health=health, errors=errors, error_time=when)
            if all(getattr(record, k) == v for k, v in changes.items()) and not heartbeat_write_due(
                record.last_heard, now, health_conf.missing_timeout
            ):
                return None
            return record.replace(last_heard=max(now, record.last_heard or now), **changes)

        # Judged on the cached record (no round trip): a copy a watch's delivery
        # behind another worker's write at worst delays a write to the next beat.
        update_instance_with_retry(domain, instance_id, apply, cached_first=True)

    # checks ---------------------------------------------------------------
    def _check_name(self, value: Any, what: str) -> str:
        return check_name(value, what, self.limits)

    def _check_report(self, content: Any, states: tuple[str, ...], what: str) -> tuple[str, str]:
        if not isinstance(content, Mapping):
            raise BadRequestError(f"report content must be a mapping, not {type(content).__name__}")
        self._check_name(content.get("node_id"), "node_id")
        bound = check_json(content, self.limits, "report")
        check_size(content, self.limits.max_record_bytes, "max_record_bytes", "report", bound)
        state = content.get("state")
        if state not in states:
            raise BadRequestError(
                f"unknown {what} {short(state)}; expected one of {', '.join(states)}"
            )
        counter = content.get("update_counter")
        if counter is not None and (isinstance(counter, bool) or not isinstance(counter, int)):
            raise BadRequestError("update_counter must be an integer")
        return content["node_id"], state


def _is_stale(record: Instance, state: str, counter: int | None) -> bool:
    """An update older than the record: a lower state, or the same state not newer."""
    if state != record.state:
        return state < record.state
    if counter is None:
        return True
    return record.update_counter is not None and counter <= record.update_counter
