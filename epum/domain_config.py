"""Domain configs: merging over a definition, defaults, and validation.

A domain config has three sections (``general``, ``engine_conf``,
``health``).  Validation happens before anything is stored, so a bad config
changes nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from epum.engines.base import Engine
from epum.engines.loader import DEFAULT_ENGINE, load_engine_class
from epum.errors import BadRequestError, EpumError
from epum.health import HealthConfig
from epum.settings import EPUMSettings, LimitSettings
from epum.store.base import CONFIG_SECTIONS
from epum.validation import check_json, record_problem, short

log = logging.getLogger(__name__)


def engine_class_name(config: Mapping[str, Any]) -> str:
    """The engine named in a config's general section, or the default engine."""
    return (config.get("general") or {}).get("engine_class") or DEFAULT_ENGINE


def engine_conf_with_defaults(
    engine_conf: Mapping[str, Any], settings: EPUMSettings
) -> dict[str, Any]:
    """The engine conf as engines see it: service-wide defaults under the domain's keys."""
    conf = dict(engine_conf)
    if settings.needy_default_iaas_site and conf.get("iaas_site") is None:
        conf["iaas_site"] = settings.needy_default_iaas_site
    if settings.needy_default_iaas_allocation and conf.get("iaas_allocation") is None:
        conf["iaas_allocation"] = settings.needy_default_iaas_allocation
    return conf


#: Unknown section names and health keys already logged (each is logged once).
_logged_unknown: set[str] = set()


def _log_unknown_once(what: str) -> None:
    if what not in _logged_unknown:
        _logged_unknown.add(what)
        log.warning("ignoring %s (unknown to epum; the original system ignored it too)", what)


def check_sections(config: Any, what: str = "config") -> None:
    """Raise BadRequestError unless ``config`` is a mapping whose known sections are mappings.

    Sections other than ``general``, ``engine_conf`` and ``health`` are
    accepted and ignored, as the original did (logged once per name): a
    definition keeps them, a domain's store holds only the known sections.
    """
    if not isinstance(config, Mapping):
        raise BadRequestError(f"{what} must be a mapping, not {type(config).__name__}")
    for section, value in config.items():
        if section not in CONFIG_SECTIONS:
            _log_unknown_once(f"config section {section!r}")
        elif value is not None and not isinstance(value, Mapping):
            raise BadRequestError(f"{what} section {section!r} must be a mapping")


def known_sections(config: Mapping[str, Any]) -> dict[str, Any]:
    """The non-empty known sections of a (checked) config; unknown ones are dropped."""
    return {s: dict(v) for s, v in config.items() if s in CONFIG_SECTIONS and v}


def merge_domain_config(definition: Mapping[str, Any], config: Mapping[str, Any]) -> dict:
    """A domain's config: ``config`` merged over a deep copy of ``definition``.

    The original's merge, one level deep: each known section of ``config``
    updates the definition's section key by key, and a key's value replaces
    the definition's value whole (so ``engine_conf.provisioner_vars`` given
    in ``config`` replaces the definition's ``provisioner_vars``; it is not
    merged into it).  Unknown sections of ``config`` are ignored; neither
    argument is changed.
    """
    merged = copy.deepcopy(dict(definition))
    for section in CONFIG_SECTIONS:
        given = config.get(section)
        if given:
            base = merged.get(section)
            merged[section] = {**(base if isinstance(base, Mapping) else {}), **given}
            merged[section] = copy.deepcopy(merged[section])
    return merged


def validate_health(health: Mapping[str, Any]) -> None:
    """Raise BadRequestError naming the first bad health value; unknown keys are ignored.

    Unknown keys are logged once each, as the original ignored them too.
    """
    known = {f.name for f in dataclasses.fields(HealthConfig)}
    for key in health:
        if key not in known:
            _log_unknown_once(f"health key {key!r}")
    HealthConfig.from_section(health)


def validate_domain_config(config: Mapping[str, Any], settings: EPUMSettings) -> type[Engine]:
    """Check a whole domain config; returns its engine class.

    Raises BadRequestError naming what is wrong: an unknown section, an
    engine that is not registered or allowed, an engine conf the engine
    rejects, a bad health key.
    """
    check_sections(config)
    general = config.get("general") or {}
    if general.get("chef_credential") is not None and not isinstance(
        general["chef_credential"], str
    ):
        raise BadRequestError("general.chef_credential must be a string")
    if not isinstance(general.get("dry_run", False), bool):
        raise BadRequestError(f"general.dry_run must be true or false, not {general['dry_run']!r}")
    engine_class = general.get("engine_class")
    if engine_class is not None and not isinstance(engine_class, str):
        raise BadRequestError("general.engine_class must be a string")
    provisioner_vars = (config.get("engine_conf") or {}).get("provisioner_vars")
    if provisioner_vars is not None and not isinstance(provisioner_vars, Mapping):
        raise BadRequestError("engine_conf.provisioner_vars must be a mapping")
    engine_cls = load_engine_class(engine_class_name(config), settings.allowed_engine_prefixes)
    engine_conf = engine_conf_with_defaults(config.get("engine_conf") or {}, settings)
    engine_cls.validate_config(engine_conf)
    validate_health(config.get("health") or {})
    return engine_cls


