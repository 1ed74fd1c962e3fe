"""Domain configs: merging over a definition, defaults, and validation.

A domain config has three sections (``general``, ``engine_conf``,
``health``).  Validation happens before anything is stored, so a bad config
changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from epum.engines.base import Engine
from epum.engines.loader import DEFAULT_ENGINE, load_engine_class
from epum.errors import BadRequestError
from epum.health import HealthConfig
from epum.settings import EPUMSettings
from epum.store.base import CONFIG_SECTIONS


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


def check_sections(config: Any, what: str = "config") -> None:
    """Raise BadRequestError unless ``config`` is a mapping of known sections of mappings."""
    if not isinstance(config, Mapping):
        raise BadRequestError(f"{what} must be a mapping, not {type(config).__name__}")
    for section, value in config.items():
        if section not in CONFIG_SECTIONS:
            raise BadRequestError(
                f"{what} has unknown section {section!r}; expected {', '.join(CONFIG_SECTIONS)}"
            )
        if not isinstance(value, Mapping):
            raise BadRequestError(f"{what} section {section!r} must be a mapping")


def validate_health(health: Mapping[str, Any]) -> None:
    """Raise BadRequestError naming the first unknown or bad health key."""
    known = {f.name for f in dataclasses.fields(HealthConfig)}
    for key in health:
        if key not in known:
            raise BadRequestError(
                f"health has unknown key {key!r}; expected {', '.join(sorted(known))}"
            )
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
    engine_cls = load_engine_class(engine_class_name(config), settings.allowed_engine_prefixes)
    engine_conf = engine_conf_with_defaults(config.get("engine_conf") or {}, settings)
    engine_cls.validate_config(engine_conf)
    validate_health(config.get("health") or {})
    return engine_cls
