"""Pick the sensor source an engine conf asks for (key ``sensor_type``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from epum.errors import BadRequestError
from epum.sensors.base import SensorSource
from epum.sensors.config import ConfigSensorSource

#: The engine conf key that selects the source, and its default.
SENSOR_TYPE_KEY = "sensor_type"
DEFAULT_SENSOR_TYPE = "config"

#: Sensor types and their sources.
SENSOR_TYPES: dict[str, type[SensorSource]] = {"config": ConfigSensorSource}


def _source_class(conf: Mapping[str, Any]) -> type[SensorSource]:
    name = conf.get(SENSOR_TYPE_KEY)
    if name is None:
        name = DEFAULT_SENSOR_TYPE
    if not isinstance(name, str) or name not in SENSOR_TYPES:
        raise BadRequestError(
            f"{SENSOR_TYPE_KEY} must be one of {', '.join(sorted(SENSOR_TYPES))}, not {name!r}"
        )
    return SENSOR_TYPES[name]


def validate_sensor_conf(conf: Mapping[str, Any]) -> None:
    """Raise ``BadRequestError`` for an unknown ``sensor_type`` or bad source keys."""
    _source_class(conf).validate_config(conf)


def get_sensor_source(conf: Mapping[str, Any]) -> SensorSource:
    """The source ``conf`` selects, built from ``conf`` (checked first)."""
    return _source_class(conf)(conf)


def sensor_config_doc() -> str:
    """Documentation of ``sensor_type`` and of every source's keys."""
    lines = [
        f"{SENSOR_TYPE_KEY} (string, default {DEFAULT_SENSOR_TYPE!r}): where metrics come"
        f" from; one of {', '.join(sorted(SENSOR_TYPES))}."
    ]
    lines += [cls.CONFIG_DOC for _, cls in sorted(SENSOR_TYPES.items()) if cls.CONFIG_DOC]
    return "\n".join(lines)