def domain_sites(config: Mapping[str, Any], settings: EPUMSettings) -> list[str]:
    """The sites a domain config's engine launches on (for a config not yet validated,
    any error the engine's reading of it raises)."""
    engine_cls = load_engine_class(engine_class_name(config), settings.allowed_engine_prefixes)
    return list(
        engine_cls.sites(engine_conf_with_defaults(config.get("engine_conf") or {}, settings))
    )


def stored_problem(
    config: Mapping[str, Any],
    records: list[dict[str, Any]],
    settings: EPUMSettings,
    limits: LimitSettings,
) -> str | None:
    """What keeps a stored domain from being decided on or described faithfully: a config
    or a record that would not pass today's checks (None: nothing).

    For data stored before the checks, or written around them: the decider leaves
    such a domain's instances alone, and ``describe_domain`` names the reason.
    """
    problem = config_problem(config, settings, limits)
    if problem is not None:
        return problem
    for record in records:
        problem = record_problem(record, limits)
        if problem is not None:
            return problem
    return None


def config_problem(
    config: Mapping[str, Any], settings: EPUMSettings, limits: LimitSettings
) -> str | None:
    """What keeps a stored config from passing today's checks (None: nothing)."""
    try:
        check_json(dict(config), limits, "config")
        validate_domain_config(config, settings)
    except (EpumError, ValueError, TypeError) as exc:
        return f"config: {short(str(exc), 300)}"
    return None


class StoredChecks:
    """``stored_problem`` for a decider's passes, checking only what changed.

    A domain's config is checked again when it differs from the one last
    checked; a record when it is not the very object last checked (the
    ZooKeeper store hands out one object per version of a cached record, so
    a steady pass checks no record at all).  ``forget`` drops what was kept
    for domains that are gone; with ``max_domains``, the domain checked
    longest ago is dropped to make room for another.
    """

    def __init__(
        self, settings: EPUMSettings, limits: LimitSettings, max_domains: int | None = None
    ):
        self.settings = settings
        self.limits = limits
        self.max_domains = max_domains
        # domain key -> (config, its problem), {instance id: (record, its problem)}
        self._configs: dict[Any, tuple[Mapping[str, Any], str | None]] = {}
        self._records: dict[Any, dict[str, tuple[Any, str | None]]] = {}

    def problem(self, key: Any, config: Mapping[str, Any], instances: list) -> str | None:
        """The domain's first problem, as ``stored_problem`` would name it, or None."""
        kept = self._configs.pop(key, None)  # put back last: the oldest go first
        if kept is None and self.max_domains is not None:
            while self._configs and len(self._configs) >= self.max_domains:
                oldest = next(iter(self._configs))
                del self._configs[oldest]
                self._records.pop(oldest, None)
        if kept is None or kept[0] != config:
            problem = config_problem(config, self.settings, self.limits)
            kept = (copy.deepcopy(config), problem)
        self._configs[key] = kept
        if kept[1] is not None:
            return kept[1]
        before = self._records.get(key, {})
        checked: dict[str, tuple[Any, str | None]] = {}
        first = None
        for instance in instances:
            seen = before.get(instance.instance_id)
            if seen is None or seen[0] is not instance:
                seen = (instance, record_problem(instance.to_dict(), self.limits))
            checked[instance.instance_id] = seen
            if first is None:
                first = seen[1]
        self._records[key] = checked
        return first

    def forget(self, present: set) -> None:
        """Keep only the domains whose keys are in ``present``."""
        for kept in (self._configs, self._records):
            for key in set(kept) - present:
                del kept[key]


def launch_vars(provisioner_vars: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The vars each launch of a domain with ``config`` carries.

    The worker's ``provisioner_vars``, then the engine conf's own (they win),
    then ``general.chef_credential`` when given.  A corrupt stored value is
    skipped, so it never stops a removal.
    """
    merged = dict(provisioner_vars)
    engine_vars = (config.get("engine_conf") or {}).get("provisioner_vars")
    if isinstance(engine_vars, dict):
        merged.update(engine_vars)
    credential = (config.get("general") or {}).get("chef_credential")
    if isinstance(credential, str) and credential:
        merged["chef_credential"] = credential
    return merged
